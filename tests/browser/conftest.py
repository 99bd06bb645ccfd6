"""A real Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright's Python package.

Playwright's own browser download is never used: the browser is the system's, given by
``executable_path`` (``MDP_TEST_CHROMIUM`` overrides the path). ``.ci/run`` installs the Debian
package when it is missing. Without it the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = Path(os.environ.get("MDP_TEST_CHROMIUM", "/usr/bin/chromium"))
# What Chromium needs to run as root in a container, quietly and without reaching the network.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
]
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class BrowserPage:
    """A Chromium page and the console errors and uncaught exceptions it reported so far."""

    page: Page
    errors: list[str] = field(default_factory=list)


def _unavailable(message: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the browser tests are required)")
    pytest.skip(message)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[BrowserPage]:
    """A fresh Chromium profile and page; console errors are collected in ``errors``."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (it is in the dev extra)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
        )
        try:
            browser = BrowserPage(context.new_page())
            errors = browser.errors
            browser.page.on(
                "console", lambda m: errors.append(m.text) if m.type == "error" else None
            )
            browser.page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield browser
        finally:
            context.close()
