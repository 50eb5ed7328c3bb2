"""``citywatch run``: the city dataflow, sources -> models -> alert engine -> Redis.

By default it runs the real thing: the simulator's ``demo`` scenario at live pace into
``REDIS_URL`` (or a private embedded Redis), so alerts appear within a minute.
"""

from __future__ import annotations

import argparse

from citywatch.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--source",
        choices=("sim", "files", "redis", "mqtt"),
        default="sim",
        help="where records come from (default: the simulator)",
    )
    p.add_argument("--scenario", default="demo", help="simulator scenario (default: demo)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed")
    p.add_argument("--scale", type=float, help="simulator scale (default: the scenario's)")
    p.add_argument(
        "--dirty",
        type=float,
        metavar="FRACTION",
        help="simulator: mix in this fraction of malformed records",
    )
    p.add_argument(
        "--speed", default="1x", help="simulator pace: 1x (live), 10x, ... or max (default: 1x)"
    )
    p.add_argument(
        "--preroll",
        type=float,
        default=0.0,
        metavar="S",
        help="live simulator: start S seconds in the past and replay them at once (default 0)",
    )
    p.add_argument(
        "--files",
        nargs="+",
        default=[],
        metavar="PATH",
        help="JSONL(.gz) files, directories or globs for --source files",
    )
    p.add_argument(
        "--registry",
        metavar="PATH",
        help="reference data, directory or file (default: <data_dir>/registry)",
    )
    p.add_argument(
        "--kinds",
        nargs="+",
        default=[],
        metavar="KIND",
        help="--source redis: read only these cw:in:{kind} streams",
    )
    p.add_argument(
        "--idle-stop",
        type=float,
        metavar="S",
        help="redis/mqtt: stop after S seconds without input (default: never)",
    )
    p.add_argument(
        "--domain",
        choices=("air", "vehicles", "worksites", "hotline", "water"),
        help="run only this domain's models (a per-domain flow)",
    )
    p.add_argument(
        "--processes", type=int, default=1, help="bytewax processes on this host (default: 1)"
    )
    p.add_argument("--partitions", type=int, help="simulator partitions (default: one per process)")
    p.add_argument(
        "--recovery", metavar="DIR", help="snapshot state here and resume from it after a crash"
    )
    p.add_argument(
        "--first-port", type=int, default=0, help="cluster ports start here (default: free ports)"
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus /metrics here (default: settings metrics_port)",
    )


def run(args: argparse.Namespace) -> int:
    from flows.run import RunOptions, run_city
    from flows.sources.iterable import parse_speed

    settings = Settings.load(args.config)
    if args.metrics_port is not None:
        settings = settings.with_(metrics_port=args.metrics_port)
    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        from citywatch.errors import ConfigError

        raise ConfigError(str(exc)) from exc
    opts = RunOptions(
        source=args.source,
        scenario=args.scenario,
        seed=args.seed,
        scale=args.scale,
        dirty=args.dirty,
        speed=speed,
        preroll_s=args.preroll,
        paths=tuple(args.files),
        registry_dir=args.registry,
        kinds=tuple(args.kinds),
        idle_stop_s=args.idle_stop,
        domain=args.domain,
        processes=args.processes,
        partitions=args.partitions,
        recovery_dir=args.recovery,
        first_port=args.first_port,
    )
    return run_city(settings, opts)
