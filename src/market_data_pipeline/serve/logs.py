"""Log lines of the service with every URL password shown as ``***``.

uvicorn logs each request's path and query (``/v1/bars?sink=postgresql://u:pw@db/x``) and its
errors; the filter masks them, arguments included (uvicorn's access formatter reads them).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from ..urls import mask_urls


class MaskSecrets(logging.Filter):
    """Mask URL passwords in a record's message and its string arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_urls(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_urls(a) if isinstance(a, str) else a for a in record.args)
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging set-up with ``MaskSecrets`` on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"mask": {"()": f"{__name__}.MaskSecrets"}}
    for handler in config["handlers"].values():
        handler["filters"] = ["mask"]
    # The service's own loggers (run manager, readiness) print beside uvicorn's.
    config["loggers"]["market_data_pipeline"] = {"handlers": ["default"], "level": "INFO"}
    return config
