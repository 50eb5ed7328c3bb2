"""Replay years of hourly air data through the real city flow in one process: records/s.

    python benchmarks/replay_hourly.py [--years 1] [--stations 12] [--seeds 1]
        [--source auto|five-cities|simulated] [--data DIR] [--partitions 4]

National monitoring stations publish one hourly average per pollutant; a year of a dozen
of them is ~105,000 records spread over 8,760 hours of event time. What this measures is
whether the flow's cost follows the records or the event time they span (a clock that
walked every minute of the year cost ~60 steps per stage per record).

The input, generated once per parameter set and cached under ``var/replay-hourly/``:

* ``five-cities`` (the default when the data is there): the four cities' hourly PM2.5 of
  2013-2015 (12 station series, local time UTC+8; temperature and humidity of the city
  beside each), the first ``--years`` years, one record per station-hour (``pm25`` null
  where the data has NA). The data folder is ``--data``, else ``$CITYWATCH_DATA``, else the
  first ``shared/data`` folder beside the repository or one of its parents.
* ``simulated``: the simulator's air generator (``simulators.air.AirStream``), the hourly mean
  of each station's minute values, from 2026-01-01 (local) for ``--years`` years.

Either way the stations are the first ``--stations`` of a simulated Nantong (seed = the
run's seed), so the flow's registry, districts and neighbour logic are real; the
five-cities series are mapped onto them in order (so ``--stations`` <= 12 there). The
records go into ``--partitions`` part files by the partitioning rule (air by district).

Then ``citywatch``'s real flow (every registered model, alert engine, flood guard,
incident correlator, Redis sink; ``flows.run.build_city_flow``) replays the files in this
process on an embedded Redis (or ``REDIS_URL``), timed from building the flow to its end.
Each seed is one run; ``records_per_s`` is all records over all runs' wall time,
``records_per_cpu_s`` over this process's CPU time (steadier on a shared machine).
``--models trivial`` replaces the registered models by one that only counts readings: what the
flow itself costs. Last line: ``{"records": N, "records_per_s": ..., "event_days": ...}``
(plus ``records_per_cpu_s`` and the alert versions).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import orjson

from citywatch.alerts import Signal
from citywatch.cli_options import parse_seeds
from citywatch.events import Air, Event, encode
from citywatch.partitioning import partition_key
from citywatch.registry import Registry
from models.base import Model
from simulators.seeds import entity_hash

ROOT = Path(__file__).resolve().parents[1]
HOUR_MS = 3_600_000
#: 2026-01-01 00:00 Asia/Shanghai.
SIM_START_MS = 1_767_196_800_000
FIVE_CITIES = ("Shanghai", "Guangzhou", "Chengdu", "Shenyang")


def data_dir(given: str | None) -> Path | None:
    """The real-data folder: ``given``, ``$CITYWATCH_DATA``, or a ``shared/data`` folder
    beside the repository or one of its parents (None when there is none)."""
    if given:
        return Path(given)
    env = os.environ.get("CITYWATCH_DATA")
    if env:
        return Path(env)
    for up in ROOT.parents:
        d = up / "shared" / "data"
        if d.is_dir():
            return d
    return None


def five_cities_files(data: Path | None) -> list[Path] | None:
    if data is None:
        return None
    folder = data / "air" / "five-cities"
    files = [next(iter(sorted(folder.glob(f"{c}PM*.csv.gz"))), None) for c in FIVE_CITIES]
    if any(f is None for f in files):
        return None
    return [f for f in files if f is not None]


def _num(x: str) -> float | None:
    try:
        v = float(x)
    except ValueError:
        return None
    return v if math.isfinite(v) and v > -999 else None


def five_cities_series(files: list[Path], years: float) -> list[list[tuple[int, dict[str, Any]]]]:
    """Per real station: [(ts, readings)] for the first ``years`` years of the files."""
    out: list[list[tuple[int, dict[str, Any]]]] = []
    for f in files:
        with gzip.open(f, "rt", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        cols = [c for c in rows[0] if c.startswith("PM_")]
        first = datetime(int(rows[0]["year"]), 1, 1, tzinfo=UTC)
        stop = first + timedelta(days=round(365.25 * years))
        series: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in cols]
        for r in rows:
            # Local time (UTC+8), written as UTC and shifted back 8 h.
            local = datetime(
                int(r["year"]), int(r["month"]), int(r["day"]), int(r["hour"]), tzinfo=UTC
            )
            if local >= stop:
                break
            ts = int((local - timedelta(hours=8)).timestamp() * 1000)
            weather = {"temp_c": _num(r["TEMP"]), "rh": _num(r["HUMI"])}
            if weather["rh"] is not None and not 0 <= weather["rh"] <= 100:
                weather["rh"] = None
            for i, c in enumerate(cols):
                pm = _num(r[c])
                series[i].append((ts, {"pm25": None if pm is None else round(pm), **weather}))
        out.extend(series)
    return out


def simulated_series(
    city: Any, seed: int, n: int, years: float
) -> list[list[tuple[int, dict[str, Any]]]]:
    """Per station: the hourly means of the simulator's minute values."""
    from simulators.air import CHANNELS, AirStream

    hours = round(365.25 * 24 * years)
    end = SIM_START_MS + hours * HOUR_MS
    stream = AirStream(city, seed, SIM_START_MS, end)
    out: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in range(n)]
    for h in range(hours):
        h0 = SIM_START_MS + h * HOUR_MS
        _, meas = stream.hour(h0)
        with np.errstate(all="ignore"):
            means = {ch: np.nanmean(meas[ch][:n], axis=1) for ch in CHANNELS}
        for s in range(n):
            vals: dict[str, Any] = {}
            for ch, arr in means.items():
                v = float(arr[s])
                vals[ch] = None if not math.isfinite(v) else round(v, 1 if ch == "co" else 0)
            vals["co"] = None if vals["co"] is None else round(vals["co"], 1)
            out[s].append((h0 + HOUR_MS, vals))  # the hour's average, stamped at its end
    return out


def write_files(
    directory: Path,
    registry: Registry,
    ids: list[str],
    series: list[list[tuple[int, dict[str, Any]]]],
    partitions: int,
) -> dict[str, Any]:
    from simulators.output import FileSink
    from simulators.simulation import Batch

    registry.dump(directory / "registry")
    sink = FileSink(directory, partitions)
    keys = [
        entity_hash(partition_key("air", s, district=registry.stations[s].district)) for s in ids
    ]

    def rows() -> Iterator[tuple[int, int, bytes]]:
        for s, sid in enumerate(ids):
            for ts, vals in series[s]:
                yield ts, keys[s], encode(Air(ts=ts, station=sid, **vals))

    merged = sorted(rows(), key=lambda r: r[0])  # stable: station order within an hour
    step = 20_000
    for i in range(0, len(merged), step):
        part = merged[i : i + step]
        sink.write(Batch([r[0] for r in part], [r[1] for r in part], [r[2] for r in part]))
    sink.close()
    first, last = merged[0][0], merged[-1][0]
    return {
        "records": sink.records,
        "parts": [p.name for p in sink.paths],
        "event_days": (last - first) / 86_400_000,
    }


def file_set(args: argparse.Namespace, seed: int) -> tuple[Path, dict[str, Any]]:
    """Generate (or reuse) the hourly file set of ``seed``."""
    from simulators.city import build_city
    from simulators.scenario import PROFILES

    files = None if args.source == "simulated" else five_cities_files(data_dir(args.data))
    if args.source == "five-cities" and files is None:
        msg = "the five-cities data is not there (give --data or set CITYWATCH_DATA)"
        raise SystemExit(f"replay_hourly: error: {msg}")
    source = "five-cities" if files is not None else "simulated"
    n = args.stations
    if source == "five-cities" and n > 12:
        raise SystemExit("replay_hourly: error: --stations: the five-cities data has 12 stations")
    key = f"{source}-y{args.years:g}-n{n}-seed{seed}-p{args.partitions}"
    d = Path(args.cache) / key
    meta = d / "replay.json"
    if meta.exists():
        return d, orjson.loads(meta.read_bytes())
    print(f"replay_hourly: generating {key}", file=sys.stderr, flush=True)
    city = build_city(seed, PROFILES["nantong"], max(n, 12) / PROFILES["nantong"].stations)
    ids = city.station_ids[:n]
    reg = city.registry
    registry = Registry(stations={s: reg.stations[s] for s in ids}, districts=reg.districts)
    if files is not None:
        series = five_cities_series(files, args.years)[:n]
    else:
        series = simulated_series(city, seed, n, args.years)
    tmp = Path(args.cache) / f".{key}.{uuid.uuid4().hex[:6]}"
    info = write_files(tmp, registry, ids, series, args.partitions)
    info["source"] = source
    (tmp / "replay.json").write_bytes(orjson.dumps(info))
    if d.exists():
        shutil.rmtree(d)
    tmp.rename(d)
    return d, info


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    #: CPU seconds of this process (the flow; the embedded Redis is another process).
    cpu_s: float
    records: int
    alerts: int
    #: sha256 of every alert version, ``emitted_ms`` left out (the one wall-clock field).
    digest: str


def alerts_digest(client: Any, key: str) -> str:
    """sha256 over the alert versions in ``key`` (a stream), sorted, without ``emitted_ms``."""
    rows = []
    for _, fields in client.xrange(key):
        d = orjson.loads(fields[b"a"])
        d.pop("emitted_ms", None)
        rows.append(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
    return hashlib.sha256(b"\n".join(sorted(rows))).hexdigest()


class Readings(Model):
    """``--models trivial``: counts each station's readings and says nothing (what the flow
    costs around a model that costs nothing)."""

    name: ClassVar[str] = "bench.readings"
    kinds: ClassVar[frozenset[str]] = frozenset({"air"})

    def route(self, event: Event) -> str | None:
        return event.station if isinstance(event, Air) else None

    def new_state(self, key: str) -> list[int]:
        return [0]

    def update(self, state: list[int], event: Event) -> list[Signal]:
        state[0] += 1
        return []


def replay(directory: Path, info: dict[str, Any], url: str, models: str = "real") -> Run:
    """One in-process flow run over the file set."""
    import redis
    from bytewax.testing import run_main

    from citywatch.settings import Settings
    from flows.run import RunOptions, build_city_flow

    prefix = f"cwhourly:{uuid.uuid4().hex[:8]}:"
    settings = Settings.load().with_(redis_url=url, prefix=prefix)
    opts = RunOptions(
        source="files",
        paths=tuple(str(directory / p) for p in info["parts"]),
        registry_dir=str(directory / "registry"),
        speed=None,
        run_id="hourly",
    )
    regs = None
    if models == "trivial":
        from flows.registry import Registration

        regs = [Registration("air", lambda reg, s: Readings())]
    t0, c0 = time.perf_counter(), time.process_time()
    run_main(build_city_flow(opts, settings, url, registrations=regs))  # type: ignore[no-untyped-call]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    client = redis.Redis.from_url(url)
    keys = settings.keys
    records = int(client.hget(keys.counts, "records") or 0)  # type: ignore[arg-type]
    alerts = int(client.xlen(keys.alerts))  # type: ignore[arg-type]
    digest = alerts_digest(client, keys.alerts)
    stale = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if stale:
        client.delete(*stale)
    client.close()
    return Run(wall, cpu, records, alerts, digest)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--years", type=float, default=1.0, help="years of hourly data (<= 3 real)")
    ap.add_argument("--stations", type=int, default=12)
    ap.add_argument("--seeds", type=parse_seeds, default=[1], help="e.g. 1-3 (one run each)")
    ap.add_argument("--source", choices=("auto", "five-cities", "simulated"), default="auto")
    ap.add_argument("--data", help="the real-data folder (default: $CITYWATCH_DATA, ...)")
    ap.add_argument("--partitions", type=int, default=4, help="part files (source partitions)")
    ap.add_argument("--cache", default=str(ROOT / "var" / "replay-hourly"))
    ap.add_argument(
        "--models",
        choices=("real", "trivial"),
        default="real",
        help="the registered models, or one that only counts readings (the flow's own cost)",
    )
    args = ap.parse_args(argv)
    if args.years <= 0 or args.stations < 1 or args.partitions < 1:
        print("replay_hourly: error: --years, --stations, --partitions must be positive")
        return 2

    from citywatch.redisconn import embedded_or_url
    from citywatch.settings import Settings

    total_s = total_cpu = 0.0
    total = alerts = 0
    days = 0.0
    with embedded_or_url(Settings.load().redis_url) as url:
        for seed in args.seeds:
            d, info = file_set(args, seed)
            run = replay(d, info, url, args.models)
            if run.records != info["records"]:
                print(
                    f"replay_hourly: the flow counted {run.records:,} of {info['records']:,} "
                    "records",
                    file=sys.stderr,
                )
                return 1
            total_s += run.wall_s
            total_cpu += run.cpu_s
            total += run.records
            alerts += run.alerts
            days += info["event_days"]
            print(
                f"replay_hourly: seed {seed} ({info['source']}): {run.records:,} records, "
                f"{info['event_days']:.0f} event days in {run.wall_s:.2f} s = "
                f"{run.records / run.wall_s:,.0f}/s ({run.cpu_s:.2f} CPU s = "
                f"{run.records / run.cpu_s:,.0f}/CPU s), {run.alerts:,} alert versions "
                f"(sha256 {run.digest[:16]})",
                file=sys.stderr,
                flush=True,
            )
    result = {
        "records": total,
        "records_per_s": round(total / total_s),
        "records_per_cpu_s": round(total / total_cpu),
        "event_days": round(days, 1),
        "alert_versions": alerts,
    }
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
