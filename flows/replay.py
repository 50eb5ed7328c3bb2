"""Replaying JSON Lines files through the city flow: pacing, a time window and progress.

:class:`ReplaySource` wraps :class:`flows.sources.files.FileSource` (one partition per file,
same resume positions) and adds what a model developer needs on top:

- ``speed``: pace by event time (``10.0`` = ten event seconds per wall second; ``None`` = as
  fast as the flow goes). All files of a process share one anchor, so they advance together.
- ``from_ms``/``to_ms``: keep only records whose ``ts`` lies in ``[from_ms, to_ms)``. Records
  whose ``ts`` cannot be read are kept: the flow dead-letters them, so nothing is lost silently.
- :class:`Progress`: records read, rate, event-time position and an ETA from the bytes read,
  updated by the readers and shown by :func:`progress_line` (``citywatch replay`` prints it on
  stderr).

Pacing and the window need each record's ``ts``; simulator records put it near the start, so a
byte scan finds it without parsing the JSON (a full parse is the fallback).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from bytewax.dataflow import Dataflow

from citywatch.settings import Settings
from flows.run import RunOptions, build_city_flow
from flows.sources import RawReader, RawSource
from flows.sources.files import FileSource

__all__ = [
    "Progress",
    "ReplaySource",
    "build_replay_flow",
    "progress_line",
    "record_ts",
    "run_in_process",
]


def record_ts(raw: bytes) -> int | None:
    """The record's ``ts`` (epoch ms) or None when it has none readable.

    >>> record_ts(b'{"kind":"air","ts":1793548800001,"pm25":3}'), record_ts(b"nope")
    (1793548800001, None)
    """
    i = raw.find(b'"ts":')
    if i >= 0:
        j = i + 5
        k = j
        n = len(raw)
        while k < n and 48 <= raw[k] <= 57:
            k += 1
        if k > j and k < n and raw[k] in b",}":
            return int(raw[j:k])
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    ts = d.get("ts") if isinstance(d, dict) else None
    return ts if type(ts) is int else None


@dataclass(slots=True)
class Progress:
    """Counters the readers update and the progress bar reads (one process)."""

    total_bytes: int = 0
    records: int = 0
    skipped: int = 0
    ts: int | None = None
    started: float = field(default_factory=time.monotonic)
    done_bytes: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, part: str, n: int, skipped: int, ts: int | None, pos_bytes: int | None) -> None:
        with self.lock:
            self.records += n
            self.skipped += skipped
            if ts is not None and (self.ts is None or ts > self.ts):
                self.ts = ts
            if pos_bytes is not None:
                self.done_bytes[part] = pos_bytes

    def fraction(self) -> float | None:
        if not self.total_bytes:
            return None
        return min(1.0, sum(self.done_bytes.values()) / self.total_bytes)


def progress_line(p: Progress, now: float | None = None, *, width: int = 24) -> str:
    """``[#####.....]  41% 1,234,567 rec  98,765/s  ts 2026-11-02 08:15 +08  ETA 0:01:12``."""
    now = time.monotonic() if now is None else now
    elapsed = max(now - p.started, 1e-9)
    rate = p.records / elapsed
    frac = p.fraction()
    parts = []
    if frac is not None:
        filled = round(frac * width)
        parts.append(f"[{'#' * filled}{'.' * (width - filled)}] {frac * 100:3.0f}%")
    parts.append(f"{p.records:,} rec")
    parts.append(f"{rate:,.0f}/s")
    if p.ts is not None:
        local = datetime.fromtimestamp(p.ts / 1000, UTC) + timedelta(hours=8)
        parts.append(f"ts {local:%Y-%m-%d %H:%M:%S} +08")
    if p.skipped:
        parts.append(f"{p.skipped:,} outside window")
    if frac is not None and frac > 0:
        eta = int(elapsed * (1.0 - frac) / frac)
        parts.append(f"ETA {timedelta(seconds=eta)}")
    return "  ".join(parts)


class _Pacer:
    """One event-time anchor shared by every reader of a process."""

    def __init__(self, speed: float, clock: Callable[[], float]) -> None:
        self.speed = speed
        self.clock = clock
        self.anchor: tuple[float, int] | None = None
        self.lock = threading.Lock()

    def due_ts(self, first_ts: int) -> float:
        """The newest event time that may be released now."""
        now = self.clock()
        with self.lock:
            if self.anchor is None:
                self.anchor = (now, first_ts)
            wall0, ts0 = self.anchor
        return ts0 + (now - wall0) * 1000.0 * self.speed


def _byte_position(inner: RawReader) -> int | None:
    """Compressed (gzip) or plain bytes consumed so far, for the ETA; None if unknown."""
    fh: Any = getattr(inner, "fh", None)
    raw = getattr(fh, "fileobj", fh)
    try:
        return int(raw.tell()) if raw is not None else None
    except (OSError, ValueError):
        return None


class _ReplayReader(RawReader):
    def __init__(
        self,
        part: str,
        inner: RawReader,
        *,
        pacer: _Pacer | None,
        from_ms: int | None,
        to_ms: int | None,
        progress: Progress | None,
    ) -> None:
        self.part = part
        self.inner = inner
        self.pacer = pacer
        self.from_ms = from_ms
        self.to_ms = to_ms
        self.progress = progress
        self.needs_ts = pacer is not None or from_ms is not None or to_ms is not None
        self.pending: list[tuple[bytes, int | None]] = []
        self.awake: datetime | None = None
        self.exhausted = False

    def _fill(self, max_n: int) -> int:
        """Read more records into ``pending``; returns how many the window skipped."""
        raws = self.inner.read(max_n)
        skipped = 0
        lo, hi = self.from_ms, self.to_ms
        for raw in raws:
            ts = record_ts(raw) if self.needs_ts else None
            if ts is not None and ((lo is not None and ts < lo) or (hi is not None and ts >= hi)):
                skipped += 1
                continue
            self.pending.append((raw, ts))
        return skipped

    def read(self, max_n: int) -> list[bytes]:
        self.awake = None
        skipped = 0
        if not self.pending and not self.exhausted:
            try:
                skipped = self._fill(max_n)
            except StopIteration:
                self.exhausted = True
        if not self.pending:
            self._report(0, skipped, None)
            if self.exhausted:
                raise StopIteration
            return []
        take = len(self.pending)
        if self.pacer is not None:
            first = next((ts for _, ts in self.pending if ts is not None), None)
            if first is not None:
                due = self.pacer.due_ts(first)
                take = 0
                for _, ts in self.pending:
                    if ts is not None and ts > due:
                        wait_s = min(1.0, (ts - due) / 1000.0 / self.pacer.speed)
                        self.awake = datetime.now(UTC) + timedelta(seconds=wait_s)
                        break
                    take += 1
        out = [raw for raw, _ in self.pending[:take]]
        last_ts = next((ts for _, ts in reversed(self.pending[:take]) if ts is not None), None)
        del self.pending[:take]
        if last_ts is None and out and self.progress is not None:
            last_ts = record_ts(out[-1])
        self._report(len(out), skipped, last_ts)
        return out

    def _report(self, n: int, skipped: int, ts: int | None) -> None:
        if self.progress is not None:
            self.progress.add(self.part, n, skipped, ts, _byte_position(self.inner))

    def position(self) -> Any:
        # Records still pending were read from the file but not handed out: a resume must
        # re-read them, which the inner position cannot express; replays run without
        # recovery, so report the inner position (documented in ``citywatch replay``).
        return self.inner.position()

    def next_awake(self) -> datetime | None:
        return self.awake

    def close(self) -> None:
        self.inner.close()


class ReplaySource(RawSource):
    """:class:`FileSource` with pacing, an event-time window and progress (see module doc)."""

    source = "replay"

    def __init__(
        self,
        paths: list[str],
        *,
        speed: float | None = None,
        from_ms: int | None = None,
        to_ms: int | None = None,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if from_ms is not None and to_ms is not None and from_ms >= to_ms:
            msg = f"window: --from {from_ms} is not before --to {to_ms}"
            raise ValueError(msg)
        self.files = FileSource(paths)
        self.pacer = _Pacer(speed, clock) if speed else None
        self.from_ms = from_ms
        self.to_ms = to_ms
        self.progress = progress
        if progress is not None:
            progress.total_bytes = sum(os.path.getsize(f) for f in self.files.files)

    def list_parts(self) -> list[str]:
        return self.files.list_parts()

    def open(self, part: str, position: Any | None) -> RawReader:
        return _ReplayReader(
            part,
            self.files.open(part, position),
            pacer=self.pacer,
            from_ms=self.from_ms,
            to_ms=self.to_ms,
            progress=self.progress,
        )


def build_replay_flow(
    source: ReplaySource, settings: Settings, url: str, *, registry_dir: str | None, run_id: str
) -> Dataflow:
    """The real city flow (``flows.run.build_city_flow``) reading ``source``."""
    opts = RunOptions(
        source="files",
        paths=tuple(source.files.files),
        registry_dir=registry_dir,
        speed=None,
        run_id=run_id,
    )
    return build_city_flow(opts, settings, url, raw=source)


def run_in_process(flow: Dataflow, settings: Settings) -> None:
    """Run ``flow`` to completion in this process (one worker, the settings' epoch)."""
    from bytewax.run import cli_main

    cli_main(  # type: ignore[no-untyped-call]
        flow, workers_per_process=1, epoch_interval=timedelta(seconds=settings.epoch_s)
    )
