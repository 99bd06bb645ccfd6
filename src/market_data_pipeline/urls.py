"""Credentials in URLs and messages, masked wherever a URL is shown: ``redact_url`` for a URL,
``mask_urls`` for free text holding URLs, ``scrub`` for a driver's error message about a URL.

One implementation serves the pipeline and its contract toolkit: it lives in
``market_data_contracts.urls`` (stdlib only), which the pipeline depends on; every module here
imports it through this one.
"""

from __future__ import annotations

from market_data_contracts.urls import mask_urls, redact_url, scrub

__all__ = ["mask_urls", "redact_url", "scrub"]
