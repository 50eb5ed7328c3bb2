"""The flow's pure pieces: router, watermark, gate, model shard clocks."""

from __future__ import annotations

import pickle
import time
from typing import Any, ClassVar

from citywatch.alerts import Signal, Subject
from citywatch.events import Air, Event
from flows.city import FlowConfig, Gate, ModelShard, Tick, Watermark, make_router
from flows.sources import Batch
from models.base import Model
from tests.flows.toy import MIN, T0, ToyExceedance


def air(station: str, minute: float) -> Air:
    return Air(ts=T0 + int(minute * MIN), station=station, pm25=10.0)


def batch(events: list[Any], part: str = "p0", prev: int = 0, last: bool = False) -> Batch:
    high = max([prev] + [e.ts for e in events])
    return Batch(part, 0, events, [], b"", prev, high, is_last=last)


def test_router_puts_ticks_in_order_between_events() -> None:
    cfg = FlowConfig(shards=1, engine_shards=1, area_shards=1, progress_ms=None)
    route = make_router([ToyExceedance()], cfg)
    evs = [air("S1", 0.5), air("S1", 0.9), air("S1", 1.2), air("S1", 3.1)]
    out = dict(route([batch(evs)]))
    items = out["m:toy.exceedance#0"]
    kinds = [type(x).__name__ if type(x) is Tick else x[1].ts - T0 for x in items]
    assert kinds == ["Tick", 30_000, 54_000, "Tick", 72_000, "Tick", 186_000]
    assert [x.wm - T0 for x in items if type(x) is Tick] == [0, MIN, 3 * MIN]
    # The same events in two batches give the same sequence for the model shard.
    first, second = route([batch(evs[:2])]), route([batch(evs[2:], prev=evs[1].ts)])
    split = dict(first)["m:toy.exceedance#0"] + dict(second)["m:toy.exceedance#0"]
    assert split == items


def test_router_marks_progress_after_batches_and_tags_causes() -> None:
    clock = [0.0]
    cfg = FlowConfig(shards=1, engine_shards=1, area_shards=1, progress_ms=50)
    route = make_router([ToyExceedance()], cfg, clock=lambda: clock[0])
    late = air("S1", 0.7)  # behind the partition's event time: caused at its newest ts
    out = dict(route([batch([air("S1", 0.5), air("S1", 0.9), late])]))
    items = out["m:toy.exceedance#0"]
    assert [x[3] - T0 for x in items if type(x) is tuple] == [30_000, 54_000, 54_000]
    assert items[-1] == Tick(T0 + 54_000, "p0", minute=False)
    clock[0] = 0.01  # 10 ms later: no mark yet
    items = dict(route([batch([air("S1", 1.0)], prev=T0 + 54_000)]))["m:toy.exceedance#0"]
    assert not [x for x in items if type(x) is Tick and not x.minute]
    clock[0] = 0.06
    items = dict(route([batch([air("S1", 1.1)], prev=T0 + 60_000)]))["m:toy.exceedance#0"]
    assert items[-1] == Tick(T0 + 66_000, "p0", minute=False)


def test_router_ends_a_partition_with_an_end_tick() -> None:
    route = make_router([ToyExceedance()], FlowConfig(shards=2, engine_shards=1, area_shards=1))
    out = route([batch([], prev=T0 + 5 * MIN, last=True)])
    ends = [x for _, xs in out for x in xs if type(x) is Tick]
    assert ends
    assert all(t.is_end and t.wm == T0 + 5 * MIN for t in ends)


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
    assert g.update(Tick(200, "a")) == []  # "b" unknown
    assert g.update(Tick(130, "b")) == [([90], 100), ([120, 120], None)]
    assert g.update(Tick(260, "b")) == [([], 200)]  # min 200 (a): 250 may still come
    assert g.update(Tick(400, "a", is_end=True)) == [([250], None)]  # a is done: min 260
    assert g.update(Tick(260, "b", is_end=True)) == [([], 300), ([310], 400)]


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
    import time

    import flows.sources as sources
    from flows.sources import DecodingSource, RawReader, RawSource

    class Quiet(RawReader):
        is_live = True

        def read(self, max_n: int) -> list[bytes]:
            return []

        def position(self) -> None:
            return None

    class QuietSource(RawSource):
        def list_parts(self) -> list[str]:
            return ["q"]

        def open(self, part: str, position: Any) -> RawReader:
            return Quiet()

    monkeypatch.setattr(sources, "IDLE_S", 0.0)
    part = DecodingSource(QuietSource(), lateness_ms=60_000).build_part("in", "q", None)
    (b,) = part.next_batch()
    assert (b.events, b.prev_high_ts) == ([], 0)
    # No record yet, nothing beside it: now - lateness (records of the last 2 x lateness
    # still count as on time).
    assert abs(b.high_ts - (time.time() * 1000 - 60_000)) < 5_000
    route = make_router([ToyExceedance()], FlowConfig(shards=1, engine_shards=1, area_shards=1))
    ticks = [x for _, xs in route([b]) for x in xs if type(x) is Tick]
    assert [t.wm for t in ticks if t.minute] == [b.high_ts // MIN * MIN]
    assert [t.wm for t in ticks if not t.minute] == [b.high_ts]  # and the progress mark


def test_a_restarted_partition_replays_routing_state_before_new_records() -> None:
    """The worksite model's order gate lives on the model (``route``); after a restart the
    source gives back the newest order per site so routing resumes where it stopped."""
    import msgspec

    from citywatch.events import Order, Video
    from flows.sources import DecodingSource
    from flows.sources.iterable import IterableSource
    from models.worksites.model import WorksiteResumption

    def rec(ev: Any) -> bytes:
        return msgspec.json.encode(ev)

    t0 = T0
    records = [
        rec(Order(ts=t0, site="W1", action="suspend", until=t0 + 3_600_000)),
        rec(Order(ts=t0 + 1_000, site="W2", action="suspend", until=t0 + 3_600_000)),
        rec(Order(ts=t0 + 2_000, site="W2", action="lift")),
        *[rec(Video(ts=t0 + 3_000 + i, camera=f"C{i}", site="W1", persons=1)) for i in range(3)],
    ]
    src = DecodingSource(
        IterableSource(lambda: iter(records)), batch_size=3, remember=frozenset({"order"})
    )
    part = src.build_part("in", "iter:0/1", None)
    (first,) = part.next_batch()
    assert [e.kind for e in first.events] == ["order"] * 3
    assert first.replay == ()
    state = part.snapshot()
    assert sorted((e.site, e.action) for e in state.memory) == [
        ("W1", "suspend"),  # the earliest record of all, and W1's newest
        ("W1", "suspend"),
        ("W2", "lift"),  # only W2's newest
    ]
    resumed = src.build_part("in", "iter:0/1", state)
    (b,) = resumed.next_batch()
    assert [e.kind for e in b.events] == ["video"] * 3
    assert [e.ts - t0 for e in b.replay] == [0, 0, 2_000]
    model = WorksiteResumption()  # a new process: an empty gate
    cfg = FlowConfig(shards=1, engine_shards=1, area_shards=1, progress_ms=None)
    out = dict(make_router([model], cfg)([b]))
    routed = [x for x in out["m:worksite.resumption#0"] if type(x) is tuple]
    assert [x[1].camera for x in routed] == ["C0", "C1", "C2"]  # W1 is still suspended
    (again,) = resumed.next_batch()  # only the first batch after the restart replays
    assert again.replay == ()


def test_a_quiet_live_partition_follows_the_busiest_one_of_its_process() -> None:
    """Every stage waits for the slowest partition: a live stream with nothing to say (the
    order stream, most of the day) must not hold every alert back."""
    import msgspec

    from flows.sources import DecodingSource, RawReader, RawSource

    busy = [msgspec.json.encode(air("S1", m)) for m in (0.5, 1.0, 2.5)]

    class Live(RawReader):
        is_live = True

        def __init__(self, records: list[bytes]) -> None:
            self.records = records

        def read(self, max_n: int) -> list[bytes]:
            out, self.records = self.records[:max_n], self.records[max_n:]
            return out

        def position(self) -> None:
            return None

    class LiveSource(RawSource):
        def list_parts(self) -> list[str]:
            return ["busy", "quiet"]

        def open(self, part: str, position: Any) -> RawReader:
            return Live(busy if part == "busy" else [])

    src = DecodingSource(LiveSource(), batch_size=2)
    b, q = src.build_part("in", "busy", None), src.build_part("in", "quiet", None)
    assert q.next_batch() == []  # nothing to follow yet
    (first,) = b.next_batch()
    (idle,) = q.next_batch()
    assert (idle.events, idle.prev_high_ts, idle.high_ts) == ([], 0, first.high_ts)
    assert q.next_batch() == []  # at most every FOLLOW_S, and only forward
    b.next_batch()
    time.sleep(0.03)
    (idle,) = q.next_batch()
    assert idle.high_ts == T0 + int(2.5 * MIN)
    route = make_router([ToyExceedance()], FlowConfig(shards=1, progress_ms=None))
    ticks = [x for _, xs in route([idle]) for x in xs if type(x) is Tick]
    assert [t.wm - T0 for t in ticks] == [2 * MIN]  # its minute ticks follow too


def test_a_quiet_live_process_moves_on_with_the_clock_from_its_last_record(
    monkeypatch: Any,
) -> None:
    import msgspec

    import flows.sources as sources
    from flows.sources import DecodingSource, RawReader, RawSource

    class Once(RawReader):
        is_live = True

        def __init__(self) -> None:
            self.records = [msgspec.json.encode(air("S1", 1.0))]

        def read(self, max_n: int) -> list[bytes]:
            out, self.records = self.records, []
            return out

        def position(self) -> None:
            return None

    class OnceSource(RawSource):
        def list_parts(self) -> list[str]:
            return ["p"]

        def open(self, part: str, position: Any) -> RawReader:
            return Once()

    monkeypatch.setattr(sources, "QUIET_S", 0.0)
    part = DecodingSource(OnceSource()).build_part("in", "p", None)
    (b,) = part.next_batch()
    time.sleep(0.1)
    (idle,) = part.next_batch()
    # 1x from the record (never to the wall clock: these records are from 2026-01-01)
    assert b.high_ts + 100 <= idle.high_ts < b.high_ts + 2_000
