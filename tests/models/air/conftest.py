"""A small crafted city for the air-model tests: 12 stations, 2 districts, a shared weather."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator

import pytest

from citywatch.alerts import Signal
from citywatch.events import Air
from citywatch.registry import Registry, Station

T0 = 1_793_548_800_000  # Monday 2026-11-02 00:00 Asia/Shanghai
MIN = 60_000
HOUR = 60 * MIN

#: (minute, station index, pm25 before faults) -> (pm25, pm10, no2, so2, o3, co) or None fields
Tweak = Callable[[int, int, list[float | None]], list[float | None]]


def make_registry() -> Registry:
    stations = {}
    for i in range(12):
        row, col = divmod(i, 4)
        sid = f"S{i:02d}"
        stations[sid] = Station(
            id=sid,
            lat=32.0 + row * 0.04,
            lon=120.8 + col * 0.05,
            district="东区" if col >= 2 else "西区",
        )
    return Registry(stations=stations)


def stream(minutes: int, *, seed: int = 1, tweak: Tweak | None = None) -> Iterator[Air]:
    """Readings of the 12 stations, one a minute each, in time order."""
    rng = random.Random(seed)
    offsets = [rng.uniform(-0.2, 0.2) for _ in range(12)]
    for m in range(minutes):
        hod = (m / 60.0) % 24
        regional = 0.25 * math.sin(2 * math.pi * m / (60 * 29)) + 0.2 * math.sin(
            2 * math.pi * (hod - 3) / 24
        )
        for s in range(12):
            pm25 = math.exp(math.log(22.0) + regional + offsets[s] + rng.gauss(0, 0.08))
            vals: list[float | None] = [
                float(round(pm25)),
                float(round(pm25 * 1.7 * math.exp(rng.gauss(0, 0.05)))),
                float(round(28 * math.exp(rng.gauss(0, 0.1)))),
                round(round(7 * math.exp(rng.gauss(0, 0.1)) / 2.62) * 2.62),
                round(round(40 * math.exp(rng.gauss(0, 0.1)) / 1.96) * 1.96),
                round(0.6 * math.exp(rng.gauss(0, 0.1)), 1),
            ]
            if tweak is not None:
                vals = tweak(m, s, vals)
            yield Air(
                ts=T0 + m * MIN + s * 1000,
                station=f"S{s:02d}",
                pm25=vals[0],
                pm10=vals[1],
                no2=vals[2],
                so2=vals[3],
                o3=vals[4],
                co=vals[5],
                wind_ms=2.0,
                wind_deg=90.0,
            )


def starts(sigs: list[Signal], rule: str, t0: int, unit_ms: int) -> list[tuple[str, int]]:
    """(subject, (ts - t0) // unit_ms) of each start of ``rule`` (an active signal after none
    or a clear)."""
    on: dict[str, bool] = {}
    out = []
    for s in sigs:
        if s.rule != rule:
            continue
        if s.active and not on.get(s.subject.id):
            out.append((s.subject.id, (s.ts - t0) // unit_ms))
        on[s.subject.id] = s.active
    return out


@pytest.fixture
def registry() -> Registry:
    return make_registry()
