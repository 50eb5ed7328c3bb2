"""Where a run goes: JSONL partition files (optionally gzip), Redis Streams, stdout; and the
ground truth next to it (labels, workshops, hard negatives, registry, manifest).

Partitioning follows ``citywatch.partitioning``: a record goes to ``crc32(partition key) % N``
(air by its station's district, a site's cameras, meters and orders by site, every ticket
together, vehicles by vehicle), so every model key's records stay in order in one file. Each
file is a subsequence of the single merged stream, so merging the N files by time gives the
same bytes whatever N is.
"""

from __future__ import annotations

import gzip
import operator
import sys
from collections import Counter
from pathlib import Path
from typing import IO, Any, BinaryIO, Protocol

import numpy as np
import orjson

from citywatch.events import KINDS
from citywatch.keys import Keys
from simulators.labels import encode_labels
from simulators.simulation import Batch, Simulation

__all__ = ["FileSink", "RedisSink", "Sink", "StdoutSink", "kind_of", "write_truth"]


_KINDS = frozenset(k.encode() for k in KINDS)


class Sink(Protocol):
    def write(self, batch: Batch) -> None: ...

    def close(self) -> None: ...


def kind_of(line: bytes, default: str = "dirty") -> str:
    """The ``kind`` of a generated record from its first bytes (all start with it); records
    whose kind is unreadable or unknown (dirty ones) get ``default``."""
    if line.startswith(b'{"kind":"'):
        end = line.find(b'"', 9)
        if 9 < end < 30:
            kind = line[9:end]
            if kind in _KINDS:
                return kind.decode()
    return default


class FileSink:
    """``part-000.jsonl`` .. ``part-{N-1}.jsonl``; ``.gz`` with gzip (mtime 0: reproducible)."""

    def __init__(
        self, directory: str | Path, partitions: int = 1, *, compress: bool = False
    ) -> None:
        if partitions < 1:
            msg = f"partitions: {partitions} must be >= 1"
            raise ValueError(msg)
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.partitions = partitions
        self.files: list[BinaryIO] = []
        self._raw: list[BinaryIO] = []
        self.paths: list[Path] = []
        for p in range(partitions):
            path = self.dir / f"part-{p:03d}.jsonl{'.gz' if compress else ''}"
            raw = path.open("wb")
            self._raw.append(raw)
            if compress:
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=3)
                self.files.append(gz)  # type: ignore[arg-type]
            else:
                self.files.append(raw)
            self.paths.append(path)
        self.records = 0

    def write(self, batch: Batch) -> None:
        self.records += len(batch.lines)
        if self.partitions == 1:
            self.files[0].write(b"\n".join(batch.lines) + b"\n")
            return
        parts = np.array(batch.keys, dtype=np.int64) % self.partitions
        order = np.argsort(parts, kind="stable")  # stable: each partition keeps time order
        ends = np.searchsorted(parts[order], np.arange(1, self.partitions + 1)).tolist()
        ordered = (
            operator.itemgetter(*order.tolist())(batch.lines) if len(order) > 1 else batch.lines
        )
        start = 0
        for p, end in enumerate(ends):
            if end > start:
                self.files[p].write(b"\n".join(ordered[start:end]) + b"\n")
            start = end

    def close(self) -> None:
        for f, raw in zip(self.files, self._raw, strict=True):
            f.close()
            raw.close()


class StdoutSink:
    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self.out = stream if stream is not None else sys.stdout.buffer
        self.records = 0

    def write(self, batch: Batch) -> None:
        self.records += len(batch.lines)
        self.out.write(b"\n".join(batch.lines) + b"\n")

    def close(self) -> None:
        self.out.flush()


class RedisSink:
    """XADD every record to ``{prefix}in:{kind}`` (``:{partition}`` if N > 1), field ``r``,
    one pipeline per ``pipeline`` records. Malformed (dirty) records whose kind cannot be
    read go to the stream of the record before them."""

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "cw:",
        partitions: int = 1,
        maxlen: int | None = 2_000_000,
        pipeline: int = 5000,
    ) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self.partitions = partitions
        self.maxlen = maxlen
        self.pipeline_size = pipeline
        self.records = 0
        self.by_stream: Counter[str] = Counter()

    def write(self, batch: Batch) -> None:
        pipe = self.client.pipeline(transaction=False)
        pending = 0
        last = "dirty"
        for key, line in zip(batch.keys, batch.lines, strict=True):
            kind = kind_of(line, last)
            last = kind
            part = key % self.partitions if self.partitions > 1 else None
            name = self.keys.inbound(kind, part)
            if self.maxlen:
                pipe.xadd(name, {"r": line}, maxlen=self.maxlen, approximate=True)
            else:
                pipe.xadd(name, {"r": line})
            self.by_stream[name] += 1
            pending += 1
            if pending >= self.pipeline_size:
                pipe.execute()
                pending = 0
        if pending:
            pipe.execute()
        self.records += len(batch.lines)

    def close(self) -> None:
        return None


def write_truth(sim: Simulation, directory: str | Path) -> dict[str, Any]:
    """Write labels.jsonl, workshops.jsonl, negatives.jsonl, registry/ and manifest.json."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "labels.jsonl").write_bytes(encode_labels(sim.labels))
    (d / "workshops.jsonl").write_bytes(encode_labels(sim.workshops))
    (d / "negatives.jsonl").write_bytes(
        b"".join(orjson.dumps(n, option=orjson.OPT_SORT_KEYS) + b"\n" for n in sim.negatives)
    )
    sim.registry.dump(d / "registry")
    sc = sim.scenario
    manifest = {
        "scenario": sc.name,
        "seed": sim.seed,
        "profile": sc.profile,
        "scale": sc.scale,
        "start_ms": sim.start_ms,
        "end_ms": sim.end_ms,
        "knobs": sc.knobs(),
        "labels": dict(sorted(Counter(lab.rule for lab in sim.labels).items())),
        "entities": {
            "stations": len(sim.registry.stations),
            "vehicles": len(sim.registry.vehicles),
            "sites": len(sim.registry.sites),
            "cameras": len(sim.city.camera_ids),
            "meters": len(sim.city.meter_ids),
            "places": len(sim.registry.places),
            "zones": len(sim.registry.zones),
            "workshops": len(sim.workshops),
        },
    }
    (d / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return manifest
