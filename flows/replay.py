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
- ``order``: a file written by entity (every record of one vehicle, then the next) would lose
  most of its records as late; :meth:`ReplaySource.prepare` finds such files (``auto``) or
  takes them as such (``entity``) and reads a copy sorted by time, made in bounded memory in
  a temporary directory (``flows/sources/order.py``), under the original file's name.

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
from pathlib import Path
from typing import Any

from bytewax.dataflow import Dataflow

from citywatch.settings import Settings
from flows.panics import contained
from flows.run import RunOptions, build_city_flow
from flows.sources import RawReader, RawSource
from flows.sources.files import PROBLEMS, FileSource
from flows.sources.order import Sorted, record_ts, scan, sort_by_time

__all__ = [
    "Progress",
    "ReplaySource",
    "build_replay_flow",
    "progress_line",
    "record_ts",
    "run_in_process",
]


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


#: ``--order``: ``auto`` sorts the files that look ordered by entity, ``entity`` every file,
#: ``file`` none (records as the file has them).
ORDERS = ("auto", "entity", "file")


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
        #: Original file -> the sorted copy read instead (see :meth:`prepare`).
        self.sorted: dict[str, Sorted] = {}
        self._count_bytes()

    def _count_bytes(self) -> None:
        if self.progress is not None:
            self.progress.total_bytes = sum(
                os.path.getsize(self._path_of(f)) for f in self.files.files
            )

    def _path_of(self, f: str) -> str:
        done = self.sorted.get(f)
        return done.path if done else f

    def prepare(self, order: str, lateness_ms: int, tmp: Path, say: Callable[[str], None]) -> None:
        """Sort the files ``order`` asks for into ``tmp`` (which must outlive the replay),
        saying what it does, one line a file. A file that broke while sorted is reported
        as the flow's reader would (:data:`flows.sources.files.PROBLEMS`)."""
        if order not in ORDERS:
            msg = f"order: {order!r} is not one of {', '.join(ORDERS)}"
            raise ValueError(msg)
        if order == "file":
            return
        for i, f in enumerate(self.files.files):
            name = Path(f).name
            if order == "auto":
                found = scan(f, lateness_ms)
                if not found.looks_by_entity():
                    continue
                why = (
                    f"{name} looks ordered by entity (ts went back {found.back_steps:,} times; "
                    f"{found.late:,} of {found.records:,} records would be late)"
                )
            else:
                why = f"{name}: --order entity"
            done = sort_by_time(f, tmp / f"{i:04d}")
            self.sorted[f] = done
            if done.problem is not None:
                PROBLEMS.add(done.problem)
            runs = f" in {done.runs} runs" if done.runs > 1 else ""
            say(
                f"{why}; sorted by time into a temporary file ({done.records:,} records"
                f"{runs}, {done.seconds:.1f} s)"
            )
        self._count_bytes()

    def list_parts(self) -> list[str]:
        return self.files.list_parts()

    def open(self, part: str, position: Any | None) -> RawReader:
        path = part.removeprefix("file:")
        inner = self.files.open(f"file:{self._path_of(path)}", position)
        return _ReplayReader(
            part,
            inner,
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

    with contained():
        cli_main(  # type: ignore[no-untyped-call]
            flow, workers_per_process=1, epoch_interval=timedelta(seconds=settings.epoch_s)
        )
