"""Resolution: the quantum of a series (the smallest step it takes), learned online.

Sensors report on a grid: 0.1 degC, 1 uS/cm, integer ug/m3, 2 decimals. A scale estimated
from a flat or coarsely quantized stretch tends to zero, and the next one-quantum step then
looks like a thousand-sigma event. Detectors floor their scale at the quantum instead.

The quantum is the smallest non-zero absolute difference between successive readings that has
been seen ``confirm`` times (within a relative tolerance of 1e-6), so one odd float-noise
difference (``15.89999998`` next to ``15.9``) does not set it. Two readings closer than
``1e-7`` of their magnitude count as equal. Until a step is confirmed the quantum is 0.0
(unknown; continuous series stay there, as they should).

>>> r = Resolution()
>>> for v in (6.5, 6.5, 6.6, 6.5, 6.7, 6.6, 6.6):
...     r.learn(v)
>>> round(r.quantum, 6)
0.1
>>> c = Resolution()
>>> for i in range(100):
...     c.learn(i * 1.001 ** i)      # continuous: no step repeats
>>> c.quantum
0.0
"""

from __future__ import annotations

from typing import Final

__all__ = ["EQUAL_REL", "Resolution", "same"]

#: Readings closer than this share of their magnitude are equal (float noise, not a step).
EQUAL_REL: Final = 1e-7
_SAME_STEP: Final = 1e-6


def same(a: float, b: float) -> bool:
    """True when two readings are equal up to float noise."""
    d = a - b
    if d < 0.0:
        d = -d
    m = a if a >= 0.0 else -a
    mb = b if b >= 0.0 else -b
    if mb > m:
        m = mb
    return d <= EQUAL_REL * m or d == 0.0


class Resolution:
    """Smallest confirmed step of a series (see the module docstring).

    Candidate steps smaller than the quantum are counted in a few slots; when all are taken,
    a new step smaller than the largest of them replaces the least seen one (the largest among
    equals), so a frequent step is confirmed even among rarer finer ones.
    """

    __slots__ = ("_counts", "_steps", "confirm", "prev", "quantum")

    SLOTS: Final = 6

    def __init__(self, confirm: int = 3) -> None:
        if confirm < 1:
            msg = f"confirm: must be >= 1, got {confirm!r}"
            raise ValueError(msg)
        self.confirm = int(confirm)
        self.prev: float | None = None
        self.quantum = 0.0
        self._steps: list[float] = []
        self._counts: list[int] = []

    def learn(self, v: float) -> None:
        """Learn a finite reading."""
        prev = self.prev
        self.prev = v
        if prev is None:
            return
        d = v - prev if v >= prev else prev - v
        q = self.quantum
        if q > 0.0 and d >= q * (1.0 - _SAME_STEP):
            return
        if same(v, prev):
            return
        self._count(d)

    def step(self, d: float) -> None:
        """Count a step of size ``d > 0`` between two readings the caller knows differ (for a
        caller that keeps the previous reading itself)."""
        q = self.quantum
        if q > 0.0 and d >= q * (1.0 - _SAME_STEP):
            return
        self._count(d)

    def _count(self, d: float) -> None:
        steps, counts = self._steps, self._counts
        for i, c in enumerate(steps):
            if abs(d - c) <= _SAME_STEP * c:
                counts[i] += 1
                if counts[i] >= self.confirm:
                    self.quantum = c
                    keep = [j for j, s in enumerate(steps) if s < c * (1.0 - _SAME_STEP)]
                    self._steps = [steps[j] for j in keep]
                    self._counts = [counts[j] for j in keep]
                return
        if len(steps) < self.SLOTS:
            steps.append(d)
            counts.append(1)
            return
        if d > max(steps):  # a quantum is a smallest step: larger ones wait for a free slot
            return
        worst = min(range(len(steps)), key=lambda j: (counts[j], -steps[j]))
        steps[worst] = d
        counts[worst] = 1
