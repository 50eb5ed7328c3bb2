"""Pacing: the thin layer that replays generated batches at max speed, real time or N x.

Generators never sleep; only this wrapper looks at a clock, and tests inject a fake one.

>>> parse_pace("max") is None, parse_pace("realtime"), parse_pace("10x")
(True, 1.0, 10.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from simulators.simulation import Batch

__all__ = ["paced", "parse_pace"]


def parse_pace(text: str) -> float | None:
    """``max`` -> None (no pacing), ``realtime`` -> 1.0, ``10x`` or ``10`` -> 10.0."""
    t = text.strip().lower()
    if t in {"max", "none", "0"}:
        return None
    if t in {"realtime", "real", "1x"}:
        return 1.0
    try:
        speed = float(t.removesuffix("x"))
    except ValueError:
        speed = 0.0
    if speed <= 0:
        msg = f"pace: {text!r} is not max, realtime or a positive speed like 10x"
        raise ValueError(msg)
    return speed


def paced(
    batches: Iterable[Batch],
    speed: float | None,
    *,
    step_ms: int = 1000,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Batch]:
    """Yield batches cut into ``step_ms`` slices of event time, each no earlier than due.

    Event time ``t`` is due at ``wall0 + (t - t0) / speed`` where ``t0`` is the first
    record's time and ``wall0`` the wall time it was yielded. ``speed=None`` yields as fast
    as the consumer takes them, uncut.
    """
    if speed is None:
        yield from batches
        return
    t0: int | None = None
    wall0 = 0.0
    for b in batches:
        i = 0
        n = len(b)
        while i < n:
            edge = b.ts[i] - b.ts[i] % step_ms + step_ms
            j = i
            while j < n and b.ts[j] < edge:
                j += 1
            if t0 is None:
                t0, wall0 = b.ts[i], clock()
            due = wall0 + (b.ts[i] - t0) / 1000.0 / speed
            wait = due - clock()
            if wait > 0:
                sleep(wait)
            yield Batch(b.ts[i:j], b.keys[i:j], b.lines[i:j])
            i = j
