"""Decode + validate cost per input kind: microseconds per record.

    python benchmarks/decode.py [--records 20000] [--repeats 5] [--seed 1]

Each kind gets a pool of varied, realistic records (built here, seeded) decoded by one
``EventDecoder`` as the dataflow does; the figure is the best of ``--repeats`` passes (the
machine is shared and noisy; the minimum is the least disturbed). Last line: JSON with
``air_us``, ``gps_us``, ``video_us``, ``power_us``, ``hotline_us``, ``order_us``.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

import orjson

from citywatch.events import DeadLetter, EventDecoder

T0 = 1_767_225_600_000
TEXTS = [
    "小区门口工地夜间施工噪音很大，影响居民休息，请尽快处理。",
    "河边有刺鼻的化工异味，已经持续两个小时，怀疑有企业偷排。",
    "道路上有大量扬尘，渣土车没有覆盖，请相关部门查处。",
]


def _air(r: random.Random, i: int) -> dict[str, object]:
    return {
        "kind": "air",
        "ts": T0 + i * 60_000,
        "station": f"ST{r.randrange(2000):05d}",
        "pm25": round(r.uniform(5, 150), 1),
        "pm10": round(r.uniform(10, 250), 1),
        "no2": round(r.uniform(5, 80), 1),
        "so2": float(r.randrange(3, 20)),
        "o3": float(r.randrange(10, 200)),
        "co": round(r.uniform(0.2, 1.5), 1),
        "temp_c": round(r.uniform(-5, 35), 1),
        "rh": round(r.uniform(20, 100), 1),
        "wind_ms": round(r.uniform(0, 8), 1),
        "wind_deg": float(r.randrange(360)),
    }


def _gps(r: random.Random, i: int) -> dict[str, object]:
    return {
        "kind": "gps",
        "ts": T0 + i * 10_000,
        "vehicle": f"V{r.randrange(5000):05d}",
        "lat": round(r.uniform(31.7, 32.6), 6),
        "lon": round(r.uniform(120.3, 121.8), 6),
        "speed_kmh": round(r.uniform(0, 80), 1),
        "heading": float(r.randrange(360)),
        "un": "1203",
        "plate": f"苏F{r.randrange(100000):05d}",
    }


def _video(r: random.Random, i: int) -> dict[str, object]:
    site = f"W{r.randrange(10000):05d}" if r.random() < 0.1 else None
    return {
        "kind": "video",
        "ts": T0 + i * 60_000,
        "camera": f"C{r.randrange(180000):06d}",
        "site": site,
        "window_s": 60,
        "persons": r.randrange(30),
        "vehicles": r.randrange(20),
        "machinery": r.randrange(3),
    }


def _power(r: random.Random, i: int) -> dict[str, object]:
    return {
        "kind": "power",
        "ts": T0 + i * 60_000,
        "meter": f"M{r.randrange(65000):05d}",
        "site": f"W{r.randrange(10000):05d}",
        "kw": round(r.uniform(2, 400), 2),
    }


def _hotline(r: random.Random, i: int) -> dict[str, object]:
    return {
        "kind": "hotline",
        "ts": T0 + i * 7_000,
        "ticket": f"T{i:08d}",
        "text": r.choice(TEXTS),
        "category": "环境保护",
        "lat": round(r.uniform(31.7, 32.6), 5),
        "lon": round(r.uniform(120.3, 121.8), 5),
        "grid": "G0034-0059",
        "caller": f"{r.getrandbits(64):016x}",
    }


def _order(r: random.Random, i: int) -> dict[str, object]:
    action = r.choice(["suspend", "lift"])
    return {
        "kind": "order",
        "ts": T0 + i * 1000,
        "site": f"W{r.randrange(10000):05d}",
        "action": action,
        "until": T0 + i * 1000 + 86_400_000 if action == "suspend" else None,
        "reason": "重污染天气应急",
    }


MAKERS: dict[str, Callable[[random.Random, int], dict[str, object]]] = {
    "air": _air,
    "gps": _gps,
    "video": _video,
    "power": _power,
    "hotline": _hotline,
    "order": _order,
}


def measure(kind: str, records: int, repeats: int, seed: int) -> float:
    r = random.Random(f"{seed}:{kind}")
    pool = [orjson.dumps(MAKERS[kind](r, i)) for i in range(records)]
    best = float("inf")
    for _ in range(repeats):
        dec = EventDecoder()
        decode = dec.decode
        t0 = time.perf_counter()
        for raw in pool:
            decode(raw, "bench")
        best = min(best, time.perf_counter() - t0)
        bad = [out for out in map(EventDecoder().decode, pool) if isinstance(out, DeadLetter)]
        if bad:
            sys.exit(f"{kind}: {len(bad)} records dead-lettered, e.g. {bad[0].reason}")
    return best / records * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=20_000, help="records per kind (default 20000)")
    ap.add_argument("--repeats", type=int, default=5, help="passes per kind; the best counts")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    result: dict[str, float] = {}
    print(f"decode + validate, {args.records} records per kind, best of {args.repeats}")
    for kind in MAKERS:
        us = measure(kind, args.records, args.repeats, args.seed)
        result[f"{kind}_us"] = round(us, 3)
        print(f"  {kind:8s} {us:6.3f} µs/record   target <= 2")
    print(orjson.dumps(result).decode())
    return 0 if all(v <= 2.0 for v in result.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
