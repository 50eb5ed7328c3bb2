"""AirModel end to end on the crafted city: each rule fires where it should, and only there."""

from __future__ import annotations

import copy
import math
import pickle
from collections import Counter
from collections.abc import Sequence

import pytest

from citywatch.alerts import Observation, Signal
from citywatch.events import Air
from citywatch.registry import Registry, Station
from models.air.model import AirConfig, AirModel, AirState

from .conftest import MIN, T0, Tweak, make_registry, starts, stream

DAY = 24 * 60


def run(
    tweak: Tweak | None = None,
    minutes: int = DAY,
    cfg: AirConfig | None = None,
    registry: Registry | None = None,
) -> tuple[AirModel, AirState, list[Signal]]:
    m = AirModel(registry or make_registry(), cfg)
    state = m.new_state("air")
    sigs: list[Signal] = []
    for ev in stream(minutes, tweak=tweak):
        key = m.route(ev)
        assert key == "air"
        sigs += [s for s in m.update(state, ev) if isinstance(s, Signal)]
    return m, state, sigs


def signals(xs: Sequence[Signal | Observation]) -> list[Signal]:
    """The signals among a model's output (its observations left out)."""
    return [s for s in xs if isinstance(s, Signal)]


def minute(sig: Signal) -> int:
    return (sig.ts - T0) // MIN


def firsts(sigs: list[Signal], rule: str) -> list[tuple[str, int]]:
    """(subject, minute) of each start of ``rule`` (an active signal after none or a clear)."""
    return starts(sigs, rule, T0, MIN)


def test_an_ordinary_day_is_quiet() -> None:
    _, _, sigs = run()
    assert sigs == []


def test_local_source_fires_a_spike_on_that_station_only() -> None:
    def plume(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s == 5 and 600 <= m < 660:
            v[0] = (v[0] or 0) + 120
            v[1] = (v[1] or 0) + 160
        return v

    _, _, sigs = run(plume)
    assert firsts(sigs, "air.spike") == [("S05", pytest.approx(603, abs=3))]
    clear = [s for s in sigs if s.rule == "air.spike" and not s.active]
    assert len(clear) == 1
    assert 660 <= minute(clear[0]) <= 670
    assert firsts(sigs, "air.episode") == []
    spike = next(s for s in sigs if s.rule == "air.spike")
    assert spike.subject.kind == "station"
    assert spike.evidence["excess_ugm3"] > 60
    assert spike.district == "西区"
    assert 0.5 <= spike.score <= 1.0


def test_regional_episode_fires_one_district_alert_and_no_spikes() -> None:
    def episode(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s % 4 >= 2 and 600 <= m < 840:
            f = 1 + 2 * min(1.0, (m - 600) / 60)
            v[0] = (v[0] or 0) * f
            v[1] = (v[1] or 0) * f
        return v

    _, _, sigs = run(episode)
    starts = firsts(sigs, "air.episode")
    assert [d for d, _ in starts] == ["东区"]
    assert 620 <= starts[0][1] <= 660
    assert firsts(sigs, "air.spike") == []
    ends = [minute(s) for s in sigs if s.rule == "air.episode" and not s.active]
    assert ends
    assert 840 <= ends[0] <= 880


def test_drift_against_neighbours() -> None:
    def drift(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s == 3 and m >= 600:
            v[0] = float(round((v[0] or 0) * (1 + 0.1 * (m - 600) / 60)))
        return v

    _, _, sigs = run(drift, minutes=DAY + 6 * 60)
    starts = firsts(sigs, "air.drift")
    assert [sid for sid, _ in starts] == ["S03"]
    # PM2.5 alone drifts, so its ratio to PM10 (against the neighbours') shows it first,
    # once beyond eight times the station's own mean deviation (+10 %/h: within 8 h)
    assert starts[0][1] < 600 + 8 * 60
    d = next(s for s in sigs if s.rule == "air.drift")
    assert d.evidence["direction"] == "up"
    assert d.evidence["basis"] == "pm25/pm10 ratio vs neighbours"


def test_drift_of_both_channels_is_seen_against_the_neighbours_level() -> None:
    def drift(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s == 3 and m >= 600:
            g = 1 + 0.1 * (m - 600) / 60
            v[0] = float(round((v[0] or 0) * g))
            v[1] = float(round((v[1] or 0) * g))
        return v

    _, _, sigs = run(drift, minutes=DAY + 6 * 60)
    starts = firsts(sigs, "air.drift")
    assert [sid for sid, _ in starts] == ["S03"]
    # found later: the level must clear a station's natural wander against its neighbours
    # (eight times its mean deviation on the hours scale)
    assert starts[0][1] < 600 + 14 * 60
    d = next(s for s in sigs if s.rule == "air.drift")
    assert d.evidence["basis"] == "level vs neighbours"


def test_stuck_station_fires_stuck_and_is_muted() -> None:
    frozen: dict[int, list[float | None]] = {}

    def stuck(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s == 6 and 600 <= m < 900:
            return list(frozen.setdefault(s, v))  # every channel frozen at its last value
        if 700 <= m < 800:
            v[0] = (v[0] or 0) + 60  # real pollution elsewhere: the neighbours rise
        return v

    _, _, sigs = run(stuck)
    assert firsts(sigs, "air.stuck") == [("S06", pytest.approx(608, abs=3))]
    # the frozen station does not take part: no spike, drift or exceedance from it
    assert not [s for s in sigs if s.subject.id == "S06" and s.rule != "air.stuck" and s.active]
    clear = [minute(s) for s in sigs if s.rule == "air.stuck" and not s.active]
    assert clear
    assert 900 <= clear[0] <= 905


def test_a_fault_clears_pollution_alerts_already_firing() -> None:
    def jump_then_freeze(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s == 6 and 600 <= m < 900:
            return [150.0, 260.0, 30.0, 8.0, 40.0, 0.7]
        return v

    _, _, sigs = run(jump_then_freeze)
    s06 = [(s.rule, s.active, minute(s)) for s in sigs if s.subject.id == "S06"]
    spike_on = next(i for i, x in enumerate(s06) if x[:2] == ("air.spike", True))
    stuck_on = next(i for i, x in enumerate(s06) if x[:2] == ("air.stuck", True))
    assert spike_on < stuck_on
    # the clear of the spike comes with the stuck alert, at the same event time
    assert ("air.spike", False, s06[stuck_on][2]) in s06[stuck_on:]
    assert not [x for x in s06[stuck_on:] if x[0] != "air.stuck" and x[1] and x[2] < 900]


def test_gross_range_fires_range_and_clears_it() -> None:
    def gross(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s == 1 and 600 <= m < 700 and m % 4 != 0:
            v[1] = 9999.0
        return v

    _, _, sigs = run(gross)
    assert firsts(sigs, "air.range") == [("S01", pytest.approx(603, abs=2))]
    clear = [minute(s) for s in sigs if s.rule == "air.range" and not s.active]
    assert clear
    assert 700 <= clear[0] <= 712
    assert set(Counter(s.rule for s in sigs)) == {"air.range"}


def test_exceedance_follows_the_hourly_aqi_and_its_table() -> None:
    def polluted(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if 600 <= m < 720:
            v[0] = 68.0 + (m % 3)
            v[1] = 110.0 + (m % 4)
        return v

    # 68-70 µg/m3 of PM2.5 is 良 on HJ 633-2012 and 轻度 on HJ 633-2026 (in force in Nov 2026)
    _, _, sigs = run(polluted)
    ex = [s for s in sigs if s.rule == "air.exceedance" and s.active]
    assert {s.subject.id for s in ex} == {f"S{i:02d}" for i in range(12)}
    first = ex[0]
    assert first.evidence["table"] == "HJ 633-2026"
    assert first.evidence["category"] == "轻度污染"
    assert first.evidence["primary"] == ["pm25"]
    assert first.level.colour == "yellow"
    assert 660 <= minute(first) <= 661  # at the close of the first polluted hour
    # refreshed while it lasts, every version with its AQI and title
    assert len(ex) > 12
    assert all(s.evidence["aqi"] > 100 and s.title.startswith("空气质量") for s in ex)
    _, _, sigs12 = run(polluted, cfg=AirConfig(table="HJ 633-2012"))
    assert not [s for s in sigs12 if s.rule == "air.exceedance"]


def test_levels_of_exceedance_categories() -> None:
    def heavy(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if s == 0 and 600 <= m < 720:
            v[0] = 180.0 + (m % 2)  # 重度污染 on both tables
            v[1] = 260.0 + (m % 3)
        return v

    _, _, sigs = run(heavy)
    ex = [s for s in sigs if s.rule == "air.exceedance" and s.active]
    assert ex
    assert ex[0].level.colour == "red"
    assert ex[0].evidence["category"] == "重度污染"


def test_unknown_station_and_missing_fields_do_not_raise() -> None:
    m = AirModel(make_registry())
    state = m.new_state("air")
    for i in range(200):
        ev = Air(ts=T0 + i * MIN, station="NOT-IN-REGISTRY", pm25=None if i % 3 else 30.0 + i % 7)
        assert signals(m.update(state, ev)) == []
    assert signals(m.update(state, Air(ts=T0, station="S00"))) == []


def test_out_of_order_and_duplicate_readings_are_ignored() -> None:
    m = AirModel(make_registry())
    state = m.new_state("air")
    m.update(state, Air(ts=T0 + MIN, station="S00", pm25=30.0))
    before = pickle.dumps(state)
    assert m.update(state, Air(ts=T0, station="S00", pm25=900.0)) == []
    assert m.update(state, Air(ts=T0 + MIN, station="S00", pm25=900.0)) == []
    assert pickle.dumps(state) == before


def test_district_partition_keys_by_district() -> None:
    m = AirModel(make_registry(), AirConfig(partition="district"))
    assert m.route(Air(ts=T0, station="S03")) == "air:东区"
    assert m.route(Air(ts=T0, station="S00")) == "air:西区"
    assert m.route(Air(ts=T0, station="nope")) == "air:?"
    # neighbours stay inside the district
    for sid, nbs in m.index.neighbours.items():
        d = m.stations[sid].district
        assert all(m.stations[n].district == d for n, _, _ in nbs)


def test_bad_table_name() -> None:
    with pytest.raises(ValueError, match="table"):
        AirModel(make_registry(), AirConfig(table="HJ 999"))


# -- contract ---------------------------------------------------------------------------------


def _plume_and_stuck(m: int, s: int, v: list[float | None]) -> list[float | None]:
    if s == 5 and 300 <= m < 360:
        v[0] = (v[0] or 0) + 120
    if s == 9 and 400 <= m < 500:
        return [50.0, 90.0, 30.0, 8.0, 40.0, 0.7]
    return v


def test_pickle_and_deepcopy_mid_stream_give_identical_later_signals() -> None:
    model = AirModel(make_registry())
    state = model.new_state("air")
    events = list(stream(600, tweak=_plume_and_stuck))
    for ev in events[: 12 * 330]:
        model.update(state, ev)
    clones = [pickle.loads(pickle.dumps(state)), copy.deepcopy(state)]  # noqa: S301
    rest = events[12 * 330 :]
    want = [model.update(state, ev) for ev in rest]
    assert any(want)
    for c in clones:
        assert [model.update(c, ev) for ev in rest] == want


def test_same_input_same_output_and_input_not_mutated() -> None:
    reg = make_registry()
    reg_before = pickle.dumps(reg)
    events = list(stream(500, tweak=_plume_and_stuck))
    snap = [pickle.dumps(e) for e in events]
    outs = []
    for _ in range(2):
        m = AirModel(reg)
        st = m.new_state("air")
        outs.append([s for ev in events for s in signals(m.update(st, ev))])
    assert outs[0] == outs[1]
    assert outs[0]
    assert [pickle.dumps(e) for e in events] == snap
    assert pickle.dumps(reg) == reg_before
    for s in outs[0]:
        assert isinstance(s.score, float)
        assert math.isfinite(s.score)
        assert 0.0 <= s.score <= 1.0
        assert s.model == "air@2"


def test_station_state_is_small() -> None:
    m, state, _ = run(_plume_and_stuck)
    sizes = [m.station_state_bytes(state, sid) for sid in state.stations]
    assert max(sizes) <= 2048, sizes


def test_a_single_station_city_still_runs_qc_and_aqi() -> None:
    reg = Registry(stations={"S00": Station(id="S00", lat=32.0, lon=120.8, district="西区")})
    m = AirModel(reg)
    st = m.new_state("air")
    sigs: list[Signal] = []
    for i in range(200):
        sigs += signals(
            m.update(
                st,
                Air(
                    ts=T0 + i * MIN,
                    station="S00",
                    pm25=200.0 + i % 5,
                    pm10=9999.0 if 100 <= i < 110 else 300.0 + i % 4,
                ),
            )
        )
    rules = {s.rule for s in sigs}
    assert rules == {"air.exceedance", "air.range"}


def test_isolated_station_is_compared_with_the_city() -> None:
    reg = make_registry()
    reg.stations["FAR"] = Station(id="FAR", lat=32.6, lon=121.8, district="海边")  # > 80 km away
    m = AirModel(reg)
    assert m.index.of("FAR") == ()
    state = m.new_state("air")
    sigs: list[Signal] = []
    for ev in stream(DAY):
        sigs += signals(m.update(state, ev))
        if ev.station == "S00":
            minute_ = (ev.ts - T0) // MIN
            pm = (ev.pm25 or 0) * 1.1 + (150.0 if 700 <= minute_ < 760 else 0.0)
            far = Air(ts=ev.ts + 500, station="FAR", pm25=pm + minute_ % 3, pm10=pm * 1.8 + 5)
            sigs += signals(m.update(state, far))
    assert firsts(sigs, "air.spike") == [("FAR", pytest.approx(703, abs=4))]
    others = [s for s in sigs if s.rule != "air.spike"]
    # the plume's hours are also an exceedance there; nothing else anywhere
    assert {(s.rule, s.subject.id) for s in others} <= {("air.exceedance", "FAR")}


def test_on_watermark_closes_the_hour_no_reading_closed() -> None:
    def last_hour(m: int, s: int, v: list[float | None]) -> list[float | None]:
        if m >= 1380:
            v[0] = 90.0 + m % 3
            v[1] = 150.0 + m % 4
        return v

    m, state, sigs = run(last_hour, minutes=DAY)
    assert not [s for s in sigs if s.rule == "air.exceedance"]  # the hour is still open
    assert m.on_watermark(state, T0 + DAY * MIN) == []  # within the grace period
    closed = signals(m.on_watermark(state, T0 + DAY * MIN + 3 * MIN))
    assert {s.subject.id for s in closed if s.rule == "air.exceedance"} == set(state.stations)
    assert m.on_watermark(state, T0 + DAY * MIN + 4 * MIN) == []  # closed once
