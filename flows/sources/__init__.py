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
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from citywatch.events import MAX_RAW_BYTES, DeadLetter, Event, EventDecoder, Region
from citywatch.partitioning import partition_of
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


@dataclass(frozen=True, slots=True)
class Batch:
    """The records of one read of one partition, decoded.

    ``start`` is the offset of the first record; ``codes`` has one byte per record (kind code, or
    ``NOT_COUNTED`` for a dead letter); ``prev_high_ts``/``high_ts`` are the partition's newest
    event time before and after the batch (the router derives watermark ticks from them).
    """

    partition: str
    start: int
    events: list[Event]
    dead: list[DeadRecord]
    codes: bytes
    prev_high_ts: int
    high_ts: int
    #: The partition's input ended with this batch (no more records this run).
    is_last: bool = False
    #: After a restart, on the first batch: remembered records (``remember`` kinds) to pass
    #: through the models' ``route`` again before ``events``; they are not processed again.
    replay: tuple[Event, ...] = ()


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
        region: Region,
        future_tolerance_ms: int,
        lateness_ms: int,
        batch_size: int,
        remember: frozenset[str] = frozenset(),
        highs: dict[str, int] | None = None,
    ) -> None:
        self.name = name
        #: The event time of each live partition this process reads (shared between them).
        self.highs: dict[str, int] = {} if highs is None else highs
        self.followed = float("-inf")
        #: The event time of this partition's last record, and when it was read.
        self.data_high, self.data_wall = 0, 0.0
        self.reader = reader
        self.source = source
        self.batch_size = batch_size
        self.seq = state.seq if state else 0
        self.remember_kinds = remember
        self.remember = bytes(sorted(KIND_CODES[k] for k in remember))
        #: (kind, entity) -> its newest record; ("", "") -> the earliest record of all.
        self.memory: dict[tuple[str, str], Event] = {}
        for ev in state.memory if state else ():
            self._remember(ev)
        self.replay = tuple(sorted(self.memory.values(), key=_ts))
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

    def next_batch(self) -> list[Batch]:
        batches = self._next_batch()
        if self.replay and batches:
            batches[0] = replace(batches[0], replay=self.replay)
            self.replay = ()
        return batches

    def _remember(self, ev: Event) -> None:
        self.memory[(ev.kind, ev.key)] = ev
        first = self.memory.get(("", ""))
        if first is None or ev.ts < first.ts:
            self.memory[("", "")] = ev

    def _next_batch(self) -> list[Batch]:
        if self.ended or STOP.is_set():
            # A requested stop ends the partition without an end-of-input batch: its event
            # time is not complete, and a resumed run (--recovery) continues from here.
            raise StopIteration
        try:
            raws = self.reader.read(self.batch_size)
        except StopIteration:
            # One last, empty batch tells the flow this partition's event time is complete.
            self.ended = True
            h = self.gate.high_ts
            return [Batch(self.name, self.seq, [], [], b"", h, h, is_last=True)]
        if not raws:
            return self._idle() if self.reader.is_live else []
        self.idle_since = time.monotonic()
        events: list[Event] = []
        dead: list[DeadRecord] = []
        codes = bytearray(len(raws))
        gate = self.gate
        prev_high = gate.high_ts
        decode, seq, source, append = self.decoder.decode, self.seq, self.source, events.append
        # The lateness gate's fast path inline (LatenessGate.admit decides the rest).
        late_below = prev_high - gate.lateness_ms
        for i, raw in enumerate(raws):
            out = decode(raw, source)
            if type(out) is DeadLetter:
                dead.append(DeadRecord(out, self.name, seq + i))
                codes[i] = NOT_COUNTED
                continue
            ev: Event = out  # type: ignore[assignment]
            ts = ev.ts
            if ts < late_below:
                reason = gate.admit(ts)
                if reason is not None:
                    letter = DeadLetter(raw[:MAX_RAW_BYTES], source, reason)
                    dead.append(DeadRecord(letter, self.name, seq + i))
                    codes[i] = NOT_COUNTED
                    continue
            elif ts > gate.high_ts:
                gate.high_ts = ts
                late_below = ts - gate.lateness_ms
            append(ev)
            codes[i] = KIND_CODES[ev.kind]
        self.seq = seq + len(raws)
        if self.reader.is_live:
            self.highs[self.name] = gate.high_ts
            self.data_high, self.data_wall = gate.high_ts, time.time()
        if self.remember and any(c in codes for c in self.remember):
            wanted = self.remember_kinds
            for ev in events:
                if ev.kind in wanted:
                    self._remember(ev)
        return [Batch(self.name, seq, events, dead, bytes(codes), prev_high, self.gate.high_ts)]

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
        return [Batch(self.name, self.seq, [], [], b"", prev, high)]

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
        remember: frozenset[str] = frozenset(),
    ) -> None:
        self.raw = raw
        #: Kinds whose newest record per entity the partitions keep for a restart
        #: (``Model.route_kinds``): see :attr:`Batch.replay`.
        self.remember = remember
        #: Live partitions' event times in this process: a quiet one follows the newest.
        self.highs: dict[str, int] = {}
        self.region = region or Region()
        self.future_tolerance_ms = future_tolerance_ms
        self.lateness_ms = lateness_ms
        self.batch_size = batch_size

    def list_parts(self) -> list[str]:
        return self.raw.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: PartitionState | None
    ) -> _DecodingPartition:
        reader = self.raw.open(for_part, resume_state.position if resume_state else None)
        return _DecodingPartition(
            for_part,
            reader,
            for_part,
            resume_state,
            region=self.region,
            future_tolerance_ms=self.future_tolerance_ms,
            lateness_ms=self.lateness_ms,
            batch_size=self.batch_size,
            remember=self.remember,
            highs=self.highs,
        )
