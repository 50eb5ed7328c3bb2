"""Recognising a record delivered twice: the same bytes as one of a partition's recent records.

Producers and brokers deliver at least once (an MQTT QoS 1 resend, a producer retrying an XADD
whose reply it lost, a file written twice in part), and not every model can tell a repeat
from news (a hotline ticket counted twice makes a surge). :class:`RecentRecords` keeps the
hashes of a partition's last ``window`` records; the decoding partition dead-letters a
record whose bytes equal one of them (reason ``duplicate: ...``), so it is counted and
visible, and nothing downstream sees it twice.

The window lives in memory, not in the recovery snapshot (a record's hash differs between
processes): after a restart it starts empty, and a copy whose original was read before the
restart is not recognised. A record re-read after a restart because the flow resumes from
its last snapshot is not a duplicate (the window was not there for the first reading).

>>> seen = RecentRecords(window=3)
>>> seen.repeats([b"a", b"b", b"a"]), seen.repeats([b"c", b"b", b"d"]), seen.repeats([b"a"])
({2}, {1}, set())
"""

from __future__ import annotations

from collections import deque

__all__ = ["DUPLICATE", "RecentRecords"]

#: The dead-letter reason of a record delivered again (its class is ``duplicate``).
DUPLICATE = "duplicate: the same record as one of the last {window} of this partition"


class RecentRecords:
    """The hashes of the last ``window`` records of one partition (``window`` > 0)."""

    __slots__ = ("batches", "count", "seen", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.seen: set[int] = set()
        self.batches: deque[list[int]] = deque()
        self.count = 0

    def repeats(self, raws: list[bytes]) -> set[int]:
        """Indexes of ``raws`` seen before (in the window or earlier in ``raws``); all of
        ``raws`` join the window. One C-level pass when there is no repeat (the usual case)."""
        hashes = list(map(hash, raws))
        seen = self.seen
        found: set[int] = set()
        if seen.isdisjoint(hashes) and len(set(hashes)) == len(hashes):
            seen.update(hashes)
        else:
            for i, h in enumerate(hashes):
                if h in seen:
                    found.add(i)
                else:
                    seen.add(h)
        self.batches.append(hashes)
        self.count += len(hashes)
        while self.count - len(self.batches[0]) >= self.window:
            old = self.batches.popleft()
            self.count -= len(old)
            seen.difference_update(old)
        return found
