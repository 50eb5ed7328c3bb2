"""The time order of a JSON Lines file: how far from it a file is, and an external sort into it.

A partition's event time is its newest ``ts``, and a record more than the lateness behind it
is dead-lettered as late. A file written *by entity* (every fix of one vehicle, then the
next) goes back in time at every entity: most of its records would be late. :func:`scan`
measures that in one pass (a regex over large blocks, C speed: a heuristic, enough to
decide); :func:`sort_by_time` writes the records sorted by ``ts`` (stable: records with the
same ``ts`` keep their order) into a directory, in bounded memory: sorted runs of at most
``chunk_bytes`` each, merged. Records whose ``ts`` cannot be read keep their place after the
record before them (they are dead-lettered as the flow reads them).
"""

from __future__ import annotations

import gzip
import heapq
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

import orjson

from citywatch.events import BOM
from flows.sources.files import BREAKS, FileProblem, describe_break

__all__ = ["CHUNK_BYTES", "Scan", "Sorted", "record_ts", "scan", "sort_by_time"]

#: Records held in memory at once while sorting, in bytes of input.
CHUNK_BYTES: Final = 32 << 20
_BLOCK: Final = 4 << 20
_TS = re.compile(rb'"ts"\s*:\s*(-?\d+)')
#: A sorted run's line: the ``ts`` as 20 digits, a tab, the record (compares as text).
_KEY_WIDTH: Final = 20


def record_ts(raw: bytes) -> int | None:
    """The record's ``ts`` (epoch ms) or None when it has none readable.

    >>> record_ts(b'{"kind":"air","ts":1793548800001,"pm25":3}'), record_ts(b"nope")
    (1793548800001, None)
    """
    i = raw.find(b'"ts":')
    if i >= 0:
        j = k = i + 5
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


def _open(path: str) -> IO[bytes]:
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Scan:
    """How far a file is from time order, for a given lateness."""

    records: int
    #: Times ``ts`` went back by more than the lateness from one record to the next.
    back_steps: int
    #: Records more than the lateness behind the newest ``ts`` before them: lost as late.
    late: int

    def looks_by_entity(self) -> bool:
        """Whether replaying the file as it is would lose a real share of it as late (1 %,
        and at least 10 records): then it is not a time-ordered recording with stragglers."""
        return self.late >= max(10, self.records // 100)


def scan(path: str, lateness_ms: int) -> Scan:
    """One pass over ``path`` (plain or gzip): records, back-steps and would-be-late records."""
    records = back = late = 0
    prev = high = None
    tail = b""
    with _open(path) as fh:
        while True:
            try:
                block = fh.read(_BLOCK)
            except BREAKS:  # the sort or the flow's reader reports it; measure what there is
                break
            if not block:
                break
            data = tail + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                tail = data
                continue
            whole, tail = data[:cut], data[cut:]
            records += whole.count(b"\n") - whole.count(b"\n\n")
            for m in _TS.finditer(whole):
                ts = int(m.group(1))
                if prev is not None and ts < prev - lateness_ms:
                    back += 1
                if high is None or ts > high:
                    high = ts
                elif ts < high - lateness_ms:
                    late += 1
                prev = ts
    if tail.strip():
        records += 1
        last = _TS.search(tail)
        if last is not None and high is not None and int(last.group(1)) < high - lateness_ms:
            late += 1
    return Scan(records, back, late)


@dataclass(frozen=True, slots=True)
class Sorted:
    """The sorted copy of a file: where, how many records, in how many runs, how long."""

    path: str
    records: int
    runs: int
    seconds: float
    #: The original broke while it was read: the records before the break were sorted.
    problem: FileProblem | None = None


def sort_by_time(path: str, out_dir: Path, *, chunk_bytes: int = CHUNK_BYTES) -> Sorted:
    """Write ``path``'s records sorted by ``ts`` (stable) to a plain ``.jsonl`` in
    ``out_dir``; at most ``chunk_bytes`` of records are in memory at once."""
    t0 = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).name.removesuffix(".gz").removesuffix(".jsonl")
    runs: list[Path] = []
    records = 0
    last_ts = 0
    problems: list[FileProblem] = []
    for chunk in _chunks(path, chunk_bytes, problems):
        keyed = []
        for line in chunk:
            ts = record_ts(line)
            # A record without a readable ts stays after the one before it.
            last_ts = ts if ts is not None and ts >= 0 else last_ts
            keyed.append((last_ts, line))
        keyed.sort(key=_first)  # stable: the file's order among equal ts
        run = out_dir / f"{stem}.run{len(runs):04d}"
        with open(run, "wb") as fh:
            fh.writelines(b"%020d\t%s\n" % (min(ts, 10**20 - 1), line) for ts, line in keyed)
        runs.append(run)
        records += len(keyed)
    out = out_dir / f"{stem}.sorted.jsonl"
    with ExitStack() as stack, open(out, "wb") as dst:
        files = [stack.enter_context(open(r, "rb")) for r in runs]
        # Runs in file order, merged by key: equal keys come from the earlier run first.
        for line in heapq.merge(*files, key=_key):
            dst.write(line[_KEY_WIDTH + 1 :])
    for r in runs:
        r.unlink()
    problem = problems[0] if problems else None
    return Sorted(str(out), records, len(runs), time.monotonic() - t0, problem)


def _first(item: tuple[int, bytes]) -> int:
    return item[0]


def _key(line: bytes) -> bytes:
    return line[:_KEY_WIDTH]


def _chunks(path: str, chunk_bytes: int, problems: list[FileProblem]) -> Iterator[list[bytes]]:
    """The file's non-blank lines (stripped), in lists of about ``chunk_bytes``; a break
    while reading ends them (with a problem: the lines before it are kept)."""
    chunk: list[bytes] = []
    size = 0
    first = True
    n = 0
    with _open(path) as fh:
        lines = iter(fh)
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                break
            except BREAKS as exc:
                problems.append(FileProblem(path, describe_break(exc), n))
                break
            n += 1
            if first:
                raw, first = raw.removeprefix(BOM), False
            line = raw.strip()
            if not line:
                continue
            chunk.append(line)
            size += len(line)
            if size >= chunk_bytes:
                yield chunk
                chunk, size = [], 0
    if chunk:
        yield chunk
