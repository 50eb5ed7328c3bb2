"""A station's reporting interval: declared in the registry, or learned from its stream.

Air stations report at very different cadences: national stations publish one **hourly
average** per pollutant, micro stations a reading every 1-5 minutes, low-cost optical sensors
every 2-3 minutes with jitter and gaps. Every air rule is written in time; a station's
interval turns those times into what its readings can show (a 3-minute persistence is three
readings of a one-minute station, one reading of an hourly one).

:class:`Cadence` holds the interval: the registry's ``interval_s`` when declared (fixed), else
the median of the first :data:`LEARN_STEPS` steps between readings, then followed by a
frugal streaming median (each step moves the estimate by ``FOLLOW`` of itself towards the
step), so gaps and jitter hardly move it while a real change of cadence is followed within a
few dozen readings. Steps of zero (duplicates) are ignored.

A station whose interval is at least :data:`HOURLY_MS` (45 minutes) reports **period
averages**: each reading is the mean of its clock hour and a valid hourly value on its own
(the 45-minute validity rule of GB 3095-2012 is met by one reading covering the hour).

>>> c = Cadence(None)
>>> c.interval_ms, c.source
(0, 'unknown')
>>> for step in (150_000, 146_000, 149_000):
...     _ = c.observe(step)
>>> c.interval_ms, c.source
(149000, 'learned')
>>> _ = c.observe(36_000_000)          # a 10-hour gap moves the estimate by 2 %
>>> c.interval_ms
151980
>>> Cadence(3_600_000).hourly, Cadence(3_600_000).source
(True, 'declared')
"""

from __future__ import annotations

from typing import Final

from models.air.compact import Compact

__all__ = ["FOLLOW", "HOURLY_MS", "LEARN_STEPS", "Cadence"]

HOUR_MS: Final = 3_600_000
#: A station reporting at least this far apart reports hourly (period) averages.
HOURLY_MS: Final = 45 * 60_000
#: Steps seen before a learned interval is trusted (their median).
LEARN_STEPS: Final = 3
#: How far (share of the estimate) one step moves a learned interval afterwards.
FOLLOW: Final = 0.02


class Cadence(Compact):
    """Reporting interval of one station (see the module docstring)."""

    __slots__ = ("declared", "first", "interval_ms")

    def __init__(self, declared_ms: int | None) -> None:
        self.declared = bool(declared_ms)
        #: the interval in ms; 0 while unknown
        self.interval_ms = int(declared_ms) if declared_ms else 0
        #: the first steps of a station being learned (emptied once learned)
        self.first: list[int] = []

    @property
    def source(self) -> str:
        """``declared`` (registry), ``learned``, ``learning`` (one or two steps seen) or
        ``unknown`` (no step yet)."""
        if self.declared:
            return "declared"
        if not self.interval_ms:
            return "unknown"
        return "learning" if self.first else "learned"

    @property
    def hourly(self) -> bool:
        """Whether each reading is a period (hourly) average."""
        return self.interval_ms >= HOURLY_MS

    def observe(self, step_ms: int) -> bool:
        """Learn one step between readings; True when the interval changed."""
        if self.declared or step_ms <= 0:
            return False
        old = self.interval_ms
        first = self.first
        if old == 0 or first:
            first.append(step_ms)
            s = sorted(first)
            self.interval_ms = (
                s[len(s) // 2] if len(s) % 2 else (s[len(s) // 2 - 1] + s[len(s) // 2]) // 2
            )
            if len(first) >= LEARN_STEPS:
                self.first = []
        elif step_ms > old:
            self.interval_ms = min(step_ms, old + max(1, int(old * FOLLOW)))
        elif step_ms < old:
            self.interval_ms = max(step_ms, old - max(1, int(old * FOLLOW)))
        return self.interval_ms != old
