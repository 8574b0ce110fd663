"""Stored numbers as pages show them, whatever a database holds: no value may break a page."""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any


def finite(value: Any) -> float | None:
    """The value as a finite float, else None (text, NaN, infinities, None)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value) if abs(value) < 1e308 else math.inf
    return value if math.isfinite(value) else None


def utc_moment(ts: Any) -> datetime | None:
    """Epoch seconds as an aware UTC datetime; None when no calendar date fits (1e20, -inf...)."""
    seconds = finite(ts)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def impossible(ts: Any) -> str:
    """How a time no calendar holds is shown: its stored value, marked."""
    return f"impossible time {ts!r}"
