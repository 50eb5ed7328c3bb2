"""The source partition's loop alone: decode, event-time checks and routing, records per second.

    .venv/bin/python benchmarks/split.py [--scale 0.4] [--seconds 120] [--repeats 5] [--seed 1]

The records are the benchmark city's (``citywatch bench``'s Nantong mix, time-ordered, one
partition, held in memory), routed by the real flow's router over every registered model's
``route``; the loop runs as the dataflow runs it (a ``DecodingSource`` partition,
``batch_size`` records a read), without bytewax around it. The figure is CPU time of this
process (``time.process_time``: on a shared machine the time other processes take is not
counted), the best of ``--repeats`` passes. Compare two versions in one run,
alternately: this file against another checkout's modules
(``PYTHONPATH=/other/checkout python benchmarks/split.py``), old and new in turn.
Last line: JSON with ``records``, ``records_per_s`` and ``us_per_record``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator

import orjson

from citywatch.commands.bench import busy_city
from citywatch.settings import Settings
from flows.city import FlowConfig, Router
from flows.registry import build_models
from flows.sources import DecodingSource, RawReader, RawSource


class _InMemory(RawSource):
    """The records, cut once into reads of ``batch`` (reading costs nothing to measure)."""

    def __init__(self, records: list[bytes], batch: int) -> None:
        self.reads = [records[i : i + batch] for i in range(0, len(records), batch)]

    def list_parts(self) -> list[str]:
        return ["bench"]

    def open(self, part: str, position: object) -> RawReader:
        return _Reads(iter(self.reads))


class _Reads(RawReader):
    def __init__(self, reads: Iterator[list[bytes]]) -> None:
        self.reads = reads

    def read(self, max_n: int) -> list[bytes]:
        return next(self.reads)  # StopIteration at the end, as a reader ends

    def position(self) -> None:
        return None


def one_pass(source: DecodingSource) -> tuple[float, int]:
    part = source.build_part("in", "bench", None)
    events = 0
    t0 = time.process_time()
    with contextlib.suppress(StopIteration):
        while True:
            for batch in part.next_batch():
                events += len(batch.codes)
    return time.process_time() - t0, events


def records_of(scale: float, seconds: int, seed: int) -> Iterator[bytes]:
    sim = busy_city(scale, seconds, seed)
    yield from sim.records()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--scale", type=float, default=0.4, help="city scale (default 0.4)")
    ap.add_argument("--seconds", type=int, default=120, help="simulated seconds (default 120)")
    ap.add_argument("--repeats", type=int, default=5, help="passes; the best counts")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    settings = Settings.load(env={})
    sim = busy_city(args.scale, args.seconds, args.seed)
    records = list(sim.records())
    models = build_models(sim.registry, settings)
    router = Router(models, FlowConfig())
    source = DecodingSource(
        _InMemory(records, settings.batch_size),
        region=settings.region_box,
        future_tolerance_ms=settings.future_tolerance_ms,
        lateness_ms=int(settings.lateness_s * 1000),
        batch_size=settings.batch_size,
    ).split_by(router)
    best = float("inf")
    for _ in range(args.repeats):
        dt, n = one_pass(source)
        if n < len(records):
            sys.exit(f"split: {n} records accounted of {len(records)}")
        best = min(best, dt)
    per_s = len(records) / best
    print(
        f"source partition loop: {len(records):,} records, best of {args.repeats}: {per_s:,.0f}/s"
    )
    out = {
        "records": len(records),
        "records_per_s": round(per_s),
        "us_per_record": round(best / len(records) * 1e6, 3),
    }
    print(orjson.dumps(out).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
