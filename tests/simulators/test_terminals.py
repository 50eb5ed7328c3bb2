"""The simulated GPS terminals behave like real ones: sleep when parked, jump, lose speed, re-send
dead zones late; trucks make short legitimate stops at unregistered customers."""

from __future__ import annotations

import itertools
from collections import defaultdict

import msgspec
import orjson
import pytest

from citywatch.events import Event, Gps
from citywatch.geo import haversine_m
from simulators import Simulation, simulate
from simulators.clock import DEFAULT_START_MS, HOUR_MS
from simulators.vehicles import SLEEP_INTERVALS_S
from tests.simulators.stays import stays

DEC: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def day() -> Simulation:
    return simulate(
        "clean", seed=4, kinds=("gps",), start_ms=DEFAULT_START_MS, duration_s=16 * 3600
    )


@pytest.fixture(scope="module")
def fixes(day: Simulation) -> dict[str, list[Gps]]:
    out: dict[str, list[Gps]] = defaultdict(list)
    for e in day.events():
        assert isinstance(e, Gps)
        out[e.vehicle].append(e)
    return out


def test_sleeping_terminals_report_once_an_interval_at_night(
    day: Simulation, fixes: dict[str, list[Gps]]
) -> None:
    traits = day.gps.traits
    sleepers = [v for v, ms in zip(day.gps.ids, traits.sleep_ms, strict=True) if ms]
    assert 0.25 * len(day.gps.ids) <= len(sleepers) <= 0.55 * len(day.gps.ids)
    for v in sleepers:
        ms = traits.sleep_ms[day.gps.ids.index(v)]
        night = [f.ts for f in fixes[v] if f.ts < DEFAULT_START_MS + 4 * HOUR_MS]
        gaps = [b - a for a, b in itertools.pairwise(night)]
        assert gaps, v
        if traits.irregular[day.gps.ids.index(v)]:
            continue  # jittered, and a lost report doubles a gap
        assert ms - 10_000 <= max(gaps) <= ms + 10_000  # asleep at the depot
        # 1-3 minutes awake after midnight's first fix (the simulation starts then), then
        # one fix an interval
        assert len(night) <= 2 * 18 + 4 * HOUR_MS // ms + 2
    awake = [v for v, ms in zip(day.gps.ids, traits.sleep_ms, strict=True) if not ms]
    v = awake[0]
    night = [f.ts for f in fixes[v] if f.ts < DEFAULT_START_MS + 4 * HOUR_MS]
    assert len(night) > 4 * 360 * 0.8  # every 10 s (or 5 s), a few lost


def test_the_registry_declares_some_intervals_and_not_others(day: Simulation) -> None:
    traits = day.gps.traits
    declared = undeclared = 0
    for v, ms, dec in zip(day.gps.ids, traits.sleep_ms, traits.declared, strict=True):
        got = day.registry.vehicles[v].sleep_interval_s
        if dec:
            assert got == ms / 1000
            assert got in SLEEP_INTERVALS_S
            declared += 1
        else:
            assert got is None
            undeclared += ms > 0
    assert declared > 0
    assert undeclared > 0


def test_some_terminals_send_no_speed_and_some_fixes_jump(day: Simulation) -> None:
    no_speed = with_speed = jumps = 0
    last: dict[str, tuple[float, float]] = {}
    for line in day.records():
        d = orjson.loads(line)
        if "speed_kmh" in d:
            with_speed += 1
        else:
            no_speed += 1
        prev = last.get(d["vehicle"])
        if prev is not None and haversine_m(*prev, d["lat"], d["lon"]) > 2_000:
            jumps += 1  # two fixes 2 km apart within a minute or so: a jump (or back from one)
        last[d["vehicle"]] = (d["lat"], d["lon"])
    assert 0.1 < no_speed / (no_speed + with_speed) < 0.45
    assert jumps > 10


def test_dead_zones_are_re_sent_late_out_of_order(day: Simulation) -> None:
    newest: dict[str, int] = {}
    behind = []
    for line in day.records():
        d = orjson.loads(line)
        v, ts = d["vehicle"], d["ts"]
        if ts < newest.get(v, 0):
            behind.append(newest[v] - ts)
        newest[v] = max(newest.get(v, 0), ts)
    resent = [b for b in behind if b > 10_000]  # (the rest: a few seconds of jitter)
    assert len(resent) >= 3
    assert max(behind) <= 240_000 + 60_000  # within the flow's lateness: processed, not lost


def test_trucks_make_short_stops_at_unregistered_customers(
    day: Simulation, fixes: dict[str, list[Gps]]
) -> None:
    reg = day.registry
    short_unregistered = 0
    for fs in fixes.values():
        for a, b in stays(fs, 60.0):
            if b.ts - a.ts >= 3 * 60_000:
                far = all(
                    haversine_m(a.lat, a.lon, p.lat, p.lon) > 2 * p.radius_m + 100
                    for p in reg.places.values()
                )
                if far:
                    assert b.ts - a.ts <= 13 * 60_000  # a delivery: below every dwell threshold
                    short_unregistered += 1
    assert short_unregistered > 3
