"""The city dataflow: decoded batches -> models -> alert engine -> incidents -> Redis.

::

  input "in"  DecodingSource: one Batch per read (decoded, lateness-checked, with offsets)
   ├─ flat_map_batch "account"  IngestMark + DeadRecords ──────────────────────────────────┐
   └─ flat_map_batch "route"    m:<model>#<n>  [(key, event, partition) | Tick, ...]        │
        │                       e:<n> / a:<n>  [Tick]      c:city  [Hotline | Tick, ...]    │
        ▼                                                                                   │
      stateful "models"         per model shard: {key: state}; update, on_watermark        │
        ├─ stateful "signal_models"  models fed by signals (ticks forwarded, reordered)     │
        ▼                                                                                   │
      stateful "engine"         per subject shard: AlertEngine (+ silences from "silences") │
        ├─ stateful "areas"     per area shard: FloodGuard -> incident engine               │
        ├─ stateful "incidents" city-wide IncidentCorrelator (alerts + tickets, reordered)  │
        ▼                                                                                   │
      flat_map_batch "stamp"    emitted_ms = wall clock; engine totals -> Gauges ──────────┤
                                                                        output "redis" ◄───┘

Keys are strings; state is sharded (``shards`` per model, ``engine_shards``, ``area_shards``)
so each key sees large batches and watermark ticks can reach every shard. Ticks are derived
from each partition's event time at fixed multiples of ``tick_ms``, inside the ordered item
lists, so a resumed run sees events and ticks in the same order as an uninterrupted one, and
``on_watermark`` runs per key at its own partition's event time. Stages fed by several paths
sort their input by event time (:class:`Reorder`). Snapshots are cheap: engine tracks are
immutable (a shallow copy), model shards pickle once per epoch, and with recovery off every
snapshot is ``None``. Step ids are recovery keys: do not rename them. Changing shard counts
needs a fresh recovery directory. See ``docs/architecture.md``.
"""

from __future__ import annotations

import logging
import pickle
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import Source
from bytewax.operators import StatefulLogic
from bytewax.outputs import Sink

from citywatch.alerts import Alert, Signal
from citywatch.events import Event, Hotline
from flows.sources import Batch, DecodingSource
from flows.sources.silences import SilenceSet
from models.alert_engine import AlertEngine, EngineSnapshot, FloodGuard
from models.base import Model
from sinks.redis_sink import Gauge, IngestMark

__all__ = ["FlowConfig", "Tick", "build_flow"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tick:
    """Event time reached ``wm`` in source ``partition`` (``is_end``: it has no more input)."""

    wm: int
    partition: str
    is_end: bool = False


class Watermark:
    """The flow's event time as one stateful shard sees it: the minimum over the source
    partitions (all of them once each has ticked; finished ones drop out), so a fast partition
    cannot resolve what a slow one is still delivering.
    """

    __slots__ = ("done", "expected", "parts")

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.parts: dict[str, int] = {}
        self.done: set[str] = set()

    def update(self, tick: Tick) -> int | None:
        """Apply ``tick``; return the new effective watermark if it advanced, else None."""
        before = self.value()
        if tick.is_end:
            self.done.add(tick.partition)
        if tick.wm > self.parts.get(tick.partition, 0):
            self.parts[tick.partition] = tick.wm
        after = self.value()
        return after if after > before else None

    def is_complete(self) -> bool:
        """Every expected partition has ended (a finite input is fully read)."""
        return self.expected > 0 and len(self.done) >= self.expected

    def value(self) -> int:
        if len(self.parts) < self.expected:
            return 0  # a partition has not ticked yet: its event time is unknown
        live = [w for p, w in self.parts.items() if p not in self.done]
        return min(live) if live else max(self.parts.values(), default=0)

    def __getstate__(self) -> tuple[int, dict[str, int], set[str]]:
        return self.expected, self.parts, self.done

    def __setstate__(self, state: tuple[int, dict[str, int], set[str]]) -> None:
        self.expected, self.parts, self.done = state


@dataclass(frozen=True, slots=True)
class FlowConfig:
    """Shape of the flow; shard counts are part of the recovery state (keep them fixed)."""

    shards: int = 8
    engine_shards: int = 8
    area_shards: int = 4
    #: Watermark ticks at multiples of this event-time interval.
    tick_ms: int = 60_000
    #: The engine auto-resolves against watermark - grace (late data may still arrive).
    grace_ms: int = 660_000
    #: The correlator and flood guard wait this long in event time for every path's items.
    reorder_ms: int = 120_000
    #: Snapshot state for recovery; off = every snapshot is None (DESIGN §9).
    durable: bool = False
    flood_limit: int = 10
    flood_window_ms: int = 600_000
    #: How many source partitions feed the flow (the watermark waits for each of them);
    #: 0 = unknown: the minimum over the partitions seen so far.
    partitions: int = 0


#: The correlator's single key: incidents join sources across the whole city.
CITY = "c:city"


class Reorder:
    """Holds items until event time passes them by ``delay_ms``, then releases them sorted.

    Stages fed by several upstream paths (the correlator: alerts from the engine, tickets from
    the router; the flood guard: alerts from every engine shard) would otherwise depend on how
    those paths interleave. Sorted by ``(ts, tiebreak)`` they see one order in every run, as
    long as no path lags more than ``delay_ms`` of event time behind the watermark.
    """

    __slots__ = ("delay_ms", "items")

    def __init__(self, delay_ms: int) -> None:
        self.delay_ms = delay_ms
        self.items: list[tuple[tuple[int, str, str, int], Any]] = []

    def add(self, key: tuple[int, str, str, int], item: Any) -> None:
        self.items.append((key, item))

    def release(self, watermark_ms: int, *, flush: bool = False) -> list[Any]:
        if not self.items:
            return []
        limit = watermark_ms - self.delay_ms
        ready = self.items if flush else [x for x in self.items if x[0][0] <= limit]
        if not ready:
            return []
        self.items = [] if flush else [x for x in self.items if x[0][0] > limit]
        ready.sort(key=lambda x: x[0])
        return [item for _, item in ready]


def _order_key(item: Any) -> tuple[int, str, str, int]:
    if type(item) is Alert:
        return (item.last_ts, "a", item.id, item.version)
    return (item.ts, "t", item.key, 0)


def _crc(s: str) -> int:
    return zlib.crc32(s.encode())


# -- stateless steps ---------------------------------------------------------------------------


def account(batches: list[Batch]) -> list[Any]:
    """Input accounting per batch: one IngestMark, plus the batch's dead letters."""
    out: list[Any] = []
    for b in batches:
        out.append(IngestMark(b.partition, b.start, b.codes, b.high_ts))
        out.extend(b.dead)
    return out


def make_router(
    models: Sequence[Model], cfg: FlowConfig, *, correlate: bool = False
) -> Callable[[list[Batch]], list[tuple[str, Any]]]:
    """The "route" step: group each batch's events by model shard, with ticks in order.

    Keys: ``m:<model>#<shard>`` (event models), ``e:<shard>`` (engine), ``a:<shard>`` (flood
    guard), ``c:city`` (correlator: hotline tickets and ticks). Every value is a list. Signal
    models get their ticks forwarded through the model shards that feed them.
    """
    by_kind: dict[str, list[Model]] = {}
    for m in models:
        for kind in m.kinds:
            by_kind.setdefault(kind, []).append(m)
    ordered = [f"m:{m.name}#{s}" for m in models if m.kinds for s in range(cfg.shards)]
    if correlate:
        ordered.append(CITY)
    others = [f"e:{s}" for s in range(cfg.engine_shards)]
    others += [f"a:{s}" for s in range(cfg.area_shards)]
    tick_ms, shards = cfg.tick_ms, cfg.shards

    def route(batches: list[Batch]) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for b in batches:
            groups: dict[str, list[Any]] = {}
            part, high = b.partition, b.prev_high_ts

            def tick(t: Tick, groups: dict[str, list[Any]] = groups) -> None:
                for key in ordered:
                    groups.setdefault(key, []).append(t)
                out.extend((key, [t]) for key in others)

            for ev in b.events:
                ts = ev.ts
                if ts > high:
                    if not high or ts // tick_ms > high // tick_ms:
                        tick(Tick(ts // tick_ms * tick_ms, part))
                    high = ts
                for m in by_kind.get(ev.kind, ()):
                    k = m.route(ev)
                    if k is not None:
                        key = f"m:{m.name}#{_crc(k) % shards}"
                        groups.setdefault(key, []).append((k, ev, part))
                if correlate and type(ev) is Hotline:
                    groups.setdefault(CITY, []).append(ev)
            if b.high_ts > high:  # an idle live partition: event time follows the clock
                if not high or b.high_ts // tick_ms > high // tick_ms:
                    tick(Tick(b.high_ts // tick_ms * tick_ms, part))
                high = b.high_ts
            if b.is_last:
                tick(Tick(high // tick_ms * tick_ms, part, is_end=True))
            out.extend(groups.items())
        return out

    return route


def _signal_rules(m: Model) -> frozenset[str]:
    return m.signal_rules


def make_to_signal_models(
    models: Sequence[Model], cfg: FlowConfig
) -> Callable[[tuple[str, list[Any]]], list[tuple[str, Any]]]:
    """Signals of a signal model's ``signal_rules`` to its shards (a second model stage)."""
    wanted = [(m, _signal_rules(m)) for m in models if _signal_rules(m)]
    shards = cfg.shards
    shard_keys = [f"s:{m.name}#{n}" for m, _ in wanted for n in range(shards)]

    def to_signal_models(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
        groups: dict[str, list[Any]] = {}
        for sig in kv[1]:
            if type(sig) is Tick:
                for key in shard_keys:
                    groups.setdefault(key, []).append(sig)
                continue
            for m, rules in wanted:
                if sig.rule in rules:
                    k = m.route(sig)
                    if k is not None:
                        groups.setdefault(f"s:{m.name}#{_crc(k) % shards}", []).append((k, sig))
        return list(groups.items())

    return to_signal_models


def to_correlator(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
    """Alerts the correlator can use (not its own incidents) to its single key."""
    alerts = [a for a in kv[1] if type(a) is Alert and a.rule != "incident.correlated"]
    return [(CITY, alerts)] if alerts else []


def make_to_engine(cfg: FlowConfig) -> Callable[[tuple[str, list[Any]]], list[tuple[str, Any]]]:
    n = cfg.engine_shards

    def to_engine(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
        groups: dict[str, list[Signal]] = {}
        for sig in kv[1]:
            if type(sig) is Tick:
                continue
            groups.setdefault(f"e:{_crc(str(sig.subject)) % n}", []).append(sig)
        return list(groups.items())

    return to_engine


def make_to_area(cfg: FlowConfig) -> Callable[[tuple[str, list[Any]]], list[tuple[str, Any]]]:
    n = cfg.area_shards

    def to_area(kv: tuple[str, list[Any]]) -> list[tuple[str, Any]]:
        groups: dict[str, list[Alert]] = {}
        for a in kv[1]:
            if type(a) is not Alert:
                continue
            if a.version == 1 and a.is_firing and a.rule != "incident.correlated":
                groups.setdefault(f"a:{_crc(a.district or '') % n}", []).append(a)
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
            if type(a) is Alert:
                out.append(a.evolve(emitted_ms=now_ms))
            else:
                out.append(Gauge({f"engine:{key}:{k}": v for k, v in a.stats}))
    return out


# -- stateful logic ----------------------------------------------------------------------------


class ModelShard(StatefulLogic[list[Any], list[Signal], bytes | None]):
    """One shard of one model: the per-entity states of the entities hashed to it."""

    def __init__(
        self,
        model: Model,
        resume: bytes | None,
        durable: bool,
        partitions: int,
        *,
        key: str = "",
        forward_ticks: bool = False,
        reorder: bool = False,
    ) -> None:
        self.model = model
        self.key = key
        self.forward_ticks = forward_ticks
        #: A signal model's input comes from many upstream shards: feed it in event-time order
        #: up to the forwarded watermark (exact: every upstream shard has sent what precedes it).
        self.reorder = Reorder(1) if reorder else None
        self.durable = durable
        self.wm = Watermark(partitions)
        self.states: dict[str, Any] = {}
        #: Event models: the source partition each key's events come from, and each partition's
        #: event time. ``on_watermark`` runs per key at its own partition's event time, which
        #: does not depend on how partitions interleave (so runs are reproducible).
        self.keys_of: dict[str, set[str]] = {}
        self.part_of: dict[str, str] = {}
        self.part_wm: dict[str, int] = {}
        if resume is not None:
            (self.wm, self.states, self.reorder, self.keys_of, self.part_of, self.part_wm) = (
                pickle.loads(resume)  # noqa: S301 - our own snapshot
            )
        self.has_watermark = type(model).on_watermark is not Model.on_watermark

    def on_item(self, value: list[Any]) -> tuple[Iterable[list[Any]], bool]:
        out: list[Any] = []
        model, states = self.model, self.states
        for item in value:
            if type(item) is Tick:
                wm = self.wm.update(item)
                if wm is not None and self.reorder is not None:
                    flush = self.wm.is_complete()
                    for key, ev in self.reorder.release(wm, flush=flush):
                        out.extend(self._apply(key, ev))
                if self.has_watermark:
                    if self.reorder is not None:  # a signal model: the city-wide watermark
                        if wm is not None:
                            for st in states.values():
                                out.extend(self._guard(model.on_watermark, st, wm))
                    elif item.wm > self.part_wm.get(item.partition, 0):
                        self.part_wm[item.partition] = item.wm
                        for key in self.keys_of.get(item.partition, ()):
                            out.extend(self._guard(model.on_watermark, states[key], item.wm))
                if self.forward_ticks:
                    # After this shard's signals, in order: the signal models downstream wait
                    # for every upstream shard, so they see all signals before event time moves.
                    out.append(Tick(item.wm, f"{item.partition}@{self.key}", item.is_end))
                continue
            if self.reorder is not None:
                sig = item[1]
                self.reorder.add((sig.ts, str(sig.subject), sig.rule, 0), item)
                continue
            key, ev, part = item
            if self.part_of.get(key) != part:
                old = self.part_of.get(key)
                if old is not None:
                    self.keys_of[old].discard(key)
                self.part_of[key] = part
                self.keys_of.setdefault(part, set()).add(key)
            out.extend(self._apply(key, ev))
        return ([out] if out else []), StatefulLogic.RETAIN

    def _apply(self, key: str, ev: Any) -> list[Signal]:
        st = self.states.get(key)
        if st is None:
            st = self.states[key] = self.model.new_state(key)
        return self._guard(self.model.update, st, ev)

    def _guard(
        self, fn: Callable[[Any, Any], list[Signal]], st: Any, arg: Event | int
    ) -> list[Signal]:
        try:
            return fn(st, arg)
        except Exception:  # a model bug must not stop the city: log it, skip the event
            log.exception("model %s failed on %r", self.model.model_id, arg)
            return []

    def snapshot(self) -> bytes | None:
        if not self.durable:
            return None
        state = (self.wm, self.states, self.reorder, self.keys_of, self.part_of, self.part_wm)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


class EngineShard(StatefulLogic[Any, list[Alert], bytes | None]):
    """One subject shard of the alert engine (or, with a flood guard, one area shard).

    An area shard's input (new alerts of every engine shard) goes through a :class:`Reorder`
    buffer, so the flood guard counts bursts in one order whatever the interleaving.
    """

    def __init__(
        self,
        engine: AlertEngine,
        wm: Watermark,
        grace_ms: int,
        durable: bool,
        guard: FloodGuard | None = None,
        reorder: Reorder | None = None,
    ) -> None:
        self.engine = engine
        self.wm = wm
        self.grace_ms = grace_ms
        self.durable = durable
        self.guard = guard
        self.reorder = reorder or Reorder(0)
        self.reported: tuple[tuple[str, int], ...] = ()

    def on_item(self, value: list[Any]) -> tuple[Iterable[list[Alert]], bool]:
        alerts: list[Alert] = []
        engine, guard = self.engine, self.guard
        for item in value:
            t = type(item)
            if t is Tick:
                wm = self.wm.update(item)
                if wm is not None:
                    if guard is not None:
                        for a in self.reorder.release(wm, flush=self.wm.is_complete()):
                            alerts.extend(engine.on_signals(guard.observe(a)))
                    alerts.extend(engine.advance(wm - self.grace_ms))
                    alerts.extend(self._report())
            elif t is SilenceSet:
                alerts.extend(engine.set_silences(item.silences))
            elif guard is not None:
                self.reorder.add((item.first_ts, item.id, "", item.version), item)
            else:
                alerts.extend(engine.on_signal(item))
        return ([alerts] if alerts else []), StatefulLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[list[Alert]], bool]:
        out = self._report()
        return ([out] if out else []), StatefulLogic.RETAIN

    def _report(self) -> list[Any]:
        """The engine's totals when they changed since the last report (at ticks and at EOF)."""
        stats = tuple(sorted(self.engine.stats.items()))
        if stats == self.reported:
            return []
        self.reported = stats
        return [EngineStats(stats)]

    def snapshot(self) -> bytes | None:
        if not self.durable:
            return None
        state = (self.engine.snapshot(), self.wm, self.guard, self.reorder)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


class CorrelatorShard(StatefulLogic[list[Any], list[Alert], bytes | None]):
    """The city-wide incident correlator (``models.incidents``) and its incidents' engine.

    Alerts (from the engine) and hotline tickets (from the router) arrive by different paths;
    a :class:`Reorder` buffer feeds them to the correlator in event-time order.
    """

    def __init__(
        self,
        corr: Any,
        engine: AlertEngine,
        wm: Watermark,
        grace_ms: int,
        durable: bool,
        reorder: Reorder | None = None,
    ) -> None:
        self.corr = corr
        self.engine = engine
        self.wm = wm
        self.grace_ms = grace_ms
        self.durable = durable
        self.reorder = reorder or Reorder(0)

    def on_item(self, value: list[Any]) -> tuple[Iterable[list[Alert]], bool]:
        alerts: list[Alert] = []
        corr, engine = self.corr, self.engine
        for item in value:
            if type(item) is not Tick:
                self.reorder.add(_order_key(item), item)
                continue
            wm = self.wm.update(item)
            if wm is None:
                continue
            signals: list[Signal] = []
            for x in self.reorder.release(wm, flush=self.wm.is_complete()):
                if type(x) is Alert:
                    signals.extend(corr.observe_alert(x))
                else:
                    signals.extend(corr.observe_ticket(x))
            signals.extend(corr.advance(wm - self.grace_ms))
            alerts.extend(engine.on_signals(signals))
            alerts.extend(engine.advance(wm - self.grace_ms))
        return ([alerts] if alerts else []), StatefulLogic.RETAIN

    def snapshot(self) -> bytes | None:
        if not self.durable:
            return None
        state = (self.corr, self.engine.snapshot(), self.wm, self.reorder)
        return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)


# -- the flow ----------------------------------------------------------------------------------


def build_flow(
    source: Source[Batch],
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
    # Signal-model shards wait for every feeding shard's forwarded ticks of every partition.
    fed_expected = cfg.partitions * len(feeders) * cfg.shards if cfg.partitions else 0

    def build_model_shard(key: str, resume: bytes | None) -> ModelShard:
        name = key[2:].rsplit("#", 1)[0]
        if key[0] == "s":
            return ModelShard(
                by_name[name], resume, cfg.durable, fed_expected, key=key, reorder=True
            )
        forward = bool(signal_rules) and name in feeders
        return ModelShard(
            by_name[name], resume, cfg.durable, cfg.partitions, key=key, forward_ticks=forward
        )

    def shard_builder(with_guard: bool) -> Callable[[bytes | None], EngineShard]:
        def build(resume: bytes | None) -> EngineShard:
            if resume is None:
                guard = (
                    FloodGuard(limit=cfg.flood_limit, window_ms=cfg.flood_window_ms)
                    if with_guard
                    else None
                )
                wm = Watermark(cfg.partitions)
                return EngineShard(
                    engine_of(None), wm, cfg.grace_ms, cfg.durable, guard, Reorder(cfg.reorder_ms)
                )
            snap, wm, guard, reorder = pickle.loads(resume)  # noqa: S301 - our own snapshot
            return EngineShard(engine_of(snap), wm, cfg.grace_ms, cfg.durable, guard, reorder)

        return build

    def build_correlator(resume: bytes | None) -> CorrelatorShard:
        if resume is None:
            corr, snap = make_correlator(), None  # type: ignore[misc]
            wm, reorder = Watermark(cfg.partitions), Reorder(cfg.reorder_ms)
        else:
            corr, snap, wm, reorder = pickle.loads(resume)  # noqa: S301 - our own snapshot
        return CorrelatorShard(corr, engine_of(snap), wm, cfg.grace_ms, cfg.durable, reorder)

    correlate = make_correlator is not None
    flow = Dataflow(flow_id)
    batches = op.input("in", flow, source)
    accounting = op.flat_map_batch("account", batches, account)
    routed = op.flat_map_batch("route", batches, make_router(models, cfg, correlate=correlate))
    split = _split_by_prefix(routed, "mea" + ("c" if correlate else ""))
    signals = _stateful_keyed("models", split["m"], build_model_shard)
    if any(_signal_rules(m) for m in models):
        second_in = op.flat_map("to_signal_models", signals, make_to_signal_models(models, cfg))
        second = _stateful_keyed("signal_models", second_in, build_model_shard)
        signals = op.merge("all_signals", signals, second)
    engine_in = op.merge(
        "engine_in", op.flat_map("to_engine", signals, make_to_engine(cfg)), split["e"]
    )
    if silences is not None:
        shard_keys = [f"e:{n}" for n in range(cfg.engine_shards)]
        broadcast = op.flat_map(
            "silences_to_engine",
            op.input("silences", flow, silences),
            lambda ss: [(k, [ss]) for k in shard_keys],
        )
        engine_in = op.merge("engine_in_silenced", engine_in, broadcast)
    alerts = op.stateful("engine", engine_in, shard_builder(with_guard=False))
    area_in = op.merge("area_in", op.flat_map("to_area", alerts, make_to_area(cfg)), split["a"])
    outputs = [alerts, op.stateful("areas", area_in, shard_builder(with_guard=True))]
    if correlate:
        corr_in = op.merge("corr_in", op.flat_map("to_corr", alerts, to_correlator), split["c"])
        outputs.append(op.stateful("incidents", corr_in, build_correlator))
    stamped = op.flat_map_batch("stamp", op.merge("all_alerts", *outputs), stamp)
    op.output("redis", op.merge("to_sink", stamped, accounting), sink)
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


def _stateful_keyed(step_id: str, up: Any, build: Callable[[str, bytes | None], ModelShard]) -> Any:
    """``op.stateful`` whose builder also gets the key (the model shard names its model)."""
    tagged = op.map("tag_" + step_id, up, lambda kv: (kv[0], (kv[0], kv[1])))

    class _Keyed(StatefulLogic[tuple[str, list[Any]], list[Signal], bytes | None]):
        def __init__(self, resume: bytes | None) -> None:
            self.resume = resume
            self.inner: ModelShard | None = None

        def on_item(self, value: tuple[str, list[Any]]) -> tuple[Iterable[list[Signal]], bool]:
            if self.inner is None:
                self.inner = build(value[0], self.resume)
                self.resume = None
            return self.inner.on_item(value[1])

        def snapshot(self) -> bytes | None:
            return self.inner.snapshot() if self.inner is not None else self.resume

    return op.stateful(step_id, tagged, _Keyed)
