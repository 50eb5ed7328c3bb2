"""Local time of day and day of week in Nantong (Asia/Shanghai, UTC+8, no DST).

Generators are pure functions of event time; these helpers turn epoch milliseconds into the
calendar quantities the activity cycles depend on.

>>> DEFAULT_START_MS
1793548800000
>>> local_hour(DEFAULT_START_MS), weekday(DEFAULT_START_MS)
(0.0, 0)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DAY_MS",
    "DEFAULT_START_MS",
    "HOUR_MS",
    "MINUTE_MS",
    "TZ",
    "iso",
    "local_hour",
    "local_midnight",
    "parse_start",
    "weekday",
]

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
TZ_OFFSET_MS: Final = 8 * HOUR_MS
TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
#: Monday 2026-11-02 00:00 Asia/Shanghai.
DEFAULT_START_MS: Final = int(datetime(2026, 11, 2, tzinfo=TZ).timestamp() * 1000)


def local_hour(ts_ms: int) -> float:
    """Hour of the local day as a float in [0, 24)."""
    return ((ts_ms + TZ_OFFSET_MS) % DAY_MS) / HOUR_MS


def local_hours(ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Vectorised :func:`local_hour`."""
    return ((ts_ms + TZ_OFFSET_MS) % DAY_MS) / HOUR_MS


def weekday(ts_ms: int) -> int:
    """Local day of week, Monday = 0."""
    # 1970-01-01 was a Thursday (3).
    return int(((ts_ms + TZ_OFFSET_MS) // DAY_MS + 3) % 7)


def local_midnight(ts_ms: int) -> int:
    """Epoch ms of the local midnight at or before ``ts_ms``."""
    return ts_ms - (ts_ms + TZ_OFFSET_MS) % DAY_MS


def iso(ts_ms: int) -> str:
    """``2026-11-02T08:00:00+08:00`` for display."""
    return datetime.fromtimestamp(ts_ms / 1000, TZ).isoformat()


def parse_start(text: str) -> int:
    """Epoch ms from ISO 8601 (local Nantong time if no offset) or an integer of epoch ms."""
    if text.lstrip("-").isdigit():
        return int(text)
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=TZ)
    return int(dt.astimezone(UTC).timestamp() * 1000)
