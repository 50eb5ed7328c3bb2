"""Sources: raw records in, decoded batches out, with the read position as resume state.

Every source is a :class:`RawSource`: a fixed set of named partitions, each opened at a resume
position as a :class:`RawReader` that hands out raw records (bytes, one JSON object each).
:class:`DecodingSource` turns any of them into a bytewax ``FixedPartitionedSource`` whose items
are :class:`Batch` values: the records of one read, decoded (typed events, or dead letters
with the reason), checked for event-time lateness (a station that declares its reporting
interval gets more time: :class:`models.alert_engine.LatenessGate`) and for records far
ahead of the stream (:mod:`flows.sources.horizon`), with their offsets. Decoding happens in
the partition itself, so the lateness gate and the records held for a decision are part of
the snapshot and a resumed run decides exactly as the uninterrupted one would.
"""

from __future__ import annotations

import abc
import contextlib
import copy
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from citywatch.events import MAX_RAW_BYTES, DeadLetter, Event, EventDecoder, Region
from citywatch.partitioning import partition_of
from flows.sources.dedupe import DUPLICATE, RecentRecords
from flows.sources.horizon import CONFIRM, Held, Horizon
from models.alert_engine import LatenessGate
from sinks.redis_sink import KIND_CODES, NOT_COUNTED, DeadRecord

#: Seconds without input after which a live partition's event time follows the wall clock.
IDLE_S = 5.0
#: A live partition with records before, quiet (itself and its process) this long, moves
#: its event time on with the wall clock from its last record.
QUIET_S = 0.5
#: A quiet live partition follows the newest live partition of its process at most this often.
FOLLOW_S = 0.02

#: Set to stop reading: every partition ends at its next batch and the flow completes cleanly.
STOP = threading.Event()
#: A bound no event time reaches (live partitions: the decoder judges the future by the clock).
_NEVER = 1 << 62

__all__ = [
    "FOLLOW_S",
    "IDLE_S",
    "QUIET_S",
    "STOP",
    "Batch",
    "DecodingSource",
    "PartitionState",
    "RawReader",
    "RawSource",
    "Route",
    "Splitter",
    "partition_of",
    "stop_on_signals",
]


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While running: the first SIGINT/SIGTERM stops reading so the flow ends cleanly; a
    second one is a hard stop (KeyboardInterrupt). Restores the previous handlers after.

    Bytewax polls Python's signal handlers between batches; a handler that only sets a flag
    lets the sources end their partitions, the sink's last batch lands, and the recovery
    snapshot keeps the read positions, instead of the panic a KeyboardInterrupt causes.
    Outside the main thread (signals cannot be handled there) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if STOP.is_set():
            raise KeyboardInterrupt
        STOP.set()

    STOP.clear()
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class RawReader(abc.ABC):
    """One open partition of a raw source.

    ``is_live``: records arrive about when they happen (Redis, MQTT). An idle live partition
    lets its event time follow the wall clock (minus the lateness), so one quiet stream does
    not hold back the watermark of the whole flow.
    """

    is_live: bool = False

    @abc.abstractmethod
    def read(self, max_n: int) -> list[bytes]:
        """Up to ``max_n`` records ready now (maybe none); raise StopIteration at the end."""

    @abc.abstractmethod
    def position(self) -> Any:
        """A picklable position that resumes *after* the last record returned."""

    def next_awake(self) -> datetime | None:
        """When to call ``read`` next (None: bytewax's default polling)."""
        return None

    def close(self) -> None:
        return None


class RawSource(abc.ABC):
    """Named partitions of raw records; ``source`` labels their dead letters."""

    source: str = ""

    @abc.abstractmethod
    def list_parts(self) -> list[str]:
        """Partition names this process can read (every process may list all of them)."""

    @abc.abstractmethod
    def open(self, part: str, position: Any | None) -> RawReader:
        """Open ``part`` at ``position`` (None: the beginning)."""


#: One consumer of an event kind: ``route(event)`` names the consumer's state key for the
#: event (None: not for it); the key's group is ``group_of(key)``, kept in ``cache``.
Route = tuple[Callable[[Event], "str | None"], dict[str, str], Callable[[str], str]]


class Splitter(Protocol):
    """How the partitions group their events as they decode them: the flow's routing table.

    Decoding, the lateness gate and routing are one Python loop per record: each event
    goes, as ``(key, event, partition, cause)``, to the group of every route of its kind;
    ``cause`` is the partition's event time with the event (its newest ``ts`` so far).
    Whenever that event time reaches a new multiple of ``tick_ms``, ``tick`` adds the
    partition's tick to every group, in order among the events.
    """

    @property
    def routes(self) -> Mapping[str, Sequence[Route]]:
        """Event kind -> its routes."""

    @property
    def tick_ms(self) -> int: ...

    @property
    def remember(self) -> frozenset[str]:
        """Kinds whose newest record per entity the partitions keep for a restart (the state
        a model's ``route`` keeps: ``Model.route_kinds``); replayed through ``routes`` first."""

    def tick(
        self, groups: dict[str, list[Any]], wm: int, partition: str, *, is_end: bool = False
    ) -> None:
        """Add ``partition``'s tick at event time ``wm`` to every group."""


@dataclass(frozen=True, slots=True)
class Batch:
    """The records of one read of one partition, decoded and grouped.

    ``start`` is the offset of the first record; ``groups`` are the events by group key with
    their ticks (see :class:`Splitter`); ``codes`` has one byte per record (kind code, or
    ``NOT_COUNTED`` for a dead letter); ``prev_high_ts``/``high_ts`` are the partition's newest
    event time before and after the batch.
    """

    partition: str
    start: int
    groups: dict[str, list[Any]]
    dead: list[DeadRecord]
    codes: bytes
    prev_high_ts: int
    high_ts: int
    #: The partition's input ended with this batch (no more records this run).
    is_last: bool = False


@dataclass(frozen=True, slots=True)
class PartitionState:
    """The resume state of one partition: read position, record offset, gate, held records.

    ``seq`` counts the partition's accounting offsets: one per record read, and one per
    decision on a held record (it is accounted when decided, see :mod:`flows.sources.horizon`).
    """

    position: Any
    seq: int
    #: The event time (kept under its old name too: states written before ``held`` existed).
    newest_ts: int
    high_ts: int
    #: The newest record of each entity of the ``remember`` kinds, and the earliest of all.
    memory: tuple[Event, ...] = ()
    #: Records far ahead of the event time, waiting for the records after them.
    held: tuple[Held, ...] = ()


def _ts(ev: Event) -> int:
    return ev.ts


class _DecodingPartition(StatefulSourcePartition[Batch, PartitionState]):
    def __init__(
        self,
        name: str,
        reader: RawReader,
        source: str,
        state: PartitionState | None,
        *,
        splitter: Splitter,
        region: Region,
        future_tolerance_ms: int,
        lateness_ms: int,
        batch_size: int,
        highs: dict[str, int] | None = None,
        intervals: Mapping[tuple[str, str], int] | None = None,
        dedupe_window: int = 0,
        confirm: int = CONFIRM,
    ) -> None:
        self.name = name
        #: Records delivered twice are dead-lettered (``flows.sources.dedupe``).
        self.recent = RecentRecords(dedupe_window) if dedupe_window > 0 else None
        #: The event time of each live partition this process reads (shared between them).
        self.highs: dict[str, int] = {} if highs is None else highs
        self.followed = float("-inf")
        #: The event time of this partition's last record, and when it was read.
        self.data_high, self.data_wall = 0, 0.0
        self.reader = reader
        self.source = source
        self.batch_size = batch_size
        self.seq = state.seq if state else 0
        self.splitter = splitter
        #: (kind, entity) -> its newest record; ("", "") -> the earliest record of all.
        self.memory: dict[tuple[str, str], Event] = {}
        for ev in state.memory if state else ():
            self._remember(ev)
        #: After a restart: the remembered records go through the routes again, before any
        #: new record (they are not processed again).
        self.replay = sorted(self.memory.values(), key=_ts)
        # This partition's routes: the splitter's, and for the remembered kinds one more
        # that keeps the record and names no key.
        routes = {kind: list(rs) for kind, rs in splitter.routes.items()}
        for kind in splitter.remember:
            routes.setdefault(kind, []).append((self._remember, {}, str))
        #: Kind -> its code for the sink's accounting, and its routes (one lookup a record).
        self.table = {
            kind: (code, tuple(routes.get(kind, ()))) for kind, code in KIND_CODES.items()
        }
        # Live input is judged against the wall clock (by the decoder); replayed input against
        # its own event time, jumps confirmed by the records after them (the horizon).
        self.decoder = EventDecoder(
            region,
            future_tolerance_ms=future_tolerance_ms,
            clock=time.time if reader.is_live else None,
        )
        held = getattr(state, "held", ()) if not reader.is_live else ()
        self.horizon = Horizon(future_tolerance_ms, confirm=confirm, held=held)
        self.gate = LatenessGate(lateness_ms, state.high_ts if state else 0, intervals or {})
        if reader.is_live and self.gate.high_ts:
            self.highs[name] = self.gate.high_ts
        self.ended = False
        self.idle_since = time.monotonic()

    def _remember(self, ev: Event) -> None:
        self.memory[(ev.kind, ev.key)] = ev
        first = self.memory.get(("", ""))
        if first is None or ev.ts < first.ts:
            self.memory[("", "")] = ev

    def next_batch(self) -> list[Batch]:
        if self.replay:
            for ev in self.replay:
                for route, _, _ in self.splitter.routes.get(ev.kind, ()):
                    route(ev)
            self.replay = []
        if self.ended or STOP.is_set():
            # A requested stop ends the partition without an end-of-input batch: its event
            # time is not complete, and a resumed run (--recovery) continues from here.
            raise StopIteration
        try:
            raws = self.reader.read(self.batch_size)
        except StopIteration:
            # One last batch (the decisions on any held records) tells the flow this
            # partition's event time is complete.
            self.ended = True
            return [self._split([], final=True)]
        if not raws:
            return self._idle() if self.reader.is_live else []
        self.idle_since = time.monotonic()
        return [self._split(raws)]

    def _split(self, raws: list[bytes], *, final: bool = False) -> Batch:
        """Decode, check and route ``raws`` (see :class:`Splitter`): the fast loop, and the
        slow one while records far ahead of the event time are held (``horizon``)."""
        groups: dict[str, list[Any]] = {}
        dead: list[DeadRecord] = []
        codes = bytearray(len(raws))
        #: The decisions on held records: (records of the batch before it, its code).
        slots: list[tuple[int, int]] = []
        prev_high = self.gate.high_ts
        n = len(raws)
        # Records delivered twice (``flows.sources.dedupe``): their indexes in ``raws``.
        again = self.recent.repeats(raws) if self.recent is not None and n else None
        i = 0 if self.horizon.held else self._fast(raws, 0, groups, dead, codes, 0, again)
        while i < n:
            i = self._slow(raws, i, groups, dead, codes, slots, again)
            if i < n:
                i = self._fast(raws, i, groups, dead, codes, len(slots), again)
        if final:
            self._settle(n, groups, dead, slots, final=True)
            h, step = self.gate.high_ts, self.splitter.tick_ms
            self.splitter.tick(groups, h // step * step, self.name, is_end=True)
        if slots:
            codes = _merge(codes, slots)
        start, high = self.seq, self.gate.high_ts
        self.seq = start + len(codes)
        if n and self.reader.is_live:
            self.highs[self.name] = high
            self.data_high, self.data_wall = high, time.time()
        return Batch(self.name, start, groups, dead, bytes(codes), prev_high, high, final)

    def _fast(
        self,
        raws: list[bytes],
        first: int,
        groups: dict[str, list[Any]],
        dead: list[DeadRecord],
        codes: bytearray,
        shift: int,
        repeats: set[int] | None,
    ) -> int:
        """The hot loop, from ``raws[first]``: decode, gate and route in one pass. Returns
        ``len(raws)``, or the index of a record far ahead of the event time (for the slow
        loop). ``shift``: the decisions this batch placed before ``first`` (offsets);
        ``repeats``: the indexes of records delivered twice."""
        gate, part, table = self.gate, self.name, self.table
        base = self.seq + shift
        decode, source = self.decoder.decode, self.source
        tick, tick_ms = self.splitter.tick, self.splitter.tick_ms
        high = gate.high_ts
        lateness = gate.lateness_ms
        late_below = high - lateness
        next_tick = (high // tick_ms + 1) * tick_ms if high else 0
        span = _NEVER if self.reader.is_live else self.horizon.tolerance_ms
        ahead = high + span if high else _NEVER
        for i, raw in enumerate(raws[first:] if first else raws, first):
            out = decode(raw, source)
            if repeats and i in repeats and type(out) is not DeadLetter:
                out = self._duplicate(raw)
            if type(out) is DeadLetter:
                dead.append(DeadRecord(out, part, base + i))
                codes[i] = NOT_COUNTED
                continue
            ev: Event = out  # type: ignore[assignment]
            ts = ev.ts
            if ts > high:
                if ts > ahead:  # far ahead of the event time: the slow loop holds it
                    gate.high_ts = high
                    return i
                if ts >= next_tick:
                    wm = ts // tick_ms * tick_ms
                    tick(groups, wm, part)
                    next_tick = wm + tick_ms
                high = ts
                late_below = ts - lateness
                ahead = ts + span
            elif ts < late_below:  # the lateness gate's fast path above; it decides the rest
                gate.high_ts = high
                reason = gate.admit(ts, (ev.kind, ev.key) if gate.intervals else None)
                if reason is not None:
                    letter = DeadLetter(raw[:MAX_RAW_BYTES], source, reason)
                    dead.append(DeadRecord(letter, part, base + i))
                    codes[i] = NOT_COUNTED
                    continue
            code, routes = table[ev.kind]
            codes[i] = code
            for route, cache, group_of in routes:
                k = route(ev)
                if k is not None:
                    key = cache.get(k)
                    if key is None:
                        key = cache[k] = group_of(k)
                    items = groups.get(key)
                    if items is None:
                        items = groups[key] = []
                    items.append((k, ev, part, high))
        gate.high_ts = high
        return len(raws)

    def _slow(
        self,
        raws: list[bytes],
        first: int,
        groups: dict[str, list[Any]],
        dead: list[DeadRecord],
        codes: bytearray,
        slots: list[tuple[int, int]],
        repeats: set[int] | None,
    ) -> int:
        """The loop while records are held, from ``raws[first]``: each record votes on the
        held ones, then is held itself or processed, then what the votes allow is decided.
        Returns where the fast loop can take over (nothing held) or ``len(raws)``."""
        horizon, gate, part, source = self.horizon, self.gate, self.name, self.source
        for i in range(first, len(raws)):
            raw = raws[i]
            offset = self.seq + i + len(slots)
            out = self.decoder.decode(raw, source)
            if repeats and i in repeats and type(out) is not DeadLetter:
                out = self._duplicate(raw)
            if type(out) is DeadLetter:
                dead.append(DeadRecord(out, part, offset))
                codes[i] = NOT_COUNTED
                continue
            ev: Event = out  # type: ignore[assignment]
            horizon.vote(ev.ts)
            if horizon.is_far(ev.ts, gate.high_ts):
                horizon.hold(ev, raw, gate.high_ts)
                codes[i] = NOT_COUNTED  # accounted when decided, at an offset of its own
            else:
                codes[i] = self._admit(ev, raw, offset, groups, dead)
            self._settle(i + 1, groups, dead, slots)
            if not horizon.held:
                return i + 1
        return len(raws)

    def _duplicate(self, raw: bytes) -> DeadLetter:
        window = self.recent.window if self.recent is not None else 0
        return DeadLetter(raw[:MAX_RAW_BYTES], self.source, DUPLICATE.format(window=window))

    def _settle(
        self,
        at: int,
        groups: dict[str, list[Any]],
        dead: list[DeadRecord],
        slots: list[tuple[int, int]],
        *,
        final: bool = False,
    ) -> None:
        """Process or dead-letter the held records the votes decide, after ``at`` records of
        the batch; each decision takes the next offset."""
        while (decided := self.horizon.decide(self.gate.high_ts, final=final)) is not None:
            held, reason = decided
            offset = self.seq + at + len(slots)
            if reason is None:
                code = self._admit(held.event, held.raw, offset, groups, dead)
            else:
                letter = DeadLetter(held.raw[:MAX_RAW_BYTES], self.source, reason)
                dead.append(DeadRecord(letter, self.name, offset))
                code = NOT_COUNTED
            slots.append((at, code))

    def _admit(
        self,
        ev: Event,
        raw: bytes,
        offset: int,
        groups: dict[str, list[Any]],
        dead: list[DeadRecord],
    ) -> int:
        """Gate, tick and route one event, as the fast loop does (kept there inline: that
        loop is the flow's hot path). Returns the record's code."""
        gate, tick_ms = self.gate, self.splitter.tick_ms
        high, ts = gate.high_ts, ev.ts
        if ts > high:
            if not high or ts // tick_ms > high // tick_ms:
                self.splitter.tick(groups, ts // tick_ms * tick_ms, self.name)
            gate.high_ts = high = ts
        else:
            reason = gate.admit(ts, (ev.kind, ev.key) if gate.intervals else None)
            if reason is not None:
                letter = DeadLetter(raw[:MAX_RAW_BYTES], self.source, reason)
                dead.append(DeadRecord(letter, self.name, offset))
                return NOT_COUNTED
        code, routes = self.table[ev.kind]
        for route, cache, group_of in routes:
            k = route(ev)
            if k is not None:
                key = cache.get(k)
                if key is None:
                    key = cache[k] = group_of(k)
                groups.setdefault(key, []).append((k, ev, self.name, high))
        return code

    def _idle(self) -> list[Batch]:
        """A quiet live partition must not hold the city's event time back (every stage
        waits for the slowest partition). It follows the newest event time of the live
        partitions this process reads, at most every FOLLOW_S; when they are all quiet for
        QUIET_S, its event time moves on with the wall clock from its last record; a
        partition that never had a record waits IDLE_S, then takes now - lateness. A record
        that arrives behind it is still processed (as caused at the partition's event time),
        unless it is late by more than its allowance (the lateness, plus twice its station's
        declared interval)."""
        now = time.monotonic()
        prev = self.gate.high_ts
        lead = max(self.highs.values(), default=0)
        if lead > prev and now - self.followed >= FOLLOW_S:
            self.followed = now
            return self._advance(prev, lead)
        quiet = now - self.idle_since
        if prev and self.data_high and quiet >= QUIET_S:
            # Nothing here or beside it: event time moves on with the wall clock from the last
            # record (1x: a replay through a live source is never overtaken).
            high = self.data_high + int((time.time() - self.data_wall) * 1000)
            return self._advance(prev, high) if high > prev + FOLLOW_S * 1000 else []
        if quiet < IDLE_S:
            return []
        self.idle_since = now
        clock_ms = int(time.time() * 1000) - self.gate.lateness_ms  # no record yet at all
        return self._advance(prev, clock_ms) if clock_ms > prev else []

    def _advance(self, prev: int, high: int) -> list[Batch]:
        self.gate.high_ts = high
        self.highs[self.name] = high
        groups: dict[str, list[Any]] = {}
        tick_ms = self.splitter.tick_ms
        if not prev or high // tick_ms > prev // tick_ms:  # its minute ticks follow too
            self.splitter.tick(groups, high // tick_ms * tick_ms, self.name)
        return [Batch(self.name, self.seq, groups, [], b"", prev, high)]

    def next_awake(self) -> datetime | None:
        return self.reader.next_awake()

    def snapshot(self) -> PartitionState:
        return PartitionState(
            self.reader.position(),
            self.seq,
            self.gate.high_ts,
            self.gate.high_ts,
            tuple(self.memory.values()),
            tuple(copy.copy(h) for h in self.horizon.held),  # their votes go on changing
        )

    def close(self) -> None:
        self.reader.close()


def _merge(codes: bytearray, slots: list[tuple[int, int]]) -> bytearray:
    """The records' codes with each decision's code after the records before it."""
    out = bytearray()
    prev = 0
    for at, code in slots:
        out += codes[prev:at]
        out.append(code)
        prev = at
    out += codes[prev:]
    return out


class DecodingSource(FixedPartitionedSource[Batch, PartitionState]):
    """A bytewax source of :class:`Batch` items over any :class:`RawSource`."""

    def __init__(
        self,
        raw: RawSource,
        *,
        region: Region | None = None,
        future_tolerance_ms: int = 86_400_000,
        lateness_ms: int = 600_000,
        batch_size: int = 1000,
        splitter: Splitter | None = None,
        dedupe_window: int = 0,
        confirm: int = CONFIRM,
        intervals: Mapping[tuple[str, str], int] | None = None,
    ) -> None:
        self.raw = raw
        #: ``(kind, entity) -> declared reporting interval (ms)``: such a record may be later
        #: (:class:`models.alert_engine.LatenessGate`); ``flows.run.reporting_intervals``.
        self.intervals: Mapping[tuple[str, str], int] = intervals or {}
        #: Dead-letter a record equal to one of the partition's last this many (0: off).
        self.dedupe_window = dedupe_window
        #: How the partitions group their events: the flow's (``build_flow`` sets it).
        self.splitter = splitter
        #: Live partitions' event times in this process: a quiet one follows the newest.
        self.highs: dict[str, int] = {}
        self.region = region or Region()
        self.future_tolerance_ms = future_tolerance_ms
        self.lateness_ms = lateness_ms
        self.batch_size = batch_size
        #: Records after a far-ahead one that decide about it (``flows.sources.horizon``).
        self.confirm = confirm

    def split_by(self, splitter: Splitter) -> DecodingSource:
        """This source, with its partitions grouping events by ``splitter``."""
        return DecodingSource(
            self.raw,
            region=self.region,
            future_tolerance_ms=self.future_tolerance_ms,
            lateness_ms=self.lateness_ms,
            batch_size=self.batch_size,
            splitter=splitter,
            dedupe_window=self.dedupe_window,
            confirm=self.confirm,
            intervals=self.intervals,
        )

    def list_parts(self) -> list[str]:
        return self.raw.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: PartitionState | None
    ) -> _DecodingPartition:
        if self.splitter is None:
            msg = "DecodingSource: no splitter (build_flow gives it the flow's router)"
            raise ValueError(msg)
        reader = self.raw.open(for_part, resume_state.position if resume_state else None)
        return _DecodingPartition(
            for_part,
            reader,
            for_part,
            resume_state,
            splitter=self.splitter,
            region=self.region,
            future_tolerance_ms=self.future_tolerance_ms,
            lateness_ms=self.lateness_ms,
            batch_size=self.batch_size,
            highs=self.highs,
            dedupe_window=self.dedupe_window,
            confirm=self.confirm,
            intervals=self.intervals,
        )
