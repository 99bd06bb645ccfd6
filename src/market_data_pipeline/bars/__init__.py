"""The bar engine: windows, aggregation, resampling, calendars.

``market_data_pipeline.bars`` is also the notebook function ``bars(frame, "1m")`` (``api.bars``):
importing this package sets the parent's ``bars`` attribute to the package, so the package
itself forwards calls to the function.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ..api import bars

        return bars(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
