"""Hourly AQI per HJ 633-2012, the simulator's own small table for exceedance ground truth.

Models are not importable here (simulators import only the contract), so this is a second,
independent implementation: a disagreement between the two is a finding, not a tautology.
Hourly IAQI uses the 1-hour breakpoints for SO2, NO2, CO and O3 and, as real-time hourly
reporting does, the 24-hour breakpoints for PM10 and PM2.5. IAQI is rounded up to an integer.

>>> iaqi("pm25", 75.0), iaqi("pm25", 76.0), iaqi("pm10", 150.0)
(100, 102, 100)
>>> aqi({"pm25": 80.0, "pm10": 100.0, "o3": 60.0})
(107, 'pm25')
>>> category(107)
('轻度污染', 3)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

__all__ = ["BREAKPOINTS", "LEVEL_OF_CATEGORY", "aqi", "category", "iaqi"]

IAQI_STEPS: Final = (0, 50, 100, 150, 200, 300, 400, 500)
BREAKPOINTS: Final[dict[str, tuple[float, ...]]] = {
    "so2": (0, 150, 500, 650, 800, 1600, 2100, 2620),
    "no2": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "co": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "pm10": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm25": (0, 35, 75, 115, 150, 250, 350, 500),
}
_CATEGORIES: Final = (
    (50, "优", 1),
    (100, "良", 2),
    (150, "轻度污染", 3),
    (200, "中度污染", 4),
    (300, "重度污染", 5),
)
#: Alert level of an exceedance by AQI category (轻度 yellow, 中度 orange, 重度 and 严重 red).
LEVEL_OF_CATEGORY: Final = {3: "yellow", 4: "orange", 5: "red", 6: "red"}


def iaqi(pollutant: str, conc: float) -> int:
    """Individual AQI of one pollutant's hourly mean (µg/m³; CO in mg/m³)."""
    bp = BREAKPOINTS[pollutant]
    if conc <= 0:
        return 0
    if conc >= bp[-1]:
        return 500
    for i in range(1, len(bp)):
        if conc <= bp[i]:
            lo, hi = bp[i - 1], bp[i]
            val = IAQI_STEPS[i - 1] + (IAQI_STEPS[i] - IAQI_STEPS[i - 1]) * (conc - lo) / (hi - lo)
            return math.ceil(round(val, 6))
    return 500  # pragma: no cover - the loop always returns


def aqi(means: Mapping[str, float | None]) -> tuple[int, str | None]:
    """(AQI, primary pollutant) of hourly means; the primary is None when AQI <= 50."""
    best, primary = 0, None
    for name, value in means.items():
        if value is None or name not in BREAKPOINTS:
            continue
        v = iaqi(name, value)
        if v > best:
            best, primary = v, name
    return best, (primary if best > 50 else None)


def category(value: int) -> tuple[str, int]:
    """(Chinese category, class 1-6) of an AQI value."""
    for hi, name, cls in _CATEGORIES:
        if value <= hi:
            return name, cls
    return "严重污染", 6
