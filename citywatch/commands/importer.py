"""``citywatch import``: CSV air-quality files -> time-ordered ``air`` events and a registry.

Examples (the data of ``docs/evaluation.md``)::

    citywatch import Chengdu=ChengduPM20130101_20151231.csv.gz --stations stations.csv \\
        --out var/real/chengdu
    citywatch import sds011_sensor_*.csv.gz --tz UTC --kind lowcost --out var/real/aberdeen

FILE is a CSV file (gzip or not, any of , ; tab | as separator, a UTF-8 byte-order mark and
CRLF line ends are fine), optionally as ``LABEL=FILE``: the label becomes the district of the
file's stations and the prefix of their ids (``Chengdu/Shahepu``). The layouts, column
detection and value rules are in ``simulators/importer.py`` and ``docs/evaluation.md``.
Writes ``--out``/events.jsonl.gz (sorted by time) and ``--out``/registry.jsonl (or the paths
of ``--events`` and ``--registry``) and prints one summary line; bad rows are counted and the
first few shown, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def _sentinels(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        msg = f"--sentinel: {text!r} is not a comma-separated list of numbers"
        raise argparse.ArgumentTypeError(msg) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    from citywatch.cli_options import parse_duration

    p.add_argument("files", nargs="+", metavar="[LABEL=]FILE", help="CSV files (gzip or not)")
    p.add_argument("--out", type=Path, help="directory for events.jsonl.gz and registry.jsonl")
    p.add_argument("--events", type=Path, help="events file (default OUT/events.jsonl.gz)")
    p.add_argument("--registry", type=Path, help="registry file (default OUT/registry.jsonl)")
    p.add_argument("--layout", choices=("auto", "long", "wide"), default="auto")
    p.add_argument(
        "--tz", default="+08:00", help="zone of times without an offset (default +08:00)"
    )
    p.add_argument("--time", help="time column, or year,month,day,hour[,minute] columns")
    p.add_argument("--time-format", help="strptime format of the time column (default ISO/epoch)")
    p.add_argument("--station", metavar="COLUMN", help="station id column (long layout)")
    p.add_argument(
        "--map",
        metavar="COL=CH,...",
        help="columns to channels: P2=pm25,P1=pm10 or PM_{station}=pm25",
    )
    p.add_argument("--stations", metavar="FILE", help="coordinates: CSV id,lat,lon or JSON")
    p.add_argument(
        "--sentinel",
        type=_sentinels,
        default=None,
        help="values meaning missing (default -9999,-999; '' for none)",
    )
    p.add_argument("--kind", choices=("national", "micro", "lowcost"), help="stations' kind")
    p.add_argument("--interval", type=parse_duration, help="declared reporting interval")
    p.add_argument(
        "--period-end",
        action="store_true",
        help="times label the end of each value's period (national hourly data: 14:00 is the "
        "13:00-14:00 mean; hour 24 allowed): ts becomes the period start, --interval (default "
        "1h) earlier",
    )
    p.add_argument("--encoding", default="utf-8-sig", help="file encoding (default UTF-8)")


def _sources(items: list[str]) -> list[tuple[str | None, Path]]:
    """``[LABEL=]FILE`` arguments; a FILE with ``*``/``?`` the shell left alone (as after
    ``LABEL=``) is expanded here, in sorted order."""
    import glob

    out: list[tuple[str | None, Path]] = []
    for item in items:
        label: str | None = None
        name, sep, rest = item.partition("=")
        if sep and name and "/" not in name and not Path(item).exists():
            label, item = name.strip(), rest
        matches = sorted(glob.glob(item)) if any(c in item for c in "*?[") else []
        out += [(label, Path(m)) for m in matches] or [(label, Path(item))]
    return out


def run(args: argparse.Namespace) -> int:
    from citywatch.errors import InputError
    from simulators.importer import (
        DEFAULT_SENTINELS,
        ImportSpec,
        import_files,
        parse_map,
        parse_tz,
        read_stations,
        write_outputs,
    )

    if args.out is None and (args.events is None or args.registry is None):
        msg = "give --out DIR (or both --events and --registry)"
        raise InputError(msg)
    events = args.events or args.out / "events.jsonl.gz"
    registry = args.registry or args.out / "registry.jsonl"
    spec = ImportSpec(
        layout=args.layout,
        tz=parse_tz(args.tz),
        time=tuple(t.strip() for t in args.time.split(",")) if args.time else None,
        time_format=args.time_format,
        station=args.station,
        mapping=parse_map(args.map) if args.map else None,
        sentinels=DEFAULT_SENTINELS if args.sentinel is None else args.sentinel,
        kind=args.kind,
        interval_s=float(args.interval) if args.interval else None,
        period_end=args.period_end,
        encoding=args.encoding,
        stations=read_stations(args.stations) if args.stations else {},
    )
    imported = import_files(_sources(args.files), spec)
    for note in imported.stats.notes:
        print(f"import: {note}", file=sys.stderr)
    for example in imported.stats.examples:
        print(f"import: bad row: {example}", file=sys.stderr)
    write_outputs(imported, events, registry)
    print(imported.summary(events, registry))
    return 0
