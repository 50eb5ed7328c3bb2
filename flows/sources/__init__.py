"""Sources: raw records in, decoded batches out, with the read position as resume state.

Every source is a :class:`RawSource`: a fixed set of named partitions, each opened at a resume
position as a :class:`RawReader` that hands out raw records (bytes, one JSON object each).
:class:`DecodingSource` turns any of them into a bytewax ``FixedPartitionedSource`` whose items
are :class:`Batch` values: the records of one read, decoded (typed events, or dead letters
with the reason), checked for event-time lateness, with their offsets. Decoding happens in the
partition itself, so the decoder state (newest ``ts`` seen) and the lateness gate are part of the
snapshot and a resumed run decides exactly as the uninterrupted one would.
"""

from __future__ import annotations

import abc
import contextlib
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
    """The resume state of one partition: read position, record offset, decoder and gate."""

    position: Any
    seq: int
    newest_ts: int
    high_ts: int
    #: The newest record of each entity of the ``remember`` kinds, and the earliest of all.
    memory: tuple[Event, ...] = ()


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
        dedupe_window: int = 0,
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
        self.decoder = EventDecoder(
            region,
            future_tolerance_ms=future_tolerance_ms,
            anchor_ms=state.newest_ts if state and state.newest_ts else None,
        )
        self.gate = LatenessGate(lateness_ms, state.high_ts if state else 0)
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
            # One last, empty batch tells the flow this partition's event time is complete.
            self.ended = True
            h, step = self.gate.high_ts, self.splitter.tick_ms
            groups: dict[str, list[Any]] = {}
            self.splitter.tick(groups, h // step * step, self.name, is_end=True)
            return [Batch(self.name, self.seq, groups, [], b"", h, h, is_last=True)]
        if not raws:
            return self._idle() if self.reader.is_live else []
        self.idle_since = time.monotonic()
        return [self._split(raws)]

    def _split(self, raws: list[bytes]) -> Batch:
        """Decode, gate and route ``raws`` in one loop (see :class:`Splitter`)."""
        groups: dict[str, list[Any]] = {}
        dead: list[DeadRecord] = []
        codes = bytearray(len(raws))
        gate, part, seq, table = self.gate, self.name, self.seq, self.table
        decode, source = self.decoder.decode, self.source
        tick, tick_ms = self.splitter.tick, self.splitter.tick_ms
        prev_high = high = gate.high_ts
        lateness = gate.lateness_ms
        late_below = high - lateness
        next_tick = (high // tick_ms + 1) * tick_ms if high else 0
        recent = self.recent
        repeats = recent.repeats(raws) if recent is not None else None
        for i, raw in enumerate(raws):
            out = decode(raw, source)
            if repeats and i in repeats and type(out) is not DeadLetter and recent is not None:
                again = DUPLICATE.format(window=recent.window)
                out = DeadLetter(raw[:MAX_RAW_BYTES], source, again)
            if type(out) is DeadLetter:
                dead.append(DeadRecord(out, part, seq + i))
                codes[i] = NOT_COUNTED
                continue
            ev: Event = out  # type: ignore[assignment]
            ts = ev.ts
            if ts > high:
                if ts >= next_tick:
                    wm = ts // tick_ms * tick_ms
                    tick(groups, wm, part)
                    next_tick = wm + tick_ms
                high = ts
                late_below = ts - lateness
            elif ts < late_below:  # the lateness gate's fast path above; it decides the rest
                gate.high_ts = high
                reason = gate.admit(ts)
                if reason is not None:
                    letter = DeadLetter(raw[:MAX_RAW_BYTES], source, reason)
                    dead.append(DeadRecord(letter, part, seq + i))
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
        self.seq = seq + len(raws)
        if self.reader.is_live:
            self.highs[part] = high
            self.data_high, self.data_wall = high, time.time()
        return Batch(part, seq, groups, dead, bytes(codes), prev_high, high)

    def _idle(self) -> list[Batch]:
        """A quiet live partition must not hold the city's event time back (every stage
        waits for the slowest partition). It follows the newest event time of the live
        partitions this process reads, at most every FOLLOW_S; when they are all quiet for
        QUIET_S, its event time moves on with the wall clock from its last record; a
        partition that never had a record waits IDLE_S, then takes now - lateness. A record
        that arrives behind it is still processed (as caused at the partition's event time),
        unless it is late by more than lateness."""
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
            self.decoder.newest_ts,
            self.gate.high_ts,
            tuple(self.memory.values()),
        )

    def close(self) -> None:
        self.reader.close()


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
    ) -> None:
        self.raw = raw
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
        )
