"""The city dataflow: decoded batches -> models -> alert engine -> incidents -> Redis.

::

  input "in"  DecodingSource: one Batch per read (decoded, lateness-checked, grouped by the
   │          Router: m:<model>#<n> and c:city [(key, event, partition, cause) | Tick, ...])
   ├─ flat_map_batch "account"  IngestMark + DeadRecords ──────────────────────────────────┐
   └─ flat_map_batch "route"    the groups, and progress marks                             │
        ▼                                                                                   │
      stateful "models"         per model shard: {key: state}; update, on_watermark        │
        ├─ stateful "signal_models"  models fed by signals (gated)                         │
        ▼                                                                                   │
      stateful "engine"         per subject shard: AlertEngine (gated; + silences)          │
        ├─ stateful "areas"     per area shard: FloodGuard -> incident engine (gated)       │
        ├─ stateful "incidents" city-wide IncidentCorrelator (alerts + tickets, gated)      │
        ▼                                                                                   │
      flat_map_batch "stamp"    emitted_ms = wall clock; engine totals -> Gauges ──────────┤
                                                                        output "redis" ◄───┘

Keys are strings; state is sharded (``shards`` per model, ``engine_shards``, ``area_shards``)
so each key sees large batches and ticks can reach every shard.

**Causes and ticks.** Every item carries its *cause*: the event time of the source position
that produced it (its partition's newest ``ts`` at the record, or the tick that fired
``on_watermark``). Every path carries :class:`Tick` s in order with its items: the router's
at each multiple of ``tick_ms`` of a partition's event time (where models' ``on_watermark``
runs, per key at its own partition's time) and, between them, a progress mark after a
batch (at most every ``progress_ms`` of wall time); each shard forwards the minimum over its
inputs after its own output. A stage fed by several paths (signal models, engine, flood
guard, correlator) holds its input in a :class:`Gate` and releases it sorted by cause as
soon as every path has passed it, with its clock ticks (auto-resolve, ``on_watermark``) at
fixed places in that order. So one process equals two, a resumed run equals an uninterrupted
one, and how often progress is marked changes when results come out, never what they are;
a second-stage alert waits only for the slowest path's next mark (milliseconds), not for a
tick. Snapshots are cheap: engine tracks are immutable (a shallow copy), model shards pickle
once per epoch, and with recovery off every snapshot is ``None``. Step ids are recovery keys:
do not rename them. Changing shard counts needs a fresh recovery directory. See
``docs/architecture.md``.
"""

from __future__ import annotations

import logging
import pickle
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from citywatch.alerts import Alert, Observation, Signal
from citywatch.events import Event
from flows.sources import Batch, DecodingSource, Route
from flows.sources.silences import SilenceSet
from models.alert_engine import AlertEngine, EngineSnapshot, FloodGuard
from models.base import Model
from sinks.redis_sink import Gauge, IngestMark, OpenAlerts, Republish, TicketRecord, Touch

__all__ = ["FlowConfig", "Router", "Tick", "build_flow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tick:
    """Progress of one path: what it sends from now on was caused at ``wm`` or later.

    ``partition`` names the path: a source partition for the router's ticks, a shard key for
    the ticks stages forward. ``minute``: the router's event-time tick, at a multiple of
    ``tick_ms`` (models' ``on_watermark`` runs there); otherwise a progress mark the router
    sends between them (``progress_ms``) so that stages downstream release promptly.
    ``is_end``: the path sends nothing more.
    """

    wm: int
    partition: str
    is_end: bool = False
    minute: bool = True


class Watermark:
    """The flow's event time as one stateful shard sees it: the minimum over its upstream paths
    (all of them once each has ticked; finished ones drop out), so a fast path cannot resolve
    what a slow one is still delivering.
    """

    __slots__ = ("done", "ended", "expected", "first", "low", "parts", "sent")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.parts: dict[str, int] = {}
        self.done: set[str] = set()
        self.low = 0  # value(), cached
        #: The least first tick of any path: where this stage's event time starts. It does not
        #: depend on how far the other paths had got when the last one first ticked.
        self.first = 0
        #: What :meth:`mark` last passed on.
        self.sent = 0
        self.ended = False

    def update(self, tick: Tick) -> int | None:
        """Apply ``tick``; return the new effective watermark if it advanced (or the input
        just ended: everything held must go out then), else None."""
        before = self.low
        p = tick.partition
        old = self.parts.get(p)
        ends = False
        if tick.is_end and p not in self.done:
            self.done.add(p)
            ends = self.is_complete()
        elif old is not None and (tick.wm <= old or old > before):
            # Not this path's news, or not the slowest path: the minimum stays.
            if tick.wm > old:
                self.parts[p] = tick.wm
            return None
        if old is None:
            self.first = min(self.first, tick.wm) if self.parts else tick.wm
        if old is None or tick.wm > old:
            self.parts[p] = tick.wm
        self.low = self._value()
        return self.low if self.low > before or ends else None

    def is_complete(self) -> bool:
        """Every expected path has ended (a finite input is fully read)."""
        return self.expected > 0 and len(self.done) >= self.expected

    def value(self) -> int:
        return self.low

    def _value(self) -> int:
        if len(self.parts) < self.expected:
            return 0  # a path has not ticked yet: its event time is unknown
        if self.done:
            live = [w for p, w in self.parts.items() if p not in self.done]
            return min(live) if live else max(self.parts.values(), default=0)
        return min(self.parts.values(), default=0)

    def mark(self, path: str) -> list[Tick]:
        """Ticks for the stages downstream, when this one's progress moved since the last
        (the first time, :attr:`first` before the current value: where the stage began)."""
        end = self.is_complete()
        if self.low <= self.sent and (self.ended or not end):
            return []
        out = [] if self.sent or self.first >= self.low else [Tick(self.first, path, minute=False)]
        self.sent, self.ended = self.low, end
        out.append(Tick(self.low, path, end, minute=False))
        return out

    def __getstate__(self) -> tuple[Any, ...]:
        return self.expected, self.parts, self.done, self.low, self.first, self.sent, self.ended

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        (self.expected, self.parts, self.done, self.low, self.first, self.sent, self.ended) = state


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Shape of the flow; shard counts are part of the recovery state (keep them fixed)."""

    shards: int = 8
    engine_shards: int = 2
    area_shards: int = 2
    #: Watermark ticks at multiples of this event-time interval.
    tick_ms: int = 60_000
    #: The engine auto-resolves against watermark - grace (late data may still arrive).
    grace_ms: int = 660_000
    #: Wall-clock ms between the router's progress marks per partition (0: after every
    #: batch; None: none, so stages fed by several paths wait for the next tick). Marks cost
    #: a little throughput and change no result: only how soon second stages release.
    progress_ms: int | None = 20
    #: Snapshot state for recovery; off = every snapshot is None (bytewax still snapshots
    #: every epoch).
    durable: bool = False
    flood_limit: int = 10
    flood_window_ms: int = 600_000
    #: How many source partitions feed the flow (the watermark waits for each of them);
    #: 0 = unknown: the minimum over the partitions seen so far.
    partitions: int = 0
    #: Write every accepted hotline ticket to the ``tickets`` stream (search, the console).
    tickets: bool = True


#: The correlator's single key: incidents join sources across the whole city.
CITY = "c:city"
#: The group of accepted hotline tickets bound for the sink's ``tickets`` stream; the
#: "account" step takes it, the route step skips it (keys starting with "k").
TICKETS = "k:tickets"


#: A stage that cannot say when it has something to do (no ``due``) walks its clock tick by
#: tick, at most this many ticks at once (a gap of more than a day is crossed in one step).
MAX_CLOCK_STEPS = 1440

#: What a stage tells its :class:`Gate`: the earliest clock tick at which running the tick
#: may emit or change anything beyond the stage's clock itself (None: nothing until new input).
Due = Callable[[], "int | None"]


class Gate:
    """A stage fed by several paths: their progress, and the items waiting for it.

    Every item carries its *cause*: the event time of the source position that produced it
    (the partition's newest ``ts`` at the record, or the tick that fired ``on_watermark``).
    Every path sends a :class:`Tick` after what it sent, promising that whatever it sends
    later was caused at ``tick.wm`` or later; so once the minimum over the paths has passed
    ``c``, every item caused before ``c`` is here. :meth:`update` releases them sorted by
    ``(cause, tiebreak)``, cut at that minimum and at the multiples of ``tick_ms`` (the
    stage's clock): the stage sees one sequence of items and clock ticks however its paths
    interleave, however often they report and wherever a run was resumed, and waits only as
    long as the slowest path.

    **The clock costs what the input needs.** A stage that passes ``due`` runs only the ticks
    that can matter, not every multiple of ``tick_ms``: the tick right after each group of
    items (where the stage's items would meet the tick anyway), the ticks ``due`` names (an
    auto-resolve, a refresh), and the last tick of each update. Every tick skipped is one at
    which the stage would have done nothing but move its clock; so that the items see the
    clock where an every-tick walk would have left it, the last skipped tick before a group
    of items is run too (it emits nothing). The result is the walk's, tick for tick
    (tested), at a cost of about two ticks per group of items instead of one per minute of
    event time: a year of hourly data no longer walks 525,600 minutes per stage.
    """

    __slots__ = ("clock", "items", "tick_ms", "wm")

    def __init__(self, expected: int, tick_ms: int) -> None:
        self.wm = Watermark(expected)
        self.tick_ms = tick_ms
        #: The last clock tick run.
        self.clock: int | None = None
        self.items: list[tuple[tuple[Any, ...], Any]] = []

    def add(self, key: tuple[Any, ...], item: Any) -> None:
        """Hold ``item``; ``key[0]`` is its cause, the rest breaks ties (must be unique)."""
        self.items.append((key, item))

    def update(self, tick: Tick, due: Due | None = None) -> Iterator[tuple[list[Any], int | None]]:
        """Apply ``tick`` (at once); the steps it releases, in order, as ``(items, clock tick
        or None)``: run the items, then the tick. Iterate to the end before the next update.

        ``due`` is asked between steps (after the consumer ran what came before), so items
        just run count. Without it every multiple of ``tick_ms`` is a tick (at most
        :data:`MAX_CLOCK_STEPS` of them per update).
        """
        low = self.wm.update(tick)
        if low is None:
            return iter(())
        return self._walk(low, due)

    def _walk(self, low: int, due: Due | None) -> Iterator[tuple[list[Any], int | None]]:
        step = self.tick_ms
        top = low // step * step
        t = self.wm.first // step * step if self.clock is None else self.clock + step
        ready = self._take(None if self.wm.is_complete() else low)
        n, i = len(ready), 0
        if due is None:
            t = max(t, top - MAX_CLOCK_STEPS * step)
        first = t
        while t <= top:
            j = i
            while j < n and ready[j][0][0] < t:
                j += 1
            if due is None:
                self.clock = t
                yield [x[1] for x in ready[i:j]], t
                i = j
                t += step
                continue
            if j > i:
                prev = t - step
                if prev >= first and (self.clock is None or self.clock < prev):
                    self.clock = prev  # the last tick skipped: where the items expect the clock
                    yield [], prev
                yield [x[1] for x in ready[i:j]], None
                i = j
            self.clock = t
            yield [], t
            if t == top:
                break
            nxt = top
            if i < n:
                nxt = min(nxt, (ready[i][0][0] // step + 1) * step)
            d = due()
            if d is not None and d < nxt:
                nxt = -(-d // step) * step
            t = max(t + step, nxt)
        if i < n:
            yield [x[1] for x in ready[i:]], None

    def _take(self, limit: int | None) -> list[tuple[tuple[Any, ...], Any]]:
        """The held items caused before ``limit`` (all: None), sorted; the rest stay."""
        items = self.items
        if not items:
            return []
        if limit is None:
            ready, self.items = items, []
        else:
            ready = [x for x in items if x[0][0] < limit]
            if not ready:
                return []
            self.items = [x for x in items if x[0][0] >= limit] if len(ready) < len(items) else []
        ready.sort(key=_first)
        return ready


def _first(x: tuple[Any, Any]) -> Any:
    return x[0]


def _order_key(cause: int, item: Any) -> tuple[int, str, str, int]:
    if type(item) is Alert:
        return (cause, "a", item.id, item.version)
    return (cause, "t", item.key, 0)


def _crc(s: str) -> int:
    return zlib.crc32(s.encode())


# -- stateless steps ---------------------------------------------------------------------------


def account(batches: list[Batch]) -> list[Any]:
    """Input accounting per batch: one IngestMark, the batch's dead letters and its
    accepted hotline tickets (for the ``tickets`` stream)."""
    out: list[Any] = []
    for b in batches:
        out.append(IngestMark(b.partition, b.start, b.codes, b.high_ts))
        out.extend(b.dead)
        tickets = b.groups.get(TICKETS)
        if tickets:
            out.extend(TicketRecord(item[1]) for item in tickets if type(item) is tuple)
    return out


class Router:
    """The flow's routing (a :class:`~flows.sources.Splitter`) and its "route" step.

    The source partitions apply the table as they decode (one Python loop per record):
    an event goes to the shard ``m:<model>#<n>`` of every model consuming its kind, as
    ``(key, event, partition, cause)``, and hotline tickets also to the correlator
    (``c:city``). Every key gets the partition's minute ticks in order among its events.

    The "route" step (:meth:`step`) passes the groups on and adds the progress marks: one
    round for every partition this process reads, at most every ``progress_ms`` of wall
    time, after the batch.
    """

    def __init__(
        self,
        models: Sequence[Model],
        cfg: FlowConfig,
        *,
        correlate: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        routes: dict[str, list[Route]] = {}
        for m in models:
            n = _shards(m, cfg)
            for kind in m.kinds:
                # The crc32 and the f-string once per entity (cache), not once per record.
                routes.setdefault(kind, []).append((m.route, {}, partial(_shard_key, m.name, n)))
        if correlate:
            routes.setdefault("hotline", []).append((_to_city, {}, _city))
        if cfg.tickets:
            routes.setdefault("hotline", []).append((_to_tickets, {}, _tickets))
        self.routes = routes
        self.tick_ms = cfg.tick_ms
        self.remember: frozenset[str] = frozenset().union(*(m.route_kinds for m in models))
        self.keys = [f"m:{m.name}#{s}" for m in models if m.kinds for s in range(_shards(m, cfg))]
        if correlate:
            self.keys.append(CITY)
        self.every_s = None if cfg.progress_ms is None else cfg.progress_ms / 1000
        self.clock = clock
        #: Per partition this process reads: its event time, and what its last mark said.
        self.highs: dict[str, int] = {}
        self.marked: dict[str, int] = {}
        self.last_round = float("-inf")

    def tick(
        self, groups: dict[str, list[Any]], wm: int, partition: str, *, is_end: bool = False
    ) -> None:
        t = Tick(wm, partition, is_end=is_end)
        for key in self.keys:
            items = groups.get(key)
            if items is None:
                groups[key] = [t]
            else:
                items.append(t)

    def step(self, batches: list[Batch]) -> list[tuple[str, Any]]:
        """The "route" step: each batch's groups, then a round of progress marks if due."""
        out: list[tuple[str, Any]] = []
        lists: dict[str, list[Any]] = {}  # key -> its last list in ``out``
        highs = self.highs
        for b in batches:
            if b.groups:
                for kv in b.groups.items():
                    if kv[0][0] != "k":  # the tickets group is the account step's
                        out.append(kv)
                        lists[kv[0]] = kv[1]
            if b.is_last:
                highs.pop(b.partition, None)
            elif b.high_ts:
                highs[b.partition] = b.high_ts
        if self.every_s is not None and highs:
            now = self.clock()
            if now - self.last_round >= self.every_s:
                # One round for every partition this process reads, added to each key's last
                # list (or one new list per key): the marks cost the same few items however
                # many partitions and batches there are.
                marked = self.marked
                marks = [Tick(h, p, minute=False) for p, h in highs.items() if h > marked.get(p, 0)]
                if marks:
                    self.last_round = now
                    marked.update((t.partition, t.wm) for t in marks)
                    for key in self.keys:
                        items = lists.get(key)
                        if items is None:
                            out.append((key, list(marks)))
                        else:
                            items.extend(marks)
        return out


def _shard_key(name: str, n: int, key: str) -> str:
    return f"m:{name}#{_crc(key) % n}"


def _to_city(ev: Event) -> str:
    return "city"


def _city(key: str) -> str:
    return CITY


def _to_tickets(ev: Event) -> str:
    return "tickets"


def _tickets(key: str) -> str:
    return TICKETS


def _signal_rules(m: Model) -> frozenset[str]:
    return m.signal_rules


def _shards(m: Model, cfg: FlowConfig) -> int:
    """The model's state shards: ``cfg.shards``, or fewer when the model says so."""
    return min(m.shards, cfg.shards) if m.shards > 0 else cfg.shards


def _broadcast(groups: dict[str, list[Any]], keys: Sequence[str], item: Any) -> None:
    for key in keys:
        groups.setdefault(key, []).append(item)


def make_to_signal_models(
    models: Sequence[Model], cfg: FlowConfig, feeders: Iterable[str]
) -> Callable[[tuple[str, list[Any]]], list[tuple[str, Any]]]:
    """Signals of a signal model's ``signal_rules`` to its shards (a second model stage), as
    ``(key, signal, cause)``; the feeding shards' ticks to every signal-model shard."""
    wanted = [(m, _signal_rules(m)) for m in models if _signal_rules(m)]
    n_of = {m.name: _shards(m, cfg) for m in models}
    shard_keys = [f"s:{m.name}#{n}" for m, _ in wanted for n in range(n_of[m.name])]
    feeding = {f"m:{name}#{n}" for name in feeders for n in range(n_of[name])}

    def to_signal_models(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
        if kv[0] not in feeding:
            return []
        groups: dict[str, list[Any]] = {}
        for x in kv[1]:
            if type(x) is Tick:
                _broadcast(groups, shard_keys, x)
                continue
            cause, sig = x
            if type(sig) is Observation:
                continue
            for m, rules in wanted:
                if sig.rule in rules:
                    k = m.route(sig)
                    if k is not None:
                        key = f"s:{m.name}#{_crc(k) % n_of[m.name]}"
                        groups.setdefault(key, []).append((k, sig, cause))
        return list(groups.items())

    return to_signal_models


def to_correlator(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
    """Alerts the correlator can use (not its own incidents), and ticks, to its single key."""
    out = [
        x
        for x in kv[1]
        if type(x) is Tick or (type(x) is tuple and x[1].rule != "incident.correlated")
    ]
    return [(CITY, out)] if out else []


def make_to_engine(cfg: FlowConfig) -> Callable[[tuple[str, list[Any]]], list[tuple[str, Any]]]:
    n = cfg.engine_shards
    keys = [f"e:{s}" for s in range(n)]

    def to_engine(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
        groups: dict[str, list[Any]] = {}
        for x in kv[1]:
            if type(x) is Tick:
                _broadcast(groups, keys, x)
            elif type(x[1]) is not Observation:  # observations go to the sink directly
                groups.setdefault(f"e:{_crc(str(x[1].subject)) % n}", []).append(x)
        return list(groups.items())

    return to_engine


def observations(kv: tuple[str, list[Any]]) -> list[Observation]:
    """The models' :class:`Observation` values, straight to the sink (not to the engine)."""
    return [x[1] for x in kv[1] if type(x) is tuple and type(x[1]) is Observation]


def make_to_area(cfg: FlowConfig) -> Callable[[tuple[str, list[Any]]], list[tuple[str, Any]]]:
    n = cfg.area_shards
    keys = [f"a:{s}" for s in range(n)]

    def to_area(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
        groups: dict[str, list[Any]] = {}
        for x in kv[1]:
            t = type(x)
            if t is Tick:
                _broadcast(groups, keys, x)
            elif t is tuple:
                a = x[1]
                if a.version == 1 and a.is_firing and a.rule != "incident.correlated":
                    groups.setdefault(f"a:{_crc(a.district or '') % n}", []).append(x)
        return list(groups.items())

    return to_area


@dataclass(frozen=True, slots=True)
class EngineStats:
    """An engine shard's running totals (signals, inhibited, silenced, resolved)."""

    stats: tuple[tuple[str, int], ...]


def stamp(items: list[tuple[str, list[Any]]]) -> list[Any]:
    """Set ``emitted_ms`` (wall clock, for latency) on every alert version leaving the flow;
    turn engine totals into gauges keyed by their shard (absolute values: replay-safe)."""
    now_ms = int(time.time() * 1000)
    out: list[Any] = []
    for key, items_ in items:
        for a in items_:
            t = type(a)
            if t is tuple:
                a = a[1]
                t = type(a)
            if t is Alert:
                out.append(a.evolve(emitted_ms=now_ms))
            elif t is Republish:
                out.append(Republish(a.alert.evolve(emitted_ms=now_ms)))
            elif t is Touch:
                out.append(Touch(a.alert.evolve(emitted_ms=now_ms)))
            elif t is EngineStats:
                out.append(Gauge({f"engine:{key}:{k}": v for k, v in a.stats}))
    return out


# -- stateful logic ----------------------------------------------------------------------------


class ModelShard(StatefulLogic[list[Any], list[Any], bytes | None]):
    """One shard of one model: the per-entity states of the entities hashed to it.

    Emits ``(cause, signal)`` pairs and, after them, a :class:`Tick` named ``key`` whenever
    its progress (the minimum over its inputs) moves. An event model's input is the router's
    items of every source partition; a signal model's (``signal``) is the feeding shards'
    signals, which a :class:`Gate` feeds to it in one order.
    """

    def __init__(
        self,
        model: Model,
        resume: bytes | None,
        durable: bool,
        partitions: int,
        *,
        key: str = "",
        signal: bool = False,
        tick_ms: int = 60_000,
    ) -> None:
        self.model = model
        self.key = key
        self.durable = durable
        #: A signal model's input comes from many upstream shards (``partitions`` of them).
        self.gate = Gate(partitions, tick_ms) if signal else None
        self.wm = self.gate.wm if self.gate is not None else Watermark(partitions)
        self.states: dict[str, Any] = {}
        #: Event models: the source partition each key's events come from, and each partition's
        #: event time. ``on_watermark`` runs per key at its own partition's event time, which
        #: does not depend on how partitions interleave (so runs are reproducible).
        self.keys_of: dict[str, set[str]] = {}
        self.part_of: dict[str, str] = {}
        self.part_wm: dict[str, int] = {}
        if resume is not None:
            (self.wm, self.states, self.gate, self.keys_of, self.part_of, self.part_wm) = (
                pickle.loads(resume)  # noqa: S301 - our own snapshot
            )
            if self.gate is not None:
                self.wm = self.gate.wm
        self.has_watermark = type(model).on_watermark is not Model.on_watermark
        self._newest: dict[str, Tick] = {}  # see on_item
        #: A signal model that says when its states are due lets its clock skip the rest.
        self.due: Due | None = None
        if self.has_watermark and type(model).next_due is not Model.next_due:
            self.due = self._next_due

    def on_item(self, value: list[Any]) -> tuple[Iterable[list[Any]], bool]:
        out: list[Any] = []
        model, states, gate = self.model, self.states, self.gate
        update, new_state, part_of = model.update, model.new_state, self.part_of
        # An event model's progress: only the newest tick of each known path matters by the
        # time this list is done (the mark goes out after it), so the watermark takes that
        # one at the end, not every minute tick of a sparse batch.
        seen, newest = self.wm.parts, self._newest
        for item in value:
            if type(item) is Tick:
                if gate is not None:  # a signal model: the clock of all its inputs
                    for ready, clock in gate.update(item, self.due):
                        for key, sig, cause in ready:
                            out.extend(self._apply(key, sig, cause))
                        if clock is not None and self.has_watermark:
                            for st in states.values():
                                out.extend(self._guard(model.on_watermark, st, clock, clock))
                else:
                    part = item.partition
                    if item.is_end or part not in seen:
                        held = newest.pop(part, None)
                        if held is not None:
                            self.wm.update(held)
                        self.wm.update(item)
                    elif item.wm > seen[part]:
                        held = newest.get(part)
                        if held is None or item.wm > held.wm:
                            newest[part] = item
                    if item.minute and item.wm > self.part_wm.get(part, 0):
                        self.part_wm[part] = item.wm
                        if self.has_watermark:
                            for key in self.keys_of.get(part, ()):
                                out.extend(
                                    self._guard(model.on_watermark, states[key], item.wm, item.wm)
                                )
                continue
            if gate is not None:
                _, sig, cause = item
                gate.add((cause, str(sig.subject), sig.rule, sig.ts), item)
                continue
            # An event model's record: _apply, inline (this loop runs once per record).
            key, ev, part, cause = item
            if part_of.get(key) != part:
                self._moved(key, part)
            st = states.get(key)
            if st is None:
                st = states[key] = new_state(key)
            try:
                signals = update(st, ev)
            except Exception:  # a model bug must not stop the city: log it, skip the event
                log.exception("model %s failed on %r", model.model_id, ev)
                continue
            if signals:
                out.extend([(cause, s) for s in signals])
        if newest:
            for held in newest.values():
                self.wm.update(held)
            newest.clear()
        out.extend(self.wm.mark(self.key))  # after the output it covers: once per list
        return ([out] if out else []), StatefulLogic.RETAIN

    def _next_due(self) -> int | None:
        """The earliest watermark at which any state's ``on_watermark`` matters."""
        next_due = self.model.next_due
        dues = [d for d in map(next_due, self.states.values()) if d is not None]
        return min(dues) if dues else None

    def _moved(self, key: str, part: str) -> None:
        """``key``'s events now come from ``part`` (its ``on_watermark`` follows that clock)."""
        old = self.part_of.get(key)
        if old is not None:
            self.keys_of[old].discard(key)
        self.part_of[key] = part
        self.keys_of.setdefault(part, set()).add(key)

    def _apply(self, key: str, ev: Any, cause: int) -> list[tuple[int, Signal | Observation]]:
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = self.model.new_state(key)
        return self._guard(self.model.update, st, ev, cause)

    def _guard(
        self,
        fn: Callable[[Any, Any], Sequence[Signal | Observation]],
        st: Any,
        arg: Event | int,
        cause: int,
    ) -> list[tuple[int, Signal | Observation]]:
        try:
            return [(cause, s) for s in fn(st, arg)]
        except Exception:  # a model bug must not stop the city: log it, skip the event
            log.exception("model %s failed on %r", self.model.model_id, arg)
            return []

    def snapshot(self) -> bytes | None:
        if not self.durable:
            return None
        state = (self.wm, self.states, self.gate, self.keys_of, self.part_of, self.part_wm)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


class _EngineStage(StatefulLogic[Any, list[Any], bytes | None]):
    """What the engine stages share: an :class:`AlertEngine`, a :class:`Gate` over the
    stage's input paths, and reporting the engine's totals when they change.

    After each input the newest values the engine merged without emitting a version
    (``AlertEngine.touched``) leave as :class:`Touch` items, for the sink only.

    With recovery the stage also keeps the alert versions it published that are still open
    (:class:`OpenAlerts`, in the snapshot); a stage resumed from a snapshot sends them once
    more as :class:`Republish` items, so a Redis that lost them while the flow was down has
    them again (the sink writes each idempotently; downstream stages ignore them).
    """

    def __init__(self, engine: AlertEngine, gate: Gate, grace_ms: int, durable: bool) -> None:
        self.engine = engine
        self.gate = gate
        self.grace_ms = grace_ms
        self.durable = durable
        self.reported: tuple[tuple[str, int], ...] = ()
        self.published = OpenAlerts()
        self.to_republish: list[Any] = []

    def resumed(self, published: OpenAlerts | None) -> _EngineStage:
        """This stage, resumed with the open alerts it had published."""
        if published is not None:
            self.published = published
            self.to_republish = [Republish(a) for a in published]
        return self

    def on_item(self, value: list[Any]) -> tuple[Iterable[list[Any]], bool]:
        emitted, keep = self._on_item(value)
        if self.durable:
            for out in emitted:
                self.published.note_all(out)
        touched = self.engine.touched
        if touched:  # what the engine merged without a version: for the alerts' hashes
            emitted = [*emitted, [Touch(a) for a in touched.values()]]
            touched.clear()
        if self.to_republish:
            emitted = [self.to_republish, *emitted]
            self.to_republish = []
        return emitted, keep

    def _on_item(self, value: list[Any]) -> tuple[list[list[Any]], bool]:
        raise NotImplementedError

    def on_eof(self) -> tuple[Iterable[list[Any]], bool]:
        out = self._report()
        return ([out] if out else []), StatefulLogic.RETAIN

    def _due(self) -> int | None:
        """The first clock tick at which the engine's auto-resolve can do anything (the clock
        tick ``t`` runs ``advance(t - grace)``)."""
        due = self.engine.next_due()
        return None if due is None else due + self.grace_ms

    def _report(self) -> list[Any]:
        """The engine's totals when they changed since the last report (at ticks and at EOF)."""
        stats = tuple(sorted(self.engine.stats.items()))
        if stats == self.reported:
            return []
        self.reported = stats
        return [EngineStats(stats)]

    def _state(self) -> tuple[Any, ...]:
        return (self.engine.snapshot(), self.gate)

    def snapshot(self) -> bytes | None:
        if not self.durable:
            return None
        state = (*self._state(), self.published)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


def _load_stage(resume: bytes) -> tuple[tuple[Any, ...], OpenAlerts | None]:
    """An engine stage's snapshot: its state, and the open alerts it had published (None in
    a snapshot taken before stages kept them)."""
    state = pickle.loads(resume)  # noqa: S301 - our own snapshot
    if state and isinstance(state[-1], OpenAlerts):
        return tuple(state[:-1]), state[-1]
    return tuple(state), None


class EngineShard(_EngineStage):
    """One subject shard of the alert engine.

    Signals from every model shard reach it through a :class:`Gate`, so the engine sees them
    and its clock ticks (auto-resolve against ``tick - grace``) in one order whatever the
    interleaving: a track closed by event time passing is closed at the same point of every
    run. ``(cause, alert)`` pairs go on, with a tick named ``key`` after them whenever the
    minimum over the model shards moves, for the stages downstream (:class:`AreaShard`,
    :class:`CorrelatorShard`).
    """

    def __init__(
        self, engine: AlertEngine, gate: Gate, grace_ms: int, durable: bool, *, key: str = ""
    ) -> None:
        super().__init__(engine, gate, grace_ms, durable)
        self.key = key

    def _on_item(self, value: list[Any]) -> tuple[list[list[Any]], bool]:
        out: list[Any] = []
        engine, gate = self.engine, self.gate
        for item in value:
            t = type(item)
            if t is Tick:
                for ready, clock in gate.update(item, self._due):
                    for cause, sig in ready:
                        out.extend((cause, a) for a in engine.on_signal(sig))
                    if clock is not None:
                        out.extend((clock, a) for a in engine.advance(clock - self.grace_ms))
                        out.extend(self._report())
            elif t is SilenceSet:
                # Officers' silences follow the wall clock: their alerts are caused "now".
                cause = gate.wm.value()
                out.extend((cause, a) for a in engine.set_silences(item.silences))
            else:
                sig = item[1]  # (cause, signal): one path's signals for one subject keep
                # their order (the sort is stable)
                gate.add((item[0], str(sig.subject), sig.rule), item)
        out.extend(gate.wm.mark(self.key))
        return ([out] if out else []), StatefulLogic.RETAIN


class AreaShard(_EngineStage):
    """One area shard: the :class:`FloodGuard` over the new alerts of every engine shard, fed
    in one order by its :class:`Gate`, and the engine of its incidents."""

    def __init__(
        self, engine: AlertEngine, gate: Gate, grace_ms: int, durable: bool, guard: FloodGuard
    ) -> None:
        super().__init__(engine, gate, grace_ms, durable)
        self.guard = guard

    def _on_item(self, value: list[Any]) -> tuple[list[list[Any]], bool]:
        out: list[Any] = []
        engine, guard = self.engine, self.guard
        for item in value:
            if type(item) is not Tick:
                cause, a = item
                self.gate.add((cause, a.id, a.version), a)
                continue
            for ready, clock in self.gate.update(item, self._due):
                for a in ready:
                    out.extend(engine.on_signals(guard.observe(a)))
                if clock is not None:
                    out.extend(engine.advance(clock - self.grace_ms))
                    out.extend(self._report())
        return ([out] if out else []), StatefulLogic.RETAIN

    def _state(self) -> tuple[Any, ...]:
        return (self.engine.snapshot(), self.gate, self.guard)


class CorrelatorShard(_EngineStage):
    """The city-wide incident correlator (``models.incidents``) and its incidents' engine.

    Alerts (from every engine shard) and hotline tickets (from the sources) arrive by
    different paths; a :class:`Gate` feeds them to the correlator in one order.
    """

    def __init__(
        self, corr: Any, engine: AlertEngine, gate: Gate, grace_ms: int, durable: bool
    ) -> None:
        super().__init__(engine, gate, grace_ms, durable)
        self.corr = corr
        #: A correlator that cannot say when it is due is ticked every minute.
        self.due: Due | None = self._due_both if hasattr(corr, "next_due") else None

    def _on_item(self, value: list[Any]) -> tuple[list[list[Any]], bool]:
        out: list[Any] = []
        corr, engine = self.corr, self.engine
        for item in value:
            if type(item) is not Tick:
                # (cause, alert) from the engine; (key, ticket, partition, cause) from a source
                cause, x = item if len(item) == 2 else (item[3], item[1])
                self.gate.add(_order_key(cause, x), x)
                continue
            for ready, clock in self.gate.update(item, self.due):
                signals: list[Signal] = []
                for x in ready:
                    if type(x) is Alert:
                        signals.extend(corr.observe_alert(x))
                    else:
                        signals.extend(corr.observe_ticket(x))
                if clock is not None:
                    signals.extend(corr.advance(clock - self.grace_ms))
                out.extend(engine.on_signals(signals))
                if clock is not None:
                    out.extend(engine.advance(clock - self.grace_ms))
        return ([out] if out else []), StatefulLogic.RETAIN

    def _due_both(self) -> int | None:
        """The first clock tick at which the correlator or its engine has something to do."""
        dues = [d for d in (self.corr.next_due(), self.engine.next_due()) if d is not None]
        return min(dues) + self.grace_ms if dues else None

    def _state(self) -> tuple[Any, ...]:
        return (self.corr, self.engine.snapshot(), self.gate)

    def _report(self) -> list[Any]:
        return []  # the incidents' engine totals are not reported (as before gates)


# -- the flow ----------------------------------------------------------------------------------


def build_flow(
    source: DecodingSource,
    sink: Sink[Any],
    *,
    models: Sequence[Model],
    config: FlowConfig | None = None,
    make_engine: Callable[[EngineSnapshot | None], AlertEngine] | None = None,
    make_correlator: Callable[[], Any] | None = None,
    silences: Source[SilenceSet] | None = None,
    flow_id: str = "citywatch",
) -> Dataflow:
    """Wire ``source`` through ``models`` and the alert engine into ``sink``; nothing else."""
    cfg = config or FlowConfig()
    if cfg.partitions == 0 and isinstance(source, DecodingSource):
        cfg = replace(cfg, partitions=len(source.list_parts()))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        msg = f"models: duplicate model names {sorted(names)}"
        raise ValueError(msg)
    by_name = {m.name: m for m in models}
    engine_of = make_engine or (lambda snap: AlertEngine(snapshot=snap))

    signal_rules = frozenset().union(*(_signal_rules(m) for m in models))
    feeders = {m.name for m in models if m.kinds and m.name in signal_rules} or {
        m.name for m in models if m.kinds
    }
    # The paths each stage waits for: every source partition (event-model shards), every
    # feeding shard (signal-model shards), every model shard (engine), every engine shard.
    n_signal = sum(1 for m in models if _signal_rules(m))
    into_signal = sum(_shards(by_name[n], cfg) for n in feeders) if n_signal else 0
    into_engine = sum(_shards(m, cfg) for m in models if m.kinds) + sum(
        _shards(m, cfg) for m in models if _signal_rules(m)
    )
    tick_ms, grace_ms, durable = cfg.tick_ms, cfg.grace_ms, cfg.durable

    def build_model_shard(key: str, resume: bytes | None) -> ModelShard:
        name = key[2:].rsplit("#", 1)[0]
        signal = key[0] == "s"
        expected = into_signal if signal else cfg.partitions
        return ModelShard(
            by_name[name], resume, durable, expected, key=key, signal=signal, tick_ms=tick_ms
        )

    def build_engine(key: str, resume: bytes | None) -> _EngineStage:
        published = None
        if resume is None:
            snap, gate = None, Gate(into_engine, tick_ms)
        else:
            (snap, gate), published = _load_stage(resume)
        return EngineShard(engine_of(snap), gate, grace_ms, durable, key=key).resumed(published)

    def build_area(resume: bytes | None) -> _EngineStage:
        published = None
        if resume is None:
            snap, gate = None, Gate(cfg.engine_shards, tick_ms)
            guard = FloodGuard(limit=cfg.flood_limit, window_ms=cfg.flood_window_ms)
        else:
            (snap, gate, guard), published = _load_stage(resume)
        return AreaShard(engine_of(snap), gate, grace_ms, durable, guard).resumed(published)

    def build_correlator(resume: bytes | None) -> _EngineStage:
        published = None
        if resume is None:
            corr, snap = make_correlator(), None  # type: ignore[misc]
            expected = cfg.engine_shards + cfg.partitions if cfg.partitions else 0
            gate = Gate(expected, tick_ms)
        else:
            (corr, snap, gate), published = _load_stage(resume)
        stage = CorrelatorShard(corr, engine_of(snap), gate, grace_ms, durable)
        return stage.resumed(published)

    correlate = make_correlator is not None
    flow = Dataflow(flow_id)
    router = Router(models, cfg, correlate=correlate)
    batches = op.input("in", flow, source.split_by(router))
    accounting = op.flat_map_batch("account", batches, account)
    routed = op.flat_map_batch("route", batches, router.step)
    split = _split_by_prefix(routed, "mc") if correlate else {"m": routed}
    signals = _stateful_keyed("models", split["m"], build_model_shard)
    if n_signal:
        to_second = make_to_signal_models(models, cfg, feeders)
        second_in = op.flat_map("to_signal_models", signals, to_second)
        second = _stateful_keyed("signal_models", second_in, build_model_shard)
        signals = op.merge("all_signals", signals, second)
    engine_in = op.flat_map("to_engine", signals, make_to_engine(cfg))
    if silences is not None:
        shard_keys = [f"e:{n}" for n in range(cfg.engine_shards)]
        broadcast = op.flat_map(
            "silences_to_engine",
            op.input("silences", flow, silences),
            lambda ss: [(k, [ss]) for k in shard_keys],
        )
        engine_in = op.merge("engine_in_silenced", engine_in, broadcast)
    alerts = _stateful_keyed("engine", engine_in, build_engine)
    area_in = op.flat_map("to_area", alerts, make_to_area(cfg))
    outputs = [alerts, op.stateful("areas", area_in, build_area)]
    if correlate:
        corr_in = op.merge("corr_in", op.flat_map("to_corr", alerts, to_correlator), split["c"])
        outputs.append(op.stateful("incidents", corr_in, build_correlator))
    stamped = op.flat_map_batch("stamp", op.merge("all_alerts", *outputs), stamp)
    observed = op.flat_map("observations", signals, observations)
    op.output("redis", op.merge("to_sink", stamped, accounting, observed), sink)
    return flow


def _has_prefix(p: str) -> Callable[[tuple[str, Any]], bool]:
    def pred(kv: tuple[str, Any]) -> bool:
        return kv[0][0] == p

    return pred


def _split_by_prefix(up: Any, prefixes: str) -> dict[str, Any]:
    """Branch a keyed stream by the first letter of its keys (the last prefix gets the rest)."""
    out: dict[str, Any] = {}
    rest = up
    for p in prefixes[:-1]:
        b: Any = op.branch(f"split_{p}", rest, _has_prefix(p))
        out[p], rest = b.trues, b.falses
    out[prefixes[-1]] = rest
    return out


def _stateful_keyed(
    step_id: str, up: Any, build: Callable[[str, bytes | None], StatefulLogic[Any, Any, Any]]
) -> Any:
    """``op.stateful`` whose builder also gets the key (a shard names itself in its ticks)."""
    tagged = op.map("tag_" + step_id, up, lambda kv: (kv[0], (kv[0], kv[1])))

    class _Keyed(StatefulLogic[tuple[str, list[Any]], list[Any], bytes | None]):
        def __init__(self, resume: bytes | None) -> None:
            self.resume = resume
            self.inner: StatefulLogic[Any, Any, Any] | None = None

        def on_item(self, value: tuple[str, list[Any]]) -> tuple[Iterable[list[Any]], bool]:
            if self.inner is None:
                self.inner = build(value[0], self.resume)
                self.resume = None
            return self.inner.on_item(value[1])

        def on_eof(self) -> tuple[Iterable[list[Any]], bool]:
            if self.inner is None:
                return [], StatefulLogic.RETAIN
            return self.inner.on_eof()

        def snapshot(self) -> bytes | None:
            return self.inner.snapshot() if self.inner is not None else self.resume

    return op.stateful(step_id, tagged, _Keyed)
