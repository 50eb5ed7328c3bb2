"""The flow's pure pieces: router, watermark, gate, model shard clocks."""

from __future__ import annotations

import contextlib
import pickle
import time
from typing import Any, ClassVar

import msgspec
import pytest

from citywatch.alerts import Signal, Subject
from citywatch.events import Air, Event
from flows.city import FlowConfig, Gate, ModelShard, Router, Tick, Watermark
from flows.sources import Batch, DecodingSource, RawReader, RawSource
from models.base import Model
from tests.flows.toy import MIN, T0, ToyExceedance


def air(station: str, minute: float) -> Air:
    return Air(ts=T0 + int(minute * MIN), station=station, pm25=10.0)


class Records(RawSource):
    """In-memory partitions of encoded events, read ``batch`` records at a time."""

    def __init__(self, live: bool = False, **parts: list[Any]) -> None:
        self.parts, self.live = parts, live

    def list_parts(self) -> list[str]:
        return list(self.parts)

    def open(self, part: str, position: int | None) -> RawReader:
        records = [msgspec.json.encode(e) for e in self.parts[part]]
        return _Reader(records, position or 0, self.live)


class _Reader(RawReader):
    def __init__(self, records: list[bytes], at: int, live: bool) -> None:
        self.records, self.at, self.is_live = records, at, live

    def read(self, max_n: int) -> list[bytes]:
        if self.at >= len(self.records) and not self.is_live:
            raise StopIteration
        out = self.records[self.at : self.at + max_n]
        self.at += len(out)
        return out

    def position(self) -> int:
        return self.at


def toy_router(**kw: Any) -> Router:
    cfg = FlowConfig(**{"shards": 1, "engine_shards": 1, "area_shards": 1, **kw})
    return Router([ToyExceedance()], cfg)


def batches(events: list[Any], router: Router, size: int = 100, part: str = "p0") -> list[Batch]:
    """Every batch of one partition holding ``events`` (the end-of-input batch last)."""
    src = DecodingSource(Records(**{part: events}), batch_size=size, splitter=router)
    p, out = src.build_part("in", part, None), []
    with contextlib.suppress(StopIteration):
        while True:
            out += p.next_batch()
    return out


TOY = "m:toy.exceedance#0"


def test_partitions_route_with_ticks_in_order_between_events() -> None:
    router = toy_router(progress_ms=None)
    evs = [air("S1", 0.5), air("S1", 0.9), air("S1", 1.2), air("S1", 3.1)]
    first = batches(evs, router)[0]
    items = first.groups[TOY]
    kinds = [type(x).__name__ if type(x) is Tick else x[1].ts - T0 for x in items]
    assert kinds == ["Tick", 30_000, 54_000, "Tick", 72_000, "Tick", 186_000]
    assert [x.wm - T0 for x in items if type(x) is Tick] == [0, MIN, 3 * MIN]
    # The same events in two batches give the same sequence for the model shard.
    one, two, _ = batches(evs, router, size=2)
    assert one.groups[TOY] + two.groups[TOY] == items
    assert dict(router.step([first])) == {TOY: items}  # the route step passes them on


def test_route_step_marks_progress_after_batches_and_tags_causes() -> None:
    clock = [0.0]
    cfg = FlowConfig(shards=1, engine_shards=1, area_shards=1, progress_ms=50)
    router = Router([ToyExceedance()], cfg, clock=lambda: clock[0])
    late = air("S1", 0.7)  # behind the partition's event time: caused at its newest ts
    later = [air("S1", m) for m in (0.95, 0.96, 1.0, 1.02, 1.05, 1.1)]
    b1, b2, b3, _ = batches([air("S1", 0.5), air("S1", 0.9), late, *later], router, size=3)
    items = dict(router.step([b1]))[TOY]
    assert [x[3] - T0 for x in items if type(x) is tuple] == [30_000, 54_000, 54_000]
    assert items[-1] == Tick(T0 + 54_000, "p0", minute=False)
    clock[0] = 0.01  # 10 ms later: no mark yet
    items = dict(router.step([b2]))[TOY]
    assert not [x for x in items if type(x) is Tick and not x.minute]
    clock[0] = 0.06
    items = dict(router.step([b3]))[TOY]
    assert items[-1] == Tick(T0 + 66_000, "p0", minute=False)


def test_a_partition_ends_with_an_end_tick() -> None:
    router = toy_router(shards=2)
    *rest, end = batches([air("S1", 5.0)], router)
    assert end.is_last
    ends = [x for xs in end.groups.values() for x in xs]
    assert len(ends) == 2  # one per shard
    assert all(t.is_end and t.wm == T0 + 5 * MIN for t in ends)
    router.step(rest)
    assert router.highs == {"p0": T0 + 5 * MIN}
    router.step([end])
    assert router.highs == {}  # no more marks for an ended partition


def test_a_source_without_a_splitter_says_so() -> None:
    with pytest.raises(ValueError, match="no splitter"):
        DecodingSource(Records(p0=[])).build_part("in", "p0", None)


def test_watermark_is_the_minimum_over_live_partitions() -> None:
    wm = Watermark(expected=2)
    assert wm.update(Tick(100, "a")) is None  # "b" has not ticked: unknown
    assert wm.update(Tick(50, "b")) == 50
    assert wm.update(Tick(200, "a")) is None
    assert wm.update(Tick(300, "b")) == 200
    assert wm.update(Tick(300, "b", is_end=True)) is None
    assert wm.update(Tick(400, "a", is_end=True)) == 400
    assert wm.is_complete()
    assert pickle.loads(pickle.dumps(wm)).value() == 400  # noqa: S301


def test_watermark_marks_progress_once_per_move() -> None:
    wm = Watermark(expected=2)
    wm.update(Tick(40, "a"))
    wm.update(Tick(100, "a"))
    assert wm.mark("s") == []  # unknown until every path ticked
    wm.update(Tick(50, "b"))
    # First where the stage began (a's first tick), then where it is.
    assert wm.mark("s") == [Tick(40, "s", minute=False), Tick(50, "s", minute=False)]
    assert wm.mark("s") == []
    wm.update(Tick(300, "b"))
    assert wm.mark("s") == [Tick(100, "s", minute=False)]
    wm.update(Tick(100, "a", is_end=True))
    wm.update(Tick(300, "b", is_end=True))
    assert wm.mark("s") == [Tick(300, "s", is_end=True, minute=False)]


def test_gate_releases_by_cause_with_clock_ticks_between() -> None:
    g = Gate(expected=2, tick_ms=100)
    for cause in (250, 120, 90, 310, 120):
        g.add((cause, str(len(g.items))), cause)
    assert list(g.update(Tick(200, "a"))) == []  # "b" unknown
    assert list(g.update(Tick(130, "b"))) == [([90], 100), ([120, 120], None)]
    assert list(g.update(Tick(260, "b"))) == [([], 200)]  # min 200 (a): 250 may still come
    assert list(g.update(Tick(400, "a", is_end=True))) == [([250], None)]  # a is done: min 260
    assert list(g.update(Tick(260, "b", is_end=True))) == [([], 300), ([310], 400)]


def test_gate_order_does_not_depend_on_how_often_paths_report() -> None:
    import random

    rng = random.Random(7)
    # Two paths, each sending items in cause order with a tick after each item.
    paths = {p: sorted(rng.randrange(0, 2_000) for _ in range(60)) for p in ("a", "b")}

    def run(report_every: int, seed: int) -> list[Any]:
        g, out = Gate(expected=2, tick_ms=250), []
        rr = random.Random(seed)
        queues: dict[str, list[Any]] = {
            p: [(c, (c, p, i)) for i, c in enumerate(cs)] for p, cs in paths.items()
        }
        sent = {"a": 0, "b": 0}
        first = {p: True for p in paths}  # each path first says where it starts (a tick)
        while any(queues.values()):
            p = rr.choice([q for q in queues if queues[q]])
            if first[p]:
                first[p] = False
                for items, clock in g.update(Tick(paths[p][0] // 250 * 250, p)):
                    out.extend(items)
                    out.extend([("clock", clock)] if clock is not None else [])
                continue
            cause, item = queues[p].pop(0)
            g.add((cause, p, item[2]), item)
            sent[p] += 1
            if sent[p] % report_every == 0 or not queues[p]:
                steps = g.update(Tick(cause, p, is_end=not queues[p]))
                for items, clock in steps:
                    out.extend(items)
                    if clock is not None:
                        out.append(("clock", clock))
        return out

    reference = run(1, 0)
    assert [x for x in reference if x[0] != "clock"] == sorted(
        (c, p, i) for p, cs in paths.items() for i, c in enumerate(cs)
    )
    for every, seed in ((1, 1), (3, 2), (7, 3), (1000, 4)):
        assert run(every, seed) == reference


class _Clock(Model):
    """Records the watermarks each key sees."""

    name: ClassVar[str] = "clock"
    kinds: ClassVar[frozenset[str]] = frozenset({"air"})

    def route(self, event: Event) -> str | None:
        return event.key

    def new_state(self, key: str) -> list[int]:
        return []

    def update(self, state: Any, event: Event) -> list[Signal]:
        return []

    def on_watermark(self, state: Any, watermark_ms: int) -> list[Signal]:
        state.append(watermark_ms)
        return [Signal("x.clock", Subject("k", "k"), watermark_ms)]


def test_model_shard_runs_on_watermark_at_each_keys_own_partition_time() -> None:
    shard = ModelShard(_Clock(), None, durable=True, partitions=2)
    shard.on_item([("S1", air("S1", 0), "p0", T0), ("S2", air("S2", 0), "p1", T0)])
    shard.on_item([Tick(T0 + MIN, "p0")])
    shard.on_item([Tick(T0 + 5 * MIN, "p1")])
    assert shard.states["S1"] == [T0 + MIN]
    assert shard.states["S2"] == [T0 + 5 * MIN]
    snap = shard.snapshot()
    resumed = ModelShard(_Clock(), snap, durable=True, partitions=2)
    resumed.on_item([Tick(T0 + 2 * MIN, "p0")])
    assert resumed.states["S1"] == [T0 + MIN, T0 + 2 * MIN]
    assert ModelShard(_Clock(), None, durable=False, partitions=1).snapshot() is None


def test_an_idle_live_partition_follows_the_wall_clock(monkeypatch: Any) -> None:
    import flows.sources as sources

    monkeypatch.setattr(sources, "IDLE_S", 0.0)
    router = toy_router()
    src = DecodingSource(Records(live=True, q=[]), lateness_ms=60_000, splitter=router)
    (b,) = src.build_part("in", "q", None).next_batch()
    assert b.prev_high_ts == 0
    # No record yet, nothing beside it: now - lateness (records of the last 2 x lateness
    # still count as on time).
    assert abs(b.high_ts - (time.time() * 1000 - 60_000)) < 5_000
    ticks = [x for _, xs in router.step([b]) for x in xs if type(x) is Tick]
    assert [t.wm for t in ticks if t.minute] == [b.high_ts // MIN * MIN]
    assert [t.wm for t in ticks if not t.minute] == [b.high_ts]  # and the progress mark


def test_a_restarted_partition_replays_routing_state_before_new_records() -> None:
    """The worksite model's order gate lives on the model (``route``); after a restart the
    source gives back the newest order per site so routing resumes where it stopped."""
    from citywatch.events import Order, Video
    from models.worksites.model import WorksiteResumption

    t0 = T0
    records = [
        Order(ts=t0, site="W1", action="suspend", until=t0 + 3_600_000),
        Order(ts=t0 + 1_000, site="W2", action="suspend", until=t0 + 3_600_000),
        Order(ts=t0 + 2_000, site="W2", action="lift"),
        *[Video(ts=t0 + 3_000 + i, camera=f"C{i}", site="W1", persons=1) for i in range(3)],
    ]
    cfg = FlowConfig(shards=1, engine_shards=1, area_shards=1, progress_ms=None)
    src = DecodingSource(Records(p=records), batch_size=3)
    part = src.split_by(Router([WorksiteResumption()], cfg)).build_part("in", "p", None)
    (first,) = part.next_batch()
    assert [x[1].kind for x in first.groups[WORKSITE] if type(x) is tuple] == ["order"] * 3
    state = part.snapshot()
    assert sorted((e.site, e.action) for e in state.memory) == [
        ("W1", "suspend"),  # the earliest record of all, and W1's newest
        ("W1", "suspend"),
        ("W2", "lift"),  # only W2's newest
    ]
    # A new process: a new model with an empty gate; without the replay it would drop the
    # videos of W1 (not suspended, as far as it knows).
    resumed = src.split_by(Router([WorksiteResumption()], cfg)).build_part("in", "p", state)
    (b,) = resumed.next_batch()
    routed = [x for x in b.groups[WORKSITE] if type(x) is tuple]
    assert [x[1].camera for x in routed] == ["C0", "C1", "C2"]  # W1 is still suspended
    fresh = src.split_by(Router([WorksiteResumption()], cfg)).build_part("in", "p", None)
    fresh.next_batch()  # the orders
    assert state.memory == fresh.snapshot().memory  # replaying remembers nothing new


WORKSITE = "m:worksite.resumption#0"


def test_a_quiet_live_partition_follows_the_busiest_one_of_its_process() -> None:
    """Every stage waits for the slowest partition: a live stream with nothing to say (the
    order stream, most of the day) must not hold every alert back."""
    router = toy_router(progress_ms=None)
    busy = [air("S1", m) for m in (0.5, 1.0, 2.5)]
    src = DecodingSource(Records(live=True, busy=busy, quiet=[]), batch_size=2, splitter=router)
    b, q = src.build_part("in", "busy", None), src.build_part("in", "quiet", None)
    assert q.next_batch() == []  # nothing to follow yet
    (first,) = b.next_batch()
    (idle,) = q.next_batch()
    assert (idle.groups.get(TOY), idle.prev_high_ts, idle.high_ts) == (
        [Tick(T0 + MIN, "quiet")],  # it starts where the busy one is
        0,
        first.high_ts,
    )
    assert q.next_batch() == []  # at most every FOLLOW_S, and only forward
    b.next_batch()
    time.sleep(0.03)
    (idle,) = q.next_batch()
    assert idle.high_ts == T0 + int(2.5 * MIN)
    assert idle.groups[TOY] == [Tick(T0 + 2 * MIN, "quiet")]  # its minute ticks follow too


def test_a_quiet_live_process_moves_on_with_the_clock_from_its_last_record(
    monkeypatch: Any,
) -> None:
    import flows.sources as sources

    monkeypatch.setattr(sources, "QUIET_S", 0.0)
    src = DecodingSource(Records(live=True, p=[air("S1", 1.0)]), splitter=toy_router())
    part = src.build_part("in", "p", None)
    (b,) = part.next_batch()
    time.sleep(0.1)
    (idle,) = part.next_batch()
    # 1x from the record (never to the wall clock: these records are from 2026-01-01)
    assert b.high_ts + 100 <= idle.high_ts < b.high_ts + 2_000
