"""The water model on crafted stations: each rule fires where it should, and only there."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Iterator

import pytest

from citywatch.alerts import Level, Signal
from citywatch.events import Water
from citywatch.registry import Registry, WaterStation
from models.water import WaterConfig, WaterModel, WaterState

T0 = 1_793_548_800_000  # 2026-11-02 00:00 Beijing
MIN = 60_000
STATION = "WS1"
REGISTRY = Registry(
    water_stations={
        STATION: WaterStation(
            id=STATION,
            name="狼山水厂出厂水",
            lat=31.95,
            lon=120.88,
            district="崇川区",
            kind="plant",
        )
    }
)


def quiet(minute: int, rng: random.Random) -> dict[str, float]:
    """A plant outlet on its analysers' grids: slow wander, daily flow, little noise."""
    hod = (minute / 60 + 8) % 24
    return {
        "temp_c": round(16.0 + 0.2 * math.sin(minute / 300) + rng.gauss(0, 0.03), 1),
        "ph": round(7.30 + 0.02 * math.sin(minute / 170) + rng.gauss(0, 0.005), 2),
        "conductivity_us_cm": round(420 + 3 * math.sin(minute / 400) + rng.gauss(0, 0.5)),
        "turbidity_ntu": round(0.12 + 0.01 * math.sin(minute / 90) + rng.gauss(0, 0.003), 3),
        "chlorine_mg_l": round(0.70 + 0.02 * math.sin(minute / 250) + rng.gauss(0, 0.004), 2),
        "redox_mv": round(680 + 4 * math.sin(minute / 200) + rng.gauss(0, 0.6)),
        "flow_m3_h": round(3000 * (0.8 + 0.3 * math.sin((hod - 6) / 24 * 2 * math.pi))),
    }


def stream(
    minutes: int, start: int = 0, seed: int = 1, **override: object
) -> Iterator[tuple[int, Water]]:
    rng = random.Random(seed + start)
    for m in range(start, start + minutes):
        vals: dict[str, object] = dict(quiet(m, rng))
        for k, v in override.items():
            vals[k] = v(m) if callable(v) else v
        yield m, Water(ts=T0 + m * MIN, station=STATION, **vals)  # type: ignore[arg-type]


def run(m: WaterModel, st: WaterState, it: Iterator[tuple[int, Water]]) -> list[tuple[int, Signal]]:
    return [(minute, s) for minute, ev in it for s in m.update(st, ev)]


def warmed(config: WaterConfig | None = None) -> tuple[WaterModel, WaterState]:
    m = WaterModel(REGISTRY, config)
    st = m.new_state(STATION)
    assert run(m, st, stream(10 * 60)) == []  # ten quiet hours: nothing
    return m, st


def test_a_quiet_day_raises_nothing() -> None:
    m = WaterModel(REGISTRY)
    st = m.new_state(STATION)
    assert run(m, st, stream(36 * 60, seed=5)) == []


def test_contamination_across_channels_is_an_event_with_evidence_and_clears() -> None:
    m, st = warmed()
    start = 10 * 60
    sigs = run(
        m,
        st,
        stream(
            30,
            start,
            turbidity_ntu=0.45,
            conductivity_us_cm=455.0,
            chlorine_mg_l=0.40,
            redox_mv=630.0,
        ),
    )
    events = [(minute, s) for minute, s in sigs if s.rule == "water.event"]
    assert events
    first_minute, first = events[0]
    assert first_minute - start < 6  # five readings of evidence, then the alert
    assert first.active
    assert first.level == Level.RED
    assert first.subject.kind == "water_station"
    assert (first.lat, first.lon, first.district) == (31.95, 120.88, "崇川区")
    ev = first.evidence
    assert set(ev["channels"]) >= {"turbidity_ntu", "conductivity_us_cm", "chlorine_mg_l"}
    assert ev["chlorine_mg_l"]["value"] == 0.40
    assert ev["chlorine_mg_l"]["change"] == pytest.approx(-0.30, abs=0.03)
    assert ev["station_name"] == "狼山水厂出厂水"
    assert "水质异常" in first.title
    after = run(m, st, stream(60, start + 30))
    clears = [s for _, s in after if s.rule == "water.event" and not s.active]
    assert len(clears) == 1
    assert not [s for _, s in after if s.rule == "water.event" and s.active]


def test_a_change_that_lasts_becomes_the_baseline_and_the_way_back_is_quiet() -> None:
    m, st = warmed()
    start = 10 * 60
    sigs = run(m, st, stream(150, start, conductivity_us_cm=470.0, ph=7.45))
    fired = [minute for minute, s in sigs if s.rule == "water.event" and s.active]
    cleared = [minute for minute, s in sigs if s.rule == "water.event" and not s.active]
    assert fired
    assert cleared  # accepted after an hour: the alert ends while the new level holds
    back = run(m, st, stream(120, start + 150))
    assert not [s for _, s in back if s.rule == "water.event" and s.active]


def test_a_short_turbidity_blip_of_one_channel_is_not_an_event() -> None:
    m, st = warmed()
    start = 10 * 60
    sigs = run(m, st, stream(3, start, turbidity_ntu=0.30))
    sigs += run(m, st, stream(60, start + 3))
    assert not [s for _, s in sigs if s.rule == "water.event"]


def test_ph_beyond_its_limit_is_a_range_alert_m_of_n_with_a_level() -> None:
    m, st = warmed()
    start = 10 * 60
    sigs = run(m, st, stream(20, start, ph=8.9))
    ranges = [(minute, s) for minute, s in sigs if s.rule == "water.range"]
    minute, first = ranges[0]
    assert minute - start == 2  # three readings out of five
    assert first.level == Level.ORANGE  # 0.4 beyond a 2.0 band: 20%
    assert first.evidence["ph"] == {"value": 8.9, "limit": 8.5, "check": "limit"}
    assert "水质超标" in first.title
    back = run(m, st, stream(15, start + 20))
    assert [s.active for _, s in back if s.rule == "water.range"] == [False]


def test_lost_chlorine_is_at_least_orange_and_a_dead_probe_is_a_span_fault() -> None:
    m, st = warmed()
    start = 10 * 60
    sigs = run(m, st, stream(5, start, chlorine_mg_l=0.04))
    chl = next(s for _, s in sigs if s.rule == "water.range")
    assert chl.level >= Level.ORANGE
    m2, st2 = warmed()
    sigs = run(m2, st2, stream(5, start, conductivity_us_cm=0.0))
    dead = next(s for _, s in sigs if s.rule == "water.range")
    assert dead.evidence["conductivity_us_cm"]["check"] == "span"
    assert "量程" in dead.title


def test_a_frozen_analyser_is_stuck_after_hours_and_leaves_the_event_deviation() -> None:
    m, st = warmed()
    start = 10 * 60
    frozen = quiet(start - 1, random.Random(0))["ph"]
    sigs = run(m, st, stream(5 * 60, start, ph=frozen))
    stuck = [(minute, s) for minute, s in sigs if s.rule == "water.stuck"]
    minute, first = stuck[0]
    assert minute - start >= 4 * 60  # never before stuck_min_ms
    assert first.level == Level.BLUE
    assert first.evidence["channels"] == ["ph"]
    assert not [s for _, s in sigs if s.rule == "water.event"]
    assert st.stuck[1]
    moved = run(m, st, stream(2, start + 5 * 60))
    assert [s.active for _, s in moved if s.rule == "water.stuck"] == [False]


def test_a_coarse_channel_sitting_still_for_an_hour_is_not_stuck() -> None:
    m, st = warmed()
    start = 10 * 60
    sigs = run(m, st, stream(60, start, conductivity_us_cm=420.0))
    assert not [s for _, s in sigs if s.rule == "water.stuck"]


def test_late_readings_and_missing_channels_are_handled() -> None:
    m, st = warmed()
    before = pickle.dumps(st)
    late = Water(ts=T0, station=STATION, ph=3.0)
    assert m.update(st, late) == []
    assert pickle.dumps(st) == before
    empty = Water(ts=T0 + 10 * 60 * MIN, station=STATION)
    assert m.update(st, empty) == []
    only_ph = Water(ts=T0 + 10 * 60 * MIN + MIN, station=STATION, ph=7.3)
    assert m.update(st, only_ph) == []


def test_an_unregistered_station_is_judged_and_says_so() -> None:
    m = WaterModel()
    st = m.new_state("X9")
    sigs = []
    for minute, ev in stream(10 * 60 + 10):
        e = Water(**{**{f: getattr(ev, f) for f in ev.__struct_fields__}, "station": "X9"})
        if minute >= 10 * 60:
            e = Water(**{**{f: getattr(e, f) for f in e.__struct_fields__}, "ph": 9.2})
        sigs += m.update(st, e)
    assert sigs
    assert sigs[0].evidence["registered"] is False
    assert sigs[0].lat is None


def test_state_pickles_mid_stream_and_continues_identically() -> None:
    m, st = warmed()
    twin = pickle.loads(pickle.dumps(st))  # noqa: S301 (our own bytes)
    start = 10 * 60
    a = run(m, st, stream(60, start, turbidity_ntu=0.5, redox_mv=640.0))
    b = run(m, twin, stream(60, start, turbidity_ntu=0.5, redox_mv=640.0))
    assert a == b
    assert a
    assert len(pickle.dumps(st)) < 16_384


def test_route_and_kinds() -> None:
    m = WaterModel()
    assert m.kinds == frozenset({"water"})
    assert m.route(Water(ts=T0, station="A")) == "A"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limits": {"ph": (9.0, 6.5)}}, "limits"),
        ({"limits": {"salinity": (0.0, 1.0)}}, "unknown channel"),
        ({"event_z": 0.0}, "event_z"),
        ({"range_m": 6, "range_n": 5}, "range_m"),
        ({"stuck_score": 1.0}, "stuck_score"),
        ({"hold_ms": 0}, "hold_ms"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        WaterConfig(**kwargs)  # type: ignore[arg-type]
