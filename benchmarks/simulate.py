"""Generation speed of the simulator for the Nantong mix, written to partition files.

Plans a ``city-day`` run at ``--scale`` of the ``nantong`` profile (video 65 %, power 23 %,
gps 11 %, air 0.7 % of records), then times generating ``--seconds`` of event time and
writing it to ``--partitions`` JSONL files in a temporary directory, on one core. Planning
(city, itineraries, labels) is timed separately and not counted.

    .venv/bin/python benchmarks/simulate.py --seconds 600 --scale 0.05 --partitions 4

Last line: ``{"records_per_s": ...}``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections import Counter

from simulators import simulate
from simulators.output import FileSink, kind_of


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=600, help="event time to generate")
    ap.add_argument("--scale", type=float, default=0.05, help="share of the Nantong entities")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--start", type=int, default=8 * 3600, help="offset into the day, s")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    args = ap.parse_args()

    t0 = time.perf_counter()
    from simulators.clock import DEFAULT_START_MS

    sim = simulate(
        "city-day",
        seed=args.seed,
        scale=args.scale,
        start_ms=DEFAULT_START_MS + args.start * 1000,
        duration_s=args.seconds,
    )
    plan_s = time.perf_counter() - t0
    kinds: Counter[str] = Counter()
    prof = cProfile.Profile() if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        sink = FileSink(tmp, args.partitions, compress=args.gzip)
        t1 = time.perf_counter()
        if prof:
            prof.enable()
        n = 0
        for batch in sim.batches():
            sink.write(batch)
            n += len(batch)
            if n < 2_000_000:
                kinds.update(kind_of(line) for line in batch.lines[:: max(1, len(batch) // 200)])
        sink.close()
        if prof:
            prof.disable()
        gen_s = time.perf_counter() - t1
    if prof:
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    total = sum(kinds.values()) or 1
    mix = {k: round(v / total, 3) for k, v in sorted(kinds.items())}
    print(
        f"planning {plan_s:.2f} s; generated {n} records of {args.seconds} s event time "
        f"in {gen_s:.2f} s; sampled mix {mix}; realtime factor {args.seconds / gen_s:.1f}x"
    )
    print(json.dumps({"records_per_s": round(n / gen_s)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
