"""The city has a rhythm: cycles by hour and weekday, quantized analysers, realistic trucks.

Generators are pure per minute, so these tests sample single minutes through ``chunk``.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict

import msgspec
import pytest

from citywatch.events import Air, Event, Gps, Power, Video
from citywatch.geo import haversine_m
from simulators import Simulation, simulate
from simulators.clock import DEFAULT_START_MS, HOUR_MS
from tests.simulators.stays import stays

DEC: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)  # type: ignore[arg-type]
MON = DEFAULT_START_MS  # Monday 00:00 local
SUN = MON + 6 * 24 * HOUR_MS


@pytest.fixture(scope="module")
def week() -> Simulation:
    return simulate("clean", seed=3, duration_s=7 * 86_400, kinds=("video", "power", "order"))


def _minute(sim: Simulation, kind: str, t: int) -> list[Event]:
    gen = next(g for g in sim.generators if g.kind == kind)
    return [DEC.decode(x) for x in gen.chunk(t).lines]


def _mean(sim: Simulation, kind: str, t: int, field: str, *, site: bool | None = None) -> float:
    evs = _minute(sim, kind, t)
    vals = [getattr(e, field) for e in evs if site is None or (e.site is not None) == site]  # type: ignore[union-attr]
    return statistics.mean(vals)


def test_street_cameras_follow_rush_hours_and_weekends(week: Simulation) -> None:
    night = _mean(week, "video", MON + 3 * HOUR_MS, "vehicles", site=False)
    rush = _mean(week, "video", MON + 8 * HOUR_MS, "vehicles", site=False)
    noon = _mean(week, "video", MON + 12 * HOUR_MS, "vehicles", site=False)
    sunday_rush = _mean(week, "video", SUN + 8 * HOUR_MS, "vehicles", site=False)
    assert rush > 5 * night
    assert rush > noon
    assert sunday_rush < 0.7 * rush


def test_sites_work_by_day_on_workdays(week: Simulation) -> None:
    day = _mean(week, "video", MON + 10 * HOUR_MS, "machinery", site=True)
    night = _mean(week, "video", MON + 3 * HOUR_MS, "machinery", site=True)
    sunday = _mean(week, "video", SUN + 10 * HOUR_MS, "machinery", site=True)
    assert day > 0.5
    assert night < 0.1 * day
    assert sunday < 0.4 * day
    kw_day = _mean(week, "power", MON + 10 * HOUR_MS, "kw", site=True)
    kw_night = _mean(week, "power", MON + 3 * HOUR_MS, "kw", site=True)
    assert kw_day > 3 * kw_night


def test_suspended_sites_are_quiet_but_not_silent(week: Simulation) -> None:
    lifted = {week.city.sites[lf.site].id for lf in week.plan.lifts}
    suspended = {s.id for s in week.city.sites if s.state == "suspended"} - lifted
    assert suspended
    flicker = persons = windows = 0
    gen = next(g for g in week.generators if g.kind == "video")
    for h in range(0, 24 * 7, 2):
        for raw in gen.chunk(MON + h * HOUR_MS + 10 * 60_000).lines:
            v = DEC.decode(raw)
            assert isinstance(v, Video)
            if v.site in suspended:
                windows += 1
                flicker += v.machinery > 0
                persons += v.persons > 0
    assert 0 < persons < 0.3 * windows  # a guard now and then
    assert flicker < 0.02 * windows  # detector flicker, rare


def test_enterprise_meters_run_shifts(week: Simulation) -> None:
    evs = [e for e in _minute(week, "power", MON + 3 * HOUR_MS) if isinstance(e, Power)]
    day = {
        e.meter: e.kw
        for e in _minute(week, "power", MON + 10 * HOUR_MS)
        if isinstance(e, Power) and e.site is None
    }
    ratios = [day[e.meter] / e.kw for e in evs if e.site is None and e.kw]
    assert min(ratios) < 1.2  # continuous processes
    assert max(ratios) > 2.5  # day shifts


@pytest.fixture(scope="module")
def air_day() -> dict[str, list[Air]]:
    sim = simulate("clean", seed=4, kinds=("air",))
    out: dict[str, list[Air]] = defaultdict(list)
    for e in sim.events():
        assert isinstance(e, Air)
        out[e.station].append(e)
    return out


def _hour_mean(rows: dict[str, list[Air]], field: str, hour: int) -> float:
    vals = [
        getattr(r, field)
        for rs in rows.values()
        for r in rs
        if (r.ts - MON) // HOUR_MS == hour and getattr(r, field) is not None
    ]
    return statistics.mean(vals)


def test_air_daily_cycles(air_day: dict[str, list[Air]]) -> None:
    assert _hour_mean(air_day, "o3", 14) > 2 * _hour_mean(air_day, "o3", 4)
    assert _hour_mean(air_day, "no2", 8) > 1.4 * _hour_mean(air_day, "no2", 3)
    assert _hour_mean(air_day, "temp_c", 14) > _hour_mean(air_day, "temp_c", 5) + 5


def test_quantized_channels_repeat_naturally(air_day: dict[str, list[Air]]) -> None:
    longest: Counter[str] = Counter()
    for rows in air_day.values():
        for ch in ("so2", "co", "pm25"):
            run = best = 1
            for a, b in itertools.pairwise(rows):
                same = getattr(a, ch) is not None and getattr(a, ch) == getattr(b, ch)
                run = run + 1 if same else 1
                best = max(best, run)
            longest[ch] = max(longest[ch], best)
    assert longest["co"] >= 10  # natural runs a naive stuck test would flag
    assert longest["so2"] >= 5
    assert longest["pm25"] < 10


def test_missing_values_are_nulls(air_day: dict[str, list[Air]]) -> None:
    rows = [r for rs in air_day.values() for r in rs]
    nulls = sum(r.no2 is None for r in rows)
    assert 0.002 * len(rows) < nulls < 0.05 * len(rows)


def test_trucks_drive_at_road_speeds_and_stop_at_registered_places() -> None:
    sim = simulate(
        "clean",
        seed=6,
        kinds=("gps",),
        start_ms=MON + 6 * HOUR_MS,
        duration_s=6 * 3600,
        terminals="ideal",  # no deliveries to unregistered customers (tests/simulators/...)
    )
    fixes: dict[str, list[Gps]] = defaultdict(list)
    for e in sim.events():
        assert isinstance(e, Gps)
        fixes[e.vehicle].append(e)
    moving = [f.speed_kmh for fs in fixes.values() for f in fs if (f.speed_kmh or 0) > 5]
    assert 30 < statistics.median(moving) < 70
    assert max(moving) < 90
    places = list(sim.registry.places.values())
    cats: Counter[str] = Counter()
    for fs in fixes.values():
        for a, b in stays(fs, 100.0):
            if b.ts - a.ts >= 8 * 60_000:
                p = min(places, key=lambda p: haversine_m(a.lat, a.lon, p.lat, p.lon))
                # inside, or queueing at the gate just outside (up to 100 m, plus jitter)
                assert haversine_m(a.lat, a.lon, p.lat, p.lon) <= p.radius_m + 130
                cats[p.category] += 1
    assert cats["enterprise"] > 0
    assert cats["depot"] > 0
