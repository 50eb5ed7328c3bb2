"""How far ahead of its stream a replayed record may be: jumps confirmed, lone ones rejected.

A record more than the tolerance (``future_tolerance_h``, 24 h) ahead of its partition's event
time is either a *jump* (the recording went quiet for a day, or a file starts a new month:
the records after it agree with it) or a *lone far-future record* (a clock set wrong, a unit
error: the records after it carry on where they were). Only what follows tells them apart, so
such a record is **held** and every later valid record of the partition votes on it: *for*
when it too is far ahead of the event time the held one met and not far behind the held one
(a stream that went on from there, even sparsely: a reading, silence, more readings),
*against* otherwise (the stream carries on where it was, or well before the held record).

- ``confirm`` (8) votes for, more than against: the jump is real; the held record is
  processed then, the partition's event time moves to it, and the held records of the new
  era (within the tolerance of it) follow at once, in the order they came.
- ``confirm`` votes against, at least as many as for: it was a lone record; it is
  dead-lettered and never moved event time.
- Records that are not far ahead are processed as usual meanwhile.
- At the end of the input a held record is processed if more records after it agreed than
  not (at least one), else dead-lettered; more than ``MAX_HELD`` at once: the oldest goes.

The decisions depend on the records alone, in order, never on a clock or on batch
boundaries, and the held records are part of the partition's resume state: a resumed run
decides exactly as the uninterrupted one. Live input (Redis, MQTT) is judged against the
wall clock instead (:func:`citywatch.events.ahead_of_clock`): it arrives about when it happens.

>>> from citywatch.events import Air
>>> H = 3_600_000
>>> h = Horizon(24 * H, confirm=2)
>>> h.hold(Air(ts=30 * H, station="S1"), b"{...}", high=1 * H)
>>> h.vote(2 * H)                 # the stream carries on where it was: against
>>> h.decide(2 * H) is None       # one vote is not enough
True
>>> h.vote(3 * H)
>>> held, reason = h.decide(3 * H)
>>> for part in reason.split(" and "):
...     print(part)
ts: 108000000 is 29.0 h ahead of the event time (3600000)
2 of the 2 valid records after it did not follow: a lone far-future record
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from citywatch.events import Event

__all__ = ["CONFIRM", "MAX_HELD", "Held", "Horizon"]

#: Votes that decide about a held record.
CONFIRM: Final = 8
#: Held records at most (the oldest is dead-lettered beyond it): memory stays bounded.
MAX_HELD: Final = 4 * CONFIRM

_H = 3_600_000


@dataclass(slots=True)
class Held:
    """A record far ahead of its partition's event time, waiting for the votes of the next."""

    event: Event
    #: The record as read, for its dead letter.
    raw: bytes
    #: The partition's event time when it arrived.
    high: int
    support: int = 0
    against: int = 0


class Horizon:
    """The held records of one source partition and the rule that decides them (see module)."""

    def __init__(
        self, tolerance_ms: int, *, confirm: int = CONFIRM, held: Iterable[Held] = ()
    ) -> None:
        if tolerance_ms <= 0:
            msg = f"future_tolerance_ms: must be > 0, got {tolerance_ms}"
            raise ValueError(msg)
        if confirm < 1:
            msg = f"confirm: must be >= 1, got {confirm}"
            raise ValueError(msg)
        self.tolerance_ms = tolerance_ms
        self.confirm = confirm
        self.held: list[Held] = list(held)

    def is_far(self, ts: int, high: int) -> bool:
        """Whether ``ts`` is beyond the tolerance of event time ``high`` (0: no time yet)."""
        return bool(high) and ts > high + self.tolerance_ms

    def hold(self, event: Event, raw: bytes, high: int) -> None:
        """Hold a far-ahead record (call :meth:`vote` with its ``ts`` first)."""
        self.held.append(Held(event, raw, high))

    def vote(self, ts: int) -> None:
        """A valid record with ``ts`` followed the held ones: it agrees or it does not."""
        tol = self.tolerance_ms
        for h in self.held:
            if ts > h.high + tol and ts >= h.event.ts - tol:
                h.support += 1
            else:
                h.against += 1

    def decide(self, high: int, *, final: bool = False) -> tuple[Held, str | None] | None:
        """The oldest held record that is decided at event time ``high``, removed:
        ``(held, None)`` to process it now, ``(held, reason)`` to dead-letter it; None while
        every one waits. ``final``: the input has ended, decide every one."""
        k = self.confirm
        for i, h in enumerate(self.held):
            ts, tol = h.event.ts, self.tolerance_ms
            if high > h.high + tol and abs(ts - high) <= tol:
                verdict: str | None = None  # a jump since it came, to its era: it follows
            elif h.support >= k and h.support > h.against:
                verdict = None  # a jump: the records after it agree
            elif h.against >= k and h.against >= h.support:
                verdict = self._lone(h)
            elif final:
                if h.support > h.against:
                    verdict = None
                else:
                    verdict = (
                        f"{self._ahead(h)} and the input ended before {k} records after it "
                        f"confirmed a jump ({h.support} did, {h.against} did not)"
                    )
            elif i == 0 and len(self.held) > MAX_HELD:
                verdict = f"{self._ahead(h)}; more than {MAX_HELD} far-ahead records waited at once"
            else:
                continue
            del self.held[i]
            return h, verdict
        return None

    def _ahead(self, h: Held) -> str:
        ts, high = h.event.ts, h.high
        return f"ts: {ts} is {(ts - high) / _H:.1f} h ahead of the event time ({high})"

    def _lone(self, h: Held) -> str:
        n = h.support + h.against
        return (
            f"{self._ahead(h)} and {h.against} of the {n} valid records after it did not "
            "follow: a lone far-future record"
        )
