"""What the installed Core can do, probed rather than read off its version number.

Tests ask for a capability (``caps.core_redis_bus``), never ``if core_version >= ...``: a Core
release that gains or loses a capability moves the test by itself.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import warnings
from dataclasses import dataclass
from functools import cached_property


@dataclass
class CoreCapabilities:
    """Lazily probed facts about the installed Core."""

    @cached_property
    def version(self) -> str:
        """The installed Core version, from package metadata."""
        return importlib.metadata.version("market-data-core")

    @cached_property
    def core_redis_bus(self) -> bool:
        """Core's own ``RedisStreamsBus`` imports (its ``redis`` dependency is present)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module("market_data_core.events.adapters.redis_streams")
        except ImportError:
            return False
        return True

    @cached_property
    def core_inmemory_bus(self) -> bool:
        """Core ships ``InMemoryBus`` in ``market_data_core.events.adapters.inmem``."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                importlib.import_module("market_data_core.events.adapters.inmem")
        except ImportError:
            return False
        return True


CAPS = CoreCapabilities()
