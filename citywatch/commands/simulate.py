"""``citywatch simulate``: generate a seeded city scenario with its ground truth.

Examples::

    citywatch simulate --list
    citywatch simulate --scenario demo --seed 7 --out var/sim/demo
    citywatch simulate --scenario city-day --profile nantong --scale 0.05 \\
        --partitions 4 --gzip --out var/sim/day
    citywatch simulate --scenario demo --redis redis://127.0.0.1:6379/0 --pace 10x
    citywatch simulate --scenario hotline --stdout --duration 2h | head

The truth (labels.jsonl, workshops.jsonl, negatives.jsonl, registry/, manifest.json) always
goes to ``--out`` (default ``var/sim/<scenario>-<seed>``); records go to partition files
there unless ``--redis`` or ``--stdout`` is given without ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from citywatch.cli_options import parse_duration

__all__ = ["add_arguments", "parse_duration", "parse_knobs", "run"]


def parse_knobs(items: list[str]) -> dict[str, Any]:
    """``["knob=value", ...]`` -> typed overrides of :class:`simulators.Scenario` fields."""
    import dataclasses

    from simulators import Scenario

    types = {f.name: str(f.type) for f in dataclasses.fields(Scenario)}
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in types or name in {"name", "description"}:
            msg = f"--set {item!r}: expected KNOB=VALUE with a knob of {sorted(types)}"
            raise ValueError(msg)
        kind = types[name]
        try:
            if kind == "int":
                out[name] = int(raw)
            elif kind == "float":
                out[name] = float(raw)
            elif kind.startswith("tuple"):
                out[name] = tuple(x.strip() for x in raw.split(",") if x.strip())
            else:
                out[name] = raw
        except ValueError as exc:
            msg = f"--set {item!r}: {name} expects {kind}"
            raise ValueError(msg) from exc
    return out


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 0.5:
        msg = f"dirty: {text!r} is not a fraction in [0, 0.5)"
        raise argparse.ArgumentTypeError(msg)
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"{text!r} is not a positive integer"
        raise argparse.ArgumentTypeError(msg)
    return value


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0.0 < value <= 10.0:
        msg = f"scale: {text!r} is not in (0, 10]"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--scenario", default="demo", help="scenario name (default: demo)")
    parser.add_argument("--seed", type=int, default=0, help="picks the instance (default 0)")
    parser.add_argument("--scale", type=_scale, help="entity counts x SCALE (scenario default)")
    parser.add_argument("--profile", help="city profile (nantong: Nantong-scale counts and rates)")
    parser.add_argument("--start", help="start: ISO time (Nantong local if no offset) or epoch ms")
    parser.add_argument("--duration", type=parse_duration, help="e.g. 3600, 30m, 2h, 1d")
    parser.add_argument("--out", type=Path, help="directory for truth and partition files")
    parser.add_argument(
        "--partitions",
        type=_positive_int,
        default=1,
        help="files/streams, split by the partitioning rule",
    )
    parser.add_argument("--gzip", action="store_true", help="gzip the partition files")
    parser.add_argument(
        "--redis",
        nargs="?",
        const="",
        metavar="URL",
        help="XADD records to cw:in:{kind}[:{partition}] (URL or REDIS_URL/settings)",
    )
    parser.add_argument("--prefix", default=None, help="Redis key prefix (settings default cw:)")
    parser.add_argument(
        "--maxlen",
        type=int,
        default=2_000_000,
        help="approximate MAXLEN of each input stream (0: no trimming; default 2,000,000)",
    )
    parser.add_argument("--stdout", action="store_true", help="write records to stdout")
    parser.add_argument("--pace", default="max", help="max, realtime or Nx (e.g. 10x)")
    parser.add_argument("--dirty", type=_fraction, help="fraction of malformed records to mix in")
    parser.add_argument(
        "--anomaly-scale", type=float, help="multiply every anomaly count (more labels)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="override any scenario knob, e.g. --set duplicate_clusters=40 --set kinds=air,gps",
    )


def _list() -> int:
    from simulators import SCENARIOS

    for sc in SCENARIOS.values():
        print(f"{sc.name:14s} {sc.description}")
        knobs = ", ".join(f"{k}={v}" for k, v in sc.knobs().items() if k != "kinds")
        kinds = ",".join(sc.kinds)
        print(f"{'':14s} kinds={kinds}; duration={sc.duration_s}s scale={sc.scale}; {knobs}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list:
        return _list()
    from simulators import SCENARIOS, simulate
    from simulators.clock import parse_start
    from simulators.output import FileSink, RedisSink, Sink, StdoutSink, write_truth
    from simulators.replay import paced, parse_pace

    if args.scenario not in SCENARIOS:
        print(f"simulate: unknown scenario {args.scenario!r}; try --list", file=sys.stderr)
        return 2
    try:
        speed = parse_pace(args.pace)
        start_ms = parse_start(args.start) if args.start else None
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    try:
        overrides = parse_knobs(args.set)
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    if args.profile:
        overrides["profile"] = args.profile
    if args.anomaly_scale is not None:
        overrides["anomaly_scale"] = args.anomaly_scale
    try:
        sim = simulate(
            args.scenario,
            seed=args.seed,
            scale=args.scale,
            start_ms=start_ms,
            duration_s=args.duration,
            dirty=args.dirty,
            **overrides,
        )
    except (ValueError, KeyError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    out_dir: Path = args.out or Path("var/sim") / f"{args.scenario}-{args.seed}"
    manifest = write_truth(sim, out_dir)
    client = None
    redis_sink: Sink | None = None
    if args.redis is not None:
        from citywatch.redisconn import wait_for
        from citywatch.settings import Settings

        settings = Settings.load()
        url = args.redis or settings.redis_url
        if not url:
            print("simulate: --redis needs a URL (or REDIS_URL)", file=sys.stderr)
            return 2
        origin = "--redis" if args.redis else "REDIS_URL"
        client = wait_for(url, retries=settings.redis_retries, origin=origin, socket_timeout=None)
        prefix = args.prefix if args.prefix is not None else settings.prefix
        redis_sink = RedisSink(
            client, prefix=prefix, partitions=args.partitions, maxlen=args.maxlen or None
        )
    sinks: list[Sink] = []
    to_files = args.out is not None or (args.redis is None and not args.stdout)
    if to_files:
        sinks.append(FileSink(out_dir, args.partitions, compress=args.gzip))
    if args.stdout:
        sinks.append(StdoutSink())
    if redis_sink is not None:
        sinks.append(redis_sink)
    t0 = time.perf_counter()
    n = 0
    try:
        for batch in paced(sim.batches(), speed):
            for s in sinks:
                s.write(batch)
            n += len(batch)
    except BrokenPipeError:  # `| head`: the reader is gone, stop quietly
        sys.stderr.close()
        return 0
    finally:
        for s in sinks:
            s.close()
        if client is not None:
            client.close()
    dt = time.perf_counter() - t0
    print(
        f"simulate: {args.scenario} seed={args.seed}: {n} records in {dt:.1f} s "
        f"({n / max(dt, 1e-9):,.0f}/s), {sum(manifest['labels'].values())} labels -> {out_dir}",
        file=sys.stderr,
    )
    return 0
