"""Reading numbers out of stored or received JSON, where anything may have been written."""

from __future__ import annotations

import math
from typing import Any


def finite_float(value: Any) -> float | None:
    """A finite float, or None for anything else: bools, text that is no number, NaN, ±inf, or an
    integer too large for a float. Rows and answers from other systems go through this."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
