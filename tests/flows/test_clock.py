"""The stages' event clock costs what the input needs, and gives what the every-tick walk gave.

A gated stage used to run every multiple of ``tick_ms`` between two updates: a year of hourly
readings cost 525,600 clock ticks per stage. Now it runs the ticks its items and its own
deadlines (``next_due``) need. These tests count the ticks and compare every output with the
walk that ran every tick.
"""

from __future__ import annotations

import copy
import pickle
import random
from dataclasses import replace
from typing import Any

import pytest
import redis

from citywatch.alerts import Alert, Level, Signal, Subject
from citywatch.events import Hotline
from citywatch.geo import offset
from citywatch.keys import Keys
from citywatch.settings import Settings
from flows import city
from flows.city import EngineShard, FlowConfig, Gate, Tick, build_flow
from flows.sources import DecodingSource
from flows.sources.iterable import IterableSource
from models.alert_engine import (
    DEFAULT_POLICIES,
    AlertEngine,
    EngineSnapshot,
    RulePolicy,
    Silence,
)
from models.incidents import IncidentCorrelator
from models.vehicles.model import WorkshopModel
from sinks.redis_sink import RedisSink
from tests.flows.conftest import final_alerts, stream_versions
from tests.flows.toy import MIN, T0, ToyExceedance, air
from tests.models.test_incidents import LAT, LON, alert

HOUR = 60 * MIN


def _signals(rng: random.Random, start: int, hours: int) -> list[tuple[int, Signal]]:
    """(cause, signal): a few stations' hourly findings, some episodes, some clears."""
    out = []
    for h in range(hours):
        for s in range(3):
            if rng.random() < 0.5:
                continue
            ts = start + h * HOUR + s * 1000
            active = rng.random() < 0.7
            level = rng.choice([Level.YELLOW, Level.ORANGE, Level.RED])
            sig = Signal(
                rng.choice(["air.spike", "air.stuck", "air.exceedance"]),
                Subject("station", f"S{s}"),
                ts - rng.choice([0, 0, 5 * MIN, 3 * HOUR]),  # now and then a late finding
                active=active,
                level=level,
                interval_ms=HOUR if s else None,  # hourly stations and one of unknown cadence
            )
            out.append((ts, sig))
    return out


def _drive(shard: EngineShard, signals: list[tuple[int, Signal]], end: int) -> list[Any]:
    """Two paths: signals in cause order, each path reporting progress after a few of them."""
    out: list[Any] = []
    paths = {"a": signals[0::2], "b": signals[1::2]}
    for p, items in paths.items():
        out += list(shard.on_item([Tick(items[0][0] // MIN * MIN, p)])[0])
    i = {"a": 0, "b": 0}
    rng = random.Random(5)
    while any(i[p] < len(items) for p, items in paths.items()):
        p = rng.choice([q for q in paths if i[q] < len(paths[q])])
        k = min(len(paths[p]), i[p] + rng.randint(1, 6))
        batch: list[Any] = list(paths[p][i[p] : k])
        i[p] = k
        batch.append(Tick(batch[-1][0], p, minute=False))
        out += list(shard.on_item(batch)[0])
    for p in paths:
        out += list(shard.on_item([Tick(end, p, is_end=True)])[0])
    return [x for items in out for x in items]


class CountingEngine(AlertEngine):
    advances = 0

    def advance(self, watermark_ms: int) -> list[Alert]:
        CountingEngine.advances += 1
        return super().advance(watermark_ms)


def _engine() -> CountingEngine:
    pol = {
        "air.spike": RulePolicy(quiet_ms=20 * MIN),
        "air.stuck": RulePolicy(quiet_ms=3 * HOUR, refresh_ms=30 * MIN),
        "air.exceedance": RulePolicy(quiet_ms=90 * MIN, deescalate_ms=2 * HOUR),
    }
    return CountingEngine(pol)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_engine_clock_runs_a_few_ticks_per_hour_and_changes_nothing(seed: int) -> None:
    signals = _signals(random.Random(seed), T0, 24 * 20)  # 20 days of hourly findings
    end = T0 + 21 * 24 * HOUR
    runs = []
    for skip in (True, False):
        CountingEngine.advances = 0
        shard = EngineShard(_engine(), Gate(2, MIN), grace_ms=11 * MIN, durable=False)
        if not skip:  # the walk over every minute (no cap: the reference)
            shard._due = None  # type: ignore[method-assign,assignment]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(city, "MAX_CLOCK_STEPS", 10**9)
            out = _drive(shard, signals, end)
        runs.append((out, CountingEngine.advances))
    (fast, fast_ticks), (walk, walk_ticks) = runs
    assert fast == walk
    alerts = [x[1] for x in fast if type(x) is tuple]
    assert any(a.state.value == "resolved" for a in alerts)
    minutes = (end - T0) // MIN
    assert walk_ticks >= minutes  # the old cost: one tick per minute of event time
    assert fast_ticks < 3 * 24 * 21  # now about two per hour with findings, plus deadlines


def test_an_hourly_station_through_the_gated_engine_is_one_alert_reopened_after_a_gap() -> None:
    """Hour-apart readings (interval known) stay one alert; two missing readings resolve it,
    the return reopens the same id; the skipping clock gives what the minute walk gives."""
    hours = [h for h in range(30) if h not in (10, 11, 12)]
    signals = [
        (
            T0 + h * HOUR,
            Signal(
                "air.exceedance",
                Subject("station", "S1"),
                T0 + h * HOUR,
                level=Level.ORANGE,
                interval_ms=HOUR,
            ),
        )
        for h in hours
    ]
    end = T0 + 40 * HOUR
    runs = []
    for skip in (True, False):
        shard = EngineShard(AlertEngine(), Gate(2, MIN), grace_ms=11 * MIN, durable=False)
        if not skip:
            shard._due = None  # type: ignore[method-assign,assignment]
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(city, "MAX_CLOCK_STEPS", 10**9)
            runs.append(_drive(shard, signals, end))
    assert runs[0] == runs[1]
    alerts = [x[1] for x in runs[0] if type(x) is tuple]
    assert len({a.id for a in alerts}) == 1
    states = [a.state.value for a in alerts]
    # firing every hour, resolved 2.5 h after hour 9, firing again at 13, resolved at the end
    assert states.count("resolved") == 2
    assert alerts[-1].state.value == "resolved"
    assert [a.version for a in alerts] == list(range(1, len(alerts) + 1))
    back = alerts[states.index("resolved") + 1]
    assert (back.state.value, back.last_ts) == ("firing", T0 + 13 * HOUR)


def test_a_silence_that_ends_between_items_is_a_tick_of_its_own() -> None:
    shard = EngineShard(AlertEngine(), Gate(1, MIN), grace_ms=0, durable=False)
    shard.engine.set_silences([Silence("s1", until_ms=T0 + 90 * MIN, rule="air.drift")])
    sig = Signal("air.drift", Subject("station", "S1"), T0 + MIN, level=Level.RED)  # quiet 6 h
    out = list(shard.on_item([Tick(T0, "p"), (T0 + MIN, sig), Tick(T0 + 2 * MIN, "p")])[0])
    assert not [x for x in out[0] if type(x) is tuple]  # silenced
    # Nothing comes for hours: the silence's end is still where the alert is let out.
    (items,) = shard.on_item([Tick(T0 + 5 * HOUR, "p")])[0]
    emitted = [(cause, a.rule) for cause, a in (x for x in items if type(x) is tuple)]
    assert emitted == [(T0 + 90 * MIN, "air.drift")]


# -- next_due is exact: never later than what advance does, and something happens at it --------


def _sig(rng: random.Random, ts: int) -> Signal:
    return Signal(
        rng.choice(["air.spike", "air.stuck", "vehicle.dwell"]),
        Subject("station", f"S{rng.randrange(4)}"),
        ts,
        active=rng.random() < 0.8,
        level=rng.choice([Level.YELLOW, Level.RED]),
        interval_ms=rng.choice([None, None, 5 * MIN, HOUR]),  # the quiet horizon follows it
    )


def _held(eng: AlertEngine) -> tuple[Any, ...]:
    return eng.tracks, eng.closed, eng.silences


@pytest.mark.parametrize("seed", range(6))
def test_engine_next_due_is_when_advance_first_acts(seed: int) -> None:
    rng = random.Random(seed)
    # The default policies (whatever they come to hold), one with a debounce.
    stuck = replace(DEFAULT_POLICIES["air.stuck"], for_ms=5 * MIN, for_count=2)
    eng = AlertEngine({**DEFAULT_POLICIES, "air.stuck": stuck})
    ts = T0
    checked = 0
    for _ in range(300):
        ts += rng.randrange(0, 15 * MIN)
        eng.on_signal(_sig(rng, ts - rng.choice([0, 0, 40 * MIN])))
        if rng.random() < 0.05:
            eng.set_silences([Silence("x", until_ms=ts + rng.randrange(1, 90) * MIN)])
        if rng.random() < 0.3:
            eng.advance(ts - rng.randrange(0, 20 * MIN))
        due = eng.next_due()
        if due is None:
            assert not eng.tracks
            assert not eng.closed  # resolved tracks waiting to reopen are due when they go
            assert not eng.silences
            continue
        at = max(due, eng.watermark + 1)
        before = copy.deepcopy(eng)
        assert before.advance(at - 1) == []
        assert _held(before) == _held(eng)
        after = copy.deepcopy(eng)
        out = after.advance(at)
        assert out or _held(after) != _held(eng)
        checked += 1
    assert checked > 50


def test_engine_next_due_after_a_snapshot() -> None:
    eng = AlertEngine()
    eng.on_signal(Signal("air.spike", Subject("station", "S"), T0, level=Level.RED))
    again = AlertEngine(snapshot=pickle.loads(pickle.dumps(eng.snapshot())))  # noqa: S301
    assert again.next_due() == eng.next_due() == T0 + 20 * MIN + 1


def test_correlator_next_due_is_when_advance_first_acts() -> None:
    rng = random.Random(3)
    corr = IncidentCorrelator()
    ts = T0
    checked = 0
    for i in range(120):
        ts += rng.randrange(1, 40) * MIN
        north = rng.uniform(-900, 900)
        if rng.random() < 0.4:
            lat, lon = offset(LAT, LON, north, 0.0)
            corr.observe_ticket(
                Hotline(ts=ts, ticket=f"T{i}", text="一股化工异味", lat=lat, lon=lon)
            )
        else:
            rule, kind = rng.choice([("air.spike", "station"), ("vehicle.dwell", "vehicle")])
            corr.observe_alert(alert(f"a{i}", rule, kind, f"s{i}", ts, north, registered=False))
        due = corr.next_due()
        assert due is not None
        at = max(due, corr.watermark_ms + 1)
        before = copy.deepcopy(corr)
        assert before.advance(at - 1) == []
        assert len(before._items) == len(corr._items)
        assert before.open_incidents == corr.open_incidents
        after = copy.deepcopy(corr)
        out = after.advance(at)
        assert out or len(after._items) < len(corr._items)
        checked += 1
    assert checked == 120


def test_workshop_next_due_is_when_on_watermark_first_acts() -> None:
    model = WorkshopModel(max_open_s=3600.0, refresh_s=6 * 3600.0)
    state = model.new_state("city")
    rng = random.Random(4)
    ts = T0
    for _ in range(80):
        ts += rng.randrange(1, 90) * MIN
        v = f"V{rng.randrange(6)}"
        sig = Signal(
            "vehicle.dwell",
            Subject("vehicle", v),
            ts,
            active=rng.random() < 0.8,
            level=Level.ORANGE,
            lat=32.0 + rng.choice([0.0, 0.1]),
            lon=120.9,
            evidence={"context": "unregistered", "start_ms": ts - 20 * MIN, "dwell_s": 1200.0},
        )
        model.update(state, sig)
        due = model.next_due(state)
        assert due is not None
        if due <= ts:
            model.on_watermark(state, ts)
            continue
        before = copy.deepcopy(state)
        assert model.on_watermark(before, due - 1) == []
        assert vars_of(before) == vars_of(state)
        after = copy.deepcopy(state)
        out = model.on_watermark(after, due)
        assert out or vars_of(after) != vars_of(state)


def vars_of(state: Any) -> Any:
    return (state._open, state.refreshed_ms, sorted(state.candidates))


# -- the flow end to end ------------------------------------------------------------------------


def _hourly(stations: int, hours: int) -> list[bytes]:
    recs = []
    rng = random.Random(9)
    for h in range(hours):
        for s in range(stations):
            pm = rng.choice([20.0, 80.0, 150.0, 150.0, 300.0]) if h % 30 < 8 else 30.0
            recs.append(air(f"S{s}", h * 60, pm))
    return recs


def _run(recs: list[bytes], settings: Settings, *, walk: bool, batch_size: int) -> tuple[Any, int]:
    assert settings.redis_url is not None
    CountingEngine.advances = 0
    source = DecodingSource(
        IterableSource(lambda: iter(recs)), region=settings.region_box, batch_size=batch_size
    )
    sink = RedisSink(settings.redis_url, settings.keys, run_id="clock")

    def make_engine(snap: EngineSnapshot | None) -> AlertEngine:
        return CountingEngine(snapshot=snap)

    flow = build_flow(
        source,
        sink,
        models=[ToyExceedance()],
        config=FlowConfig(),
        make_engine=make_engine,
        make_correlator=IncidentCorrelator,
    )
    from bytewax.testing import run_main

    with pytest.MonkeyPatch.context() as mp:
        if walk:  # every stage walks every minute, as before
            mp.setattr(city, "MAX_CLOCK_STEPS", 10**9)
            update = Gate.update
            mp.setattr(Gate, "update", lambda self, tick, due=None: update(self, tick))
        run_main(flow)  # type: ignore[no-untyped-call]
    return settings, CountingEngine.advances


@pytest.mark.integration
def test_a_sparse_month_costs_its_records_not_its_minutes(
    settings: Settings, keys: Keys, redis_client: redis.Redis
) -> None:
    recs = _hourly(stations=3, hours=24 * 30)
    results = []
    for walk, batch, prefix in ((False, 40, "f:"), (True, 500, "w:"), (False, 997, "g:")):
        s = settings.with_(prefix=settings.prefix + prefix)
        _, advances = _run(recs, s, walk=walk, batch_size=batch)
        results.append(
            (stream_versions(redis_client, s.keys), final_alerts(redis_client, s.keys), advances)
        )
    (fast, fast_final, fast_n), (walk, walk_final, walk_n), (other, other_final, _) = results
    assert fast_final
    assert fast == walk == other
    assert fast_final == walk_final == other_final
    minutes = 24 * 30 * 60
    # Engine shards, flood-guard shards and the correlator's engine each walked every minute...
    assert walk_n >= 4.9 * minutes
    # ... and now tick a few times per hour of records at most.
    print(f"advances: every tick {walk_n}, as needed {fast_n}")
    assert fast_n < 5 * 24 * 30 * 3


@pytest.mark.parametrize("due", [None, lambda: None])
def test_the_end_of_input_releases_everything_held_whatever_the_last_marks_said(
    due: Any,
) -> None:
    # Two paths; the last progress mark of each (12:00:05.727) is below an item caused at
    # 12:00:34, and each path ends with its minute tick (12:00:00), below both: the input is
    # complete, so the item must come out (it used to stay held: the watermark had not moved).
    gate = Gate(2, 60_000)
    base = 1_793_549_640_000
    for p in ("a", "b"):
        list(gate.update(Tick(base, p), due))
        list(gate.update(Tick(base + 5_727, p, minute=False), due))
    gate.add((base + 34_289, "x"), "the item")
    list(gate.update(Tick(base, "a", is_end=True), due))
    released = [x for items, _ in gate.update(Tick(base, "b", is_end=True), due) for x in items]
    assert released == ["the item"]
    assert gate.items == []
