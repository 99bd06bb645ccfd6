"""A real Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright's Python package.

Playwright's own browser download is never used: the browser is the system's, given by
``executable_path`` (``MDP_TEST_CHROMIUM`` overrides the path). ``.ci/run`` installs the Debian
package when it is missing. Without it the tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the browser tests are required)")
    pytest.skip(message)


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium profile and page; console errors are collected in ``page.errors``."""
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
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.errors = errors
            yield page
        finally:
            context.close()
