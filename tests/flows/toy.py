"""A tiny model of our own, so the flow tests do not depend on the real models."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import orjson

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Air, Event
from models.base import Model

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MIN = 60_000


class ToyState:
    def __init__(self) -> None:
        self.n = 0


class ToyExceedance(Model):
    """``air.exceedance`` while pm25 > 100 (red above 250); a clear below 50."""

    name: ClassVar[str] = "toy.exceedance"
    kinds: ClassVar[frozenset[str]] = frozenset({"air"})

    def route(self, event: Event) -> str | None:
        return event.station if isinstance(event, Air) else None

    def new_state(self, key: str) -> ToyState:
        return ToyState()

    def update(self, state: Any, event: Event) -> list[Signal]:
        assert isinstance(event, Air)
        state.n += 1
        pm = event.pm25
        if pm is None:
            return []
        subject = Subject("station", event.station)
        if pm > 100:
            level = Level.RED if pm > 250 else Level.ORANGE
            return [
                Signal(
                    "air.exceedance",
                    subject,
                    event.ts,
                    level=level,
                    score=0.8,
                    title="超标",
                    evidence={"pm25": pm},
                    model=self.model_id,
                    district="崇川区",
                )
            ]
        if pm < 50:
            return [Signal("air.exceedance", subject, event.ts, active=False, model=self.model_id)]
        return []


def air(station: str, minute: int, pm25: float | None) -> bytes:
    return orjson.dumps({"kind": "air", "ts": T0 + minute * MIN, "station": station, "pm25": pm25})


def scenario(stations: int = 5, minutes: int = 120, *, stagger: int = 0) -> list[bytes]:
    """Station S0 exceeds in minutes 30-49 (orange, red at 40-44), the rest stay clean.

    With ``stagger`` > 0, station ``s`` does the same ``s * stagger`` minutes later.
    """
    out = []
    for m in range(minutes):
        for s in range(stations):
            pm = 30.0
            start = 30 + s * stagger if (s == 0 or stagger) else -1_000
            if start <= m < start + 20:
                pm = 300.0 if start + 10 <= m < start + 15 else 150.0
            out.append(air(f"S{s}", m, pm))
    return out


#: The held scenario's station that goes offline while its alert fires, and when.
HELD_STATION, HELD_SILENT_FROM = "S5", 190


def held(tail_sleep_s: float = 0.0) -> Callable[[], Iterator[bytes]]:
    """Six stations for 220 minutes; S5 exceeds from minute 180 and goes offline at 190 (no
    clear), so its alert is still open when the input ends at 219 (it would auto-resolve
    20 quiet minutes later), its last version long before the end: an alert only the engine
    holds. Records from minute 190 on come ``tail_sleep_s`` apart (time to break things)."""
    recs: list[tuple[bytes, bool]] = []
    for raw in scenario(stations=6, minutes=220, stagger=30):
        d = orjson.loads(raw)
        minute = (d["ts"] - T0) // MIN
        if d["station"] == HELD_STATION and minute >= HELD_SILENT_FROM:
            continue
        recs.append((raw, minute >= HELD_SILENT_FROM))

    def records() -> Iterator[bytes]:
        for raw, tail in recs:
            if tail and tail_sleep_s:
                time.sleep(tail_sleep_s)
            yield raw

    return records
