"""A reading is one accepted temperature at one tick; only plausible values become readings."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Reading:
    sensor: str
    time_ns: int  # the scheduled tick, nanoseconds since the Unix epoch
    celsius: float


def implausible(celsius: float, valid_min: float, valid_max: float) -> str | None:
    """Why `celsius` cannot be a real temperature for this sensor, or None if it can."""
    if not isinstance(celsius, (int, float)) or isinstance(celsius, bool):
        return f"not a number: {celsius!r}"
    if math.isnan(celsius):
        return "not a number (NaN)"
    if math.isinf(celsius):
        return "infinite"
    if not valid_min <= celsius <= valid_max:
        return f"{celsius:g} °C is outside the plausible range {valid_min:g}…{valid_max:g} °C"
    return None
