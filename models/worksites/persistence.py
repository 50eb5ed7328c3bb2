"""m-of-n persistence over numbered windows: "active in at least m of the last n windows".

Windows are integer slots (``ts // window_ms``). The state is one int bitmask (bit 0 = the
newest slot seen) and the newest slot: O(1) memory whatever ``n`` (up to 62). Slots that
received no observation count as inactive. A late observation for a slot still inside the last
``n`` is folded in; older ones are ignored. Detector flicker (a person box on one frame, a
machine mis-detected for a window) is what this suppresses.

>>> p = MOfN(m=3, n=5)
>>> for slot, hit in [(10, True), (11, False), (12, True)]:
...     p.mark(slot, hit)
>>> p.holds, p.count
(False, 2)
>>> p.mark(13, True)
>>> p.holds, p.count
(True, 3)
>>> p.mark(20, False)   # a gap: the old hits fall out of the window
>>> p.holds, p.count
(False, 0)
"""

from __future__ import annotations

__all__ = ["MOfN"]


class MOfN:
    """Holds when at least ``m`` of the last ``n`` slots (ending at the newest) were hits."""

    __slots__ = ("m", "mask", "n", "slot")

    def __init__(self, m: int = 3, n: int = 5) -> None:
        if not 1 <= n <= 62:
            msg = f"n: must be in 1..62, got {n!r}"
            raise ValueError(msg)
        if not 1 <= m <= n:
            msg = f"m: must be in 1..n ({n}), got {m!r}"
            raise ValueError(msg)
        self.m = m
        self.n = n
        self.mask = 0
        self.slot = -1

    def advance(self, slot: int) -> None:
        """Move the newest slot forward to ``slot`` (no-op if it is not newer)."""
        if slot > self.slot:
            shift = slot - self.slot
            self.mask = 0 if shift >= self.n else (self.mask << shift) & ((1 << self.n) - 1)
            self.slot = slot

    def mark(self, slot: int, hit: bool) -> None:
        """Record an observation of ``slot``; a hit sets its bit (bits are never cleared)."""
        self.advance(slot)
        age = self.slot - slot
        if hit and age < self.n:
            self.mask |= 1 << age

    def count_at(self, slot: int) -> int:
        """Hits among the ``n`` slots ending at ``slot`` (>= the newest), without changing state."""
        shift = slot - self.slot
        if shift <= 0:
            return self.mask.bit_count()
        if shift >= self.n:
            return 0
        return ((self.mask << shift) & ((1 << self.n) - 1)).bit_count()

    @property
    def count(self) -> int:
        return self.mask.bit_count()

    @property
    def holds(self) -> bool:
        return self.mask.bit_count() >= self.m

    def __getstate__(self) -> tuple[int, int, int, int]:
        return (self.m, self.n, self.mask, self.slot)

    def __setstate__(self, st: tuple[int, int, int, int]) -> None:
        self.m, self.n, self.mask, self.slot = st

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MOfN):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"MOfN(m={self.m}, n={self.n}, mask={self.mask:0{self.n}b}, slot={self.slot})"
