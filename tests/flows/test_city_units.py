"""The flow's pure pieces: router, watermark, reorder buffer, model shard clocks."""

from __future__ import annotations

import pickle
from typing import Any, ClassVar

from citywatch.alerts import Signal, Subject
from citywatch.events import Air, Event
from flows.city import FlowConfig, ModelShard, Reorder, Tick, Watermark, make_router
from flows.sources import Batch
from models.base import Model
from tests.flows.toy import MIN, T0, ToyExceedance


def air(station: str, minute: float) -> Air:
    return Air(ts=T0 + int(minute * MIN), station=station, pm25=10.0)


def batch(events: list[Any], part: str = "p0", prev: int = 0, last: bool = False) -> Batch:
    high = max([prev] + [e.ts for e in events])
    return Batch(part, 0, events, [], b"", prev, high, is_last=last)


def test_router_puts_ticks_in_order_between_events() -> None:
    route = make_router([ToyExceedance()], FlowConfig(shards=1, engine_shards=1, area_shards=1))
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


def test_reorder_releases_sorted_up_to_watermark_minus_delay() -> None:
    r = Reorder(delay_ms=10)
    for ts in (50, 20, 40, 95):
        r.add((ts, "x", "", 0), ts)
    assert r.release(60) == [20, 40, 50]
    assert r.release(60) == []
    assert r.release(60, flush=True) == [95]


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
    shard.on_item([("S1", air("S1", 0), "p0"), ("S2", air("S2", 0), "p1")])
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
    assert abs(b.high_ts - (time.time() * 1000 - 60_000)) < 5_000
    route = make_router([ToyExceedance()], FlowConfig(shards=1, engine_shards=1, area_shards=1))
    ticks = [x for _, xs in route([b]) for x in xs if type(x) is Tick]
    assert ticks
    assert all(t.wm == b.high_ts // MIN * MIN for t in ticks)
