"""Nothing lost on the input path, on real recordings: quiet stretches and entity order.

    .venv/bin/python benchmarks/ingest_real.py [--data DIR]

Real public air data (``$CITYWATCH_DATA`` or ``--data``, default ``shared/data`` beside the
repository; never copied into it), written as citywatch records the way exports come:

- **gaps**: one file per station of the five-cities set (12 stations, hourly 2013-2015),
  hours without a PM2.5 reading left out, as a station's own log has them. 11 of the 12
  have silences longer than a day (up to 112 days). Each file goes through a source
  partition as the flow reads it (decode, the horizon, the lateness gate);
  ``gap_lost_ahead`` counts records dead-lettered as ahead of their stream.
- **entity order**: the six Aberdeen sensors (2.5 min, 83 days) in one file, sensor after
  sensor, as a per-device export has them. ``late_file_order`` counts the records lost as
  late reading it as it is; ``late_sorted`` after ``citywatch replay``'s detection and
  external sort (``flows/sources/order.py``, run with small runs to exercise the merge).

Run it against another checkout to compare (``PYTHONPATH=/other/checkout``): the parts
that need what that checkout lacks report null. Last line: JSON with ``gap_records``,
``gap_lost_ahead``, ``aberdeen_records``, ``entity_order_detected``, ``late_file_order``,
``late_sorted``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import os
import sys
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from citywatch.settings import Settings
from flows.city import FlowConfig, Router
from flows.sources import DecodingSource
from flows.sources.files import FileSource

CITIES = ("Shanghai", "Guangzhou", "Chengdu", "Shenyang")
ABERDEEN = (5331, 7789, 8554, 15462, 17079, 22549)


def data_dir(override: str | None) -> Path:
    if override:
        return Path(override)
    if os.environ.get("CITYWATCH_DATA"):
        return Path(os.environ["CITYWATCH_DATA"])
    root = Path(__file__).resolve().parents[1]
    for base in (root.parent, root.parent.parent):
        if (base / "shared" / "data").is_dir():
            return base / "shared" / "data"
    sys.exit("ingest_real: no real data (set CITYWATCH_DATA or --data)")


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def station_files(data: Path, out: Path) -> list[Path]:
    """One JSON Lines file per five-cities station, hours without PM2.5 left out."""
    files = []
    for city in CITIES:
        src = data / "air" / "five-cities" / f"{city}PM20130101_20151231.csv.gz"
        rows = list(csv.DictReader(io.TextIOWrapper(gzip.open(src), encoding="utf-8")))
        for col in (c for c in rows[0] if c.startswith("PM_")):
            station = f"{city}-{col[3:].replace(' ', '')}"
            lines = []
            for r in rows:
                if r[col] == "NA":
                    continue
                local = datetime(
                    int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"]), tzinfo=UTC
                )
                ts = _ms(local - timedelta(hours=8))  # China Standard Time
                rec = {"kind": "air", "ts": ts, "station": station, "pm25": float(r[col])}
                lines.append(orjson.dumps(rec))
            path = out / f"{station}.jsonl"
            path.write_bytes(b"\n".join(lines) + b"\n")
            files.append(path)
    return files


def aberdeen_by_sensor(data: Path, out: Path) -> Path:
    """The six Aberdeen sensors in one file, every reading of one sensor, then the next."""
    lines = []
    for sensor in ABERDEEN:
        src = data / "air" / "sensor-community-aberdeen"
        src = src / f"sds011_sensor_{sensor}_20190303_20190524.csv.gz"
        text = io.TextIOWrapper(gzip.open(src), encoding="utf-8")
        for r in csv.DictReader(text, delimiter=";"):
            ts = _ms(datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC))
            rec = {
                "kind": "air",
                "ts": ts,
                "station": f"ABD-{sensor}",
                "pm25": float(r["P2"]),
                "pm10": float(r["P1"]),
            }
            lines.append(orjson.dumps(rec))
    path = out / "aberdeen-by-sensor.jsonl.gz"
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1))
    return path


def through_partition(path: Path, settings: Settings) -> tuple[int, int, Counter[str]]:
    """Records, valid, and dead letters by reason class, as a source partition reads them."""
    source = DecodingSource(
        FileSource([str(path)]),
        future_tolerance_ms=settings.future_tolerance_ms,
        lateness_ms=int(settings.lateness_s * 1000),
        batch_size=settings.batch_size,
    ).split_by(Router([], FlowConfig()))
    part = source.build_part("in", f"file:{path}", None)
    valid, dead = 0, Counter[str]()
    with contextlib.suppress(StopIteration):
        while True:
            for b in part.next_batch():
                valid += sum(1 for c in b.codes if c != 255)
                for d in b.dead:
                    reason = d.dead.reason
                    dead["ahead" if " ahead of " in reason else reason.split(":", 1)[0]] += 1
    part.close()
    return valid + sum(dead.values()), valid, dead


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", help="the real datasets (default: $CITYWATCH_DATA, shared/data)")
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    settings = Settings.load(env={})
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="citywatch-real-") as tmp:
        out = Path(tmp)
        records = lost = 0
        print("gaps: one file per five-cities station, hours without PM2.5 left out")
        for f in station_files(data, out):
            n, valid, dead = through_partition(f, settings)
            records += n
            lost += dead["ahead"]
            print(f"  {f.stem:28s} {n:6,} records, {valid:6,} valid, dead {dict(dead)}")
        result.update(gap_records=records, gap_lost_ahead=lost)
        print("entity order: the six Aberdeen sensors, one after another")
        f = aberdeen_by_sensor(data, out)
        n, valid, dead = through_partition(f, settings)
        print(f"  as the file is: {n:,} records, {valid:,} valid, dead {dict(dead)}")
        result.update(aberdeen_records=n, late_file_order=dead["late"])
        try:
            from flows.sources.order import scan, sort_by_time
        except ImportError:  # a checkout without it
            result.update(entity_order_detected=None, late_sorted=None)
        else:
            found = scan(str(f), int(settings.lateness_s * 1000))
            done = sort_by_time(str(f), out / "sorted", chunk_bytes=4 << 20)
            n2, valid2, dead2 = through_partition(Path(done.path), settings)
            print(
                f"  scan: {found}; sorted in {done.runs} runs, {done.seconds:.1f} s: "
                f"{n2:,} records, {valid2:,} valid, dead {dict(dead2)}"
            )
            result.update(entity_order_detected=found.looks_by_entity(), late_sorted=dead2["late"])
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
