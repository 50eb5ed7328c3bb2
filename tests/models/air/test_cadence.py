"""Cadence-aware air rules: hourly averages, low-cost sensors and minute stations in one city."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence

import pytest

from citywatch.alerts import Observation, Signal
from citywatch.events import Air
from citywatch.registry import Registry, Station
from models.air.cadence import Cadence
from models.air.model import AirModel, AirState

from . import conftest

HOUR = 3_600_000
MIN = 60_000
T0 = 1_388_505_600_000  # 2014-01-01 00:00 Asia/Shanghai (HJ 633-2012 in force)

Tweak = Callable[[int, int, float], float | None]


def hourly_registry(n: int = 3, declared: bool = True) -> Registry:
    stations = {
        f"H{i}": Station(
            id=f"H{i}",
            lat=30.63 + 0.02 * i,
            lon=104.05 + 0.03 * i,
            district="Chengdu",
            kind="national",
            interval_s=3600.0 if declared else None,
        )
        for i in range(n)
    }
    return Registry(stations=stations)


def hours(n_hours: int, *, n: int = 3, seed: int = 1, tweak: Tweak | None = None) -> Iterator[Air]:
    """Hourly PM2.5 of ``n`` stations under one weather, stamped at the hour's start."""
    rng = random.Random(seed)
    offsets = [rng.uniform(-0.15, 0.15) for _ in range(n)]
    level = math.log(40.0)
    for h in range(n_hours):
        level += rng.gauss(0, 0.08) - 0.05 * (level - math.log(40.0))
        for s in range(n):
            pm: float | None = round(math.exp(level + offsets[s] + rng.gauss(0, 0.1)))
            if tweak is not None and pm is not None:
                pm = tweak(h, s, pm)
            yield Air(ts=T0 + h * HOUR, station=f"H{s}", pm25=pm)


def run(
    events: Iterator[Air] | Sequence[Air], reg: Registry
) -> tuple[AirModel, AirState, list[Signal], list[Observation]]:
    m = AirModel(reg)
    state = m.new_state("air")
    sigs: list[Signal] = []
    obs: list[Observation] = []
    for ev in events:
        for x in m.update(state, ev):
            (sigs if isinstance(x, Signal) else obs).append(x)
    return m, state, sigs, obs


def starts(sigs: list[Signal], rule: str) -> list[tuple[str, int]]:
    """(subject, hour index) of each start of ``rule``."""
    return conftest.starts(sigs, rule, T0, HOUR)


# -- cadence -----------------------------------------------------------------------------------


def test_cadence_declared_learned_and_followed() -> None:
    assert Cadence(3_600_000).interval_ms == 3_600_000
    assert Cadence(3_600_000).observe(60_000) is False  # declared: fixed
    c = Cadence(None)
    assert c.source == "unknown"
    assert c.observe(0) is False  # a duplicate time says nothing
    c.observe(150_000)
    assert c.source == "learning"
    c.observe(140_000)
    c.observe(10 * HOUR)  # a gap among the first steps: the median ignores it
    assert (c.source, c.interval_ms) == ("learned", 150_000)
    for _ in range(300):  # the station switches to one reading a minute
        c.observe(60_000)
    assert c.interval_ms == 60_000
    assert not c.hourly
    assert Cadence(3_600_000).hourly


def test_an_undeclared_hourly_station_is_learned_and_its_hours_are_valid() -> None:
    _, state, _, obs = run(hours(48), hourly_registry(declared=False))
    assert {s.cad.source for s in state.stations.values()} == {"learned"}
    assert {s.tms for s in state.stations.values()} == {HOUR}
    hourly = [o for o in obs if o.name == "air.hourly"]
    # every reading after the first is a valid hour on its own (the 45-minute rule is met)
    assert len(hourly) >= 3 * 46
    status = [o for o in obs if o.name == "air.status"]
    assert status[0].values["cadence"] == "unknown"
    assert status[-1].values["cadence"] == "learned"
    assert status[-1].values["interval_s"] == 3600


# -- hourly averages ----------------------------------------------------------------------------


def test_an_hourly_average_is_its_hours_aqi_observation_and_exceedance() -> None:
    def smog(h: int, s: int, pm: float) -> float:
        return 130.0 if s == 0 and h in (30, 31) else pm

    _, _, sigs, obs = run(hours(40, tweak=smog), hourly_registry())
    h30 = [
        o for o in obs if o.name == "air.hourly" and o.subject.id == "H0" and o.ts == T0 + 30 * HOUR
    ]
    assert len(h30) == 1
    v = h30[0].values
    # PM2.5 130 on HJ 633-2012: 150 + 50/35 * 15 = 171.4 -> 172, 中度污染, primary PM2.5
    assert (v["aqi"], v["level"], v["category"], v["primary"]) == (172, 4, "中度污染", ["pm25"])
    assert v["iaqi"] == {"pm25": 172}
    assert v["pm25"] == 130.0
    assert h30[0].district == "Chengdu"
    assert h30[0].lat is not None
    ex = [s for s in sigs if s.rule == "air.exceedance"]
    assert starts(ex, "air.exceedance") == [("H0", 30)]  # at the polluted hour's own reading
    assert all(s.interval_ms == HOUR for s in ex)
    assert [s.active for s in ex if s.ts == T0 + 32 * HOUR] == [False]  # the next clean hour


def test_a_one_hour_spike_fires_once_the_neighbours_same_hour_is_in() -> None:
    def plume(h: int, s: int, pm: float) -> float:
        return pm * 4.0 if s == 1 and h == 100 else pm

    _, _, sigs, _ = run(hours(120, tweak=plume), hourly_registry())
    spikes = [s for s in sigs if s.rule == "air.spike"]
    assert starts(spikes, "air.spike") == [("H1", 100)]
    first = next(s for s in spikes if s.active)
    assert first.interval_ms == HOUR
    assert first.evidence["excess_ugm3"] > 60
    assert not [s for s in sigs if s.rule in ("air.drift", "air.stuck", "air.range")]


def test_the_judgement_waits_for_the_same_hour_of_every_neighbour() -> None:
    def plume(h: int, s: int, pm: float) -> float:
        return pm * 4.0 if s == 0 and h == 100 else pm

    m = AirModel(hourly_registry())
    state = m.new_state("air")
    events = list(hours(101, tweak=plume))
    for ev in events[:-3]:
        m.update(state, ev)
    h0, h1, h2 = events[-3:]  # hour 100: H0 (the plume), then H1, then H2

    def spikes(ev: Air) -> list[tuple[str, str, bool]]:
        return [
            (s.rule, s.subject.id, s.active)
            for s in m.update(state, ev)
            if isinstance(s, Signal) and s.rule == "air.spike"
        ]

    assert spikes(h0) == []
    assert state.pending.get("H0") == T0 // HOUR + 100  # waits for H1's and H2's hour 100
    assert spikes(h1) == []
    assert spikes(h2) == [("air.spike", "H0", True)]
    assert not state.pending


def test_a_neighbour_missing_an_hour_does_not_hold_the_judgement_beyond_the_next_hour() -> None:
    def plume(h: int, s: int, pm: float) -> float | None:
        if s == 2 and h == 100:
            return None  # H2 sends nothing for hour 100
        return pm * 4.0 if s == 0 and h == 100 else pm

    events = [e for e in hours(102, tweak=plume) if e.pm25 is not None]
    _, _, sigs, _ = run(events, hourly_registry())
    # H0's hour 100 waits for H2 until H0's next hour forces it, against H1 alone
    assert starts(sigs, "air.spike") == [("H0", 101)]


def test_a_one_hour_plume_the_neighbours_missed_fires_an_hour_late_on_both_sides() -> None:
    def plume(h: int, s: int, pm: float) -> float | None:
        if s != 0 and h == 100:
            return None  # neither neighbour reports hour 100: nothing to compare with
        return pm * 3.5 if s == 0 and h == 100 else pm

    events = [e for e in hours(110, tweak=plume) if e.pm25 is not None]
    _, _, sigs, _ = run(events, hourly_registry())
    # hour 100 stands above hours 99 and 101: judged with hour 101, on its own values
    assert starts(sigs, "air.spike") == [("H0", 101)]
    first = next(s for s in sigs if s.rule == "air.spike" and s.active)
    assert first.evidence["basis"] == "two-sided hour"
    assert first.evidence["hour_start_ms"] == T0 + 100 * HOUR


def test_a_rise_that_stays_is_no_two_sided_spike() -> None:
    def step(h: int, s: int, pm: float) -> float | None:
        if s != 0 and h == 100:
            return None
        return pm * 3.5 if s == 0 and h >= 100 else pm  # a new level, not a plume

    events = [e for e in hours(103, tweak=step) if e.pm25 is not None]
    _, _, sigs, _ = run(events, hourly_registry())
    assert not [
        s for s in sigs if s.rule == "air.spike" and s.evidence.get("basis") == "two-sided hour"
    ]


def test_an_hourly_stuck_reading_fires_within_hours_and_mutes_the_station() -> None:
    def frozen(h: int, s: int, pm: float) -> float:
        return 57.0 if s == 2 and 200 <= h < 212 else pm

    _, _, sigs, _ = run(hours(230, tweak=frozen), hourly_registry())
    st = starts(sigs, "air.stuck")
    assert len(st) == 1
    assert st[0][0] == "H2"
    assert 203 <= st[0][1] <= 207  # 4-6 repeats of a value that repeats ~5 % of hours
    assert not starts(sigs, "air.spike")


def test_heavy_pollution_over_the_district_for_an_hour_is_an_episode() -> None:
    def smog(h: int, s: int, pm: float) -> float:
        return 160.0 + 10 * s if 50 <= h < 55 else pm

    _, _, sigs, _ = run(hours(60, tweak=smog), hourly_registry())
    ep = [s for s in sigs if s.rule == "air.episode"]
    assert starts(ep, "air.episode") == [("Chengdu", 51)]  # the second polluted hour
    first = next(s for s in ep if s.active)
    assert first.evidence["basis"] == "aqi"
    assert first.interval_ms == HOUR
    assert first.evidence["median_aqi"] > 150


# -- mixed cadences -----------------------------------------------------------------------------


def mixed_registry() -> Registry:
    reg = hourly_registry()
    reg.stations["L0"] = Station(
        id="L0", lat=30.65, lon=104.08, district="Chengdu", kind="lowcost", interval_s=None
    )
    return reg


def test_a_low_cost_sensor_gets_hourly_values_from_its_coverage_not_a_count_of_45() -> None:
    rng = random.Random(4)
    events = list(hours(6))
    t = T0
    while t < T0 + 6 * HOUR:
        t += 150_000 + rng.randint(-15_000, 15_000)
        if rng.random() < 0.05:
            continue  # a lost reading
        events.append(Air(ts=t, station="L0", pm25=35.0 + rng.random(), pm10=50.0 + rng.random()))
    events.sort(key=lambda e: e.ts)
    _, state, _, obs = run(events, mixed_registry())
    assert 140_000 <= state.stations["L0"].cad.interval_ms <= 160_000
    low = [o for o in obs if o.name == "air.hourly" and o.subject.id == "L0"]
    assert len(low) >= 4  # ~23 readings an hour, each covering 2.5 minutes
    assert all(o.values["readings"] < 45 for o in low)
    assert all(o.values["iaqi"].keys() == {"pm25", "pm10"} for o in low)


def test_an_impossible_value_fails_unless_the_neighbours_share_the_smog() -> None:
    def logger(h: int, s: int, pm: float) -> float:
        if h == 60 and s == 0:
            return 1500.0  # alone among readings of ~40: the logger
        if 68 <= h < 73:  # a city-wide record smog builds up over hours
            return min(1200.0, 300.0 * (h - 67)) - 150 * s
        return pm

    _, _, sigs, _ = run(hours(80, tweak=logger), hourly_registry())
    rng = [s for s in sigs if s.rule == "air.range"]
    assert starts(rng, "air.range") == [("H0", 60)]
    assert rng[0].evidence["check"] == "gross_range"


@pytest.mark.parametrize("declared", [True, False])
def test_every_air_signal_carries_the_station_interval(declared: bool) -> None:
    def faults(h: int, s: int, pm: float) -> float:
        return 9999.0 if s == 1 and h == 40 else pm

    _, _, sigs, _ = run(hours(50, tweak=faults), hourly_registry(declared=declared))
    assert sigs
    assert {s.interval_ms for s in sigs} == {HOUR}
