"""Recorded data as an evaluation dataset: event files, their labels and their registry.

:class:`Recorded` gives recorded JSON Lines files (``.jsonl`` or gzip, e.g. what
``citywatch import`` and ``citywatch inject`` write) the interface of a
:class:`simulators.Simulation` that evaluation needs: ``registry``, ``labels``, ``start_ms``,
``end_ms``, ``records()``, ``events()`` and ``entity_days()``. So ``citywatch evaluate
--events`` runs them through the same flow and scoring as a simulated scenario.

Files are scanned once when the dataset is made (time span, entities, order); records are
then streamed in event-time order: files already in time order are merged lazily, a file
that is not is sorted in memory (stable, so per-entity order of equal times is kept) and
:attr:`Recorded.sorted_in_memory` says so. Lines without a readable ``ts`` still go to the
flow, next to the line before them, where the decoder dead-letters them with a reason.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "e.jsonl").write_bytes(
...     b'{"kind":"air","ts":1356969600000,"station":"A","pm25":30}\\n'
...     b'{"kind":"air","ts":1356973200000,"station":"A","pm25":31}\\n')
>>> rec = Recorded([d / "e.jsonl"], Registry())
>>> rec.records_count, rec.end_ms - rec.start_ms, rec.entity_days()["air.spike"] > 0
(2, 3600001, True)
"""

from __future__ import annotations

import gzip
import heapq
import typing
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec
import orjson

from citywatch.errors import InputError
from citywatch.events import Event
from citywatch.registry import Registry
from simulators.labels import Label
from simulators.scoring import population_days

__all__ = ["Recorded", "open_records", "read_lines", "real_data_dir", "write_records"]

_GZIP_MAGIC = b"\x1f\x8b"
#: Field naming the entity of each kind: the events' own ``KEY_FIELD``.
_KEY_FIELD: dict[str, str] = {t.kind: t.KEY_FIELD for t in typing.get_args(Event)}


def open_records(path: str | Path, what: str = "events") -> IO[bytes]:
    """Open a file for reading, gzip or plain by its first bytes (not its name); a missing or
    unreadable file is an :class:`InputError` starting with ``what``."""
    p = Path(path)
    try:
        fh: IO[bytes] = p.open("rb")
    except FileNotFoundError as exc:
        msg = f"{what}: {str(p)!r} not found"
        raise InputError(msg) from exc
    except OSError as exc:
        msg = f"{what}: {str(p)!r}: {exc.strerror or exc}"
        raise InputError(msg) from exc
    if fh.read(2) == _GZIP_MAGIC:
        fh.close()
        return gzip.open(p, "rb")  # type: ignore[return-value]
    fh.seek(0)
    return fh


def write_records(path: str | Path, lines: Iterable[bytes]) -> None:
    """One record per line; gzip when the name ends in ``.gz``, reproducibly (no time or file
    name in the gzip header, like the simulator's files)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join(x + b"\n" for x in lines)
    if p.name.endswith(".gz"):
        with p.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(body)
    else:
        p.write_bytes(body)


def read_lines(path: str | Path) -> Iterator[bytes]:
    """The non-blank lines of a record file, stripped; a truncated or corrupt gzip file is
    an :class:`InputError` naming the file and the line it broke at."""
    n = 0
    with open_records(path) as fh:
        try:
            for line in fh:
                n += 1
                s = line.strip()
                if s:
                    yield s
        except (OSError, EOFError, zlib.error) as exc:
            msg = f"events: {path}: unreadable after line {n} ({exc})"
            raise InputError(msg) from exc


def _ts_and_entity(line: bytes) -> tuple[int | None, str | None, str | None]:
    try:
        d: Any = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None, None, None
    if not isinstance(d, dict):
        return None, None, None
    ts = d.get("ts")
    if not isinstance(ts, int) or isinstance(ts, bool):
        ts = None
    kind = d.get("kind")
    key = d.get(_KEY_FIELD.get(kind, ""), None) if isinstance(kind, str) else None
    return ts, kind if isinstance(kind, str) else None, key if isinstance(key, str) else None


class Recorded:
    """Recorded event files with their ``registry`` and ``labels`` (see the module doc)."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        registry: Registry,
        labels: Iterable[Label] = (),
        *,
        name: str = "recorded",
    ) -> None:
        if not paths:
            msg = "events: no event file given"
            raise InputError(msg)
        self.name = name
        self.paths = [Path(p) for p in paths]
        self._registry = registry
        self.labels: list[Label] = list(labels)
        self.entities: dict[str, set[str]] = {}
        self.kinds: Counter[str] = Counter()
        self.records_count = 0
        self.unreadable = 0
        self.sorted_in_memory = False
        self._in_order: list[bool] = []
        lo: int | None = None
        hi: int | None = None
        for p in self.paths:
            last = None
            ordered = True
            for line in read_lines(p):
                self.records_count += 1
                ts, kind, key = _ts_and_entity(line)
                if ts is None:
                    self.unreadable += 1
                    continue
                if kind is not None:
                    self.kinds[kind] += 1
                    if key is not None:
                        self.entities.setdefault(kind, set()).add(key)
                if last is not None and ts < last:
                    ordered = False
                last = ts if last is None else max(last, ts)
                lo = ts if lo is None else min(lo, ts)
                hi = ts if hi is None else max(hi, ts)
            self._in_order.append(ordered)
        if lo is None or hi is None:
            msg = f"events: no record with a readable ts in {', '.join(map(str, self.paths))}"
            raise InputError(msg)
        self.start_ms = lo
        self.end_ms = hi + 1  # exclusive, like a simulation's end
        self.sorted_in_memory = not all(self._in_order)

    @property
    def registry(self) -> Registry:
        return self._registry

    def records(self) -> Iterator[bytes]:
        """Every line of every file, merged in event-time order (see the module doc)."""
        if len(self.paths) == 1 and self._in_order[0]:
            yield from read_lines(self.paths[0])
            return
        streams = [self._keyed(p, i) for i, p in enumerate(self.paths)]
        if self.sorted_in_memory:
            everything = [x for s in streams for x in s]
            everything.sort(key=lambda x: (x[0], x[1], x[2]))
            for x in everything:
                yield x[3]
            return
        for _, _, _, line in heapq.merge(*streams):
            yield line

    def _keyed(self, path: Path, index: int) -> Iterator[tuple[int, int, int, bytes]]:
        last = 0
        for seq, line in enumerate(read_lines(path)):
            ts = _ts_and_entity(line)[0]
            last = ts if ts is not None else last
            yield last, index, seq, line

    def events(self) -> Iterator[Event]:
        """The records that decode, as typed events (no region or time checks)."""
        dec: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
        for line in self.records():
            try:
                yield dec.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue

    def entity_days(self) -> dict[str, float]:
        """Entity-days of each rule's population: registered or seen entities x the span."""
        reg = self.registry
        stations = set(reg.stations) | self.entities.get("air", set())
        districts = {d.name for d in reg.districts} | {
            s.district for s in reg.stations.values() if s.district
        }
        return population_days(
            days=(self.end_ms - self.start_ms) / 86_400_000,
            stations=len(stations),
            districts=len(districts),
            vehicles=len(set(reg.vehicles) | self.entities.get("gps", set())),
            sites=len(reg.sites),
            tickets=len(self.entities.get("hotline", set())),
        )


def real_data_dir(override: str | Path | None = None) -> Path | None:
    """Where the real public datasets are: ``override``, else ``$CITYWATCH_DATA``, else a
    ``shared/data`` folder beside the repository or beside its parent (a git worktree);
    None when there is none. The data is never copied into the repository."""
    import os

    if override:
        return Path(override)
    if os.environ.get("CITYWATCH_DATA"):
        return Path(os.environ["CITYWATCH_DATA"])
    root = Path(__file__).resolve().parents[1]
    for base in (root.parent, root.parent.parent):
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return None
