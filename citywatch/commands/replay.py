"""``citywatch replay``: recorded or simulated JSON Lines through the real city flow into Redis.

Examples::

    citywatch simulate --scenario city-day --scale 0.05 --partitions 4 --gzip --out var/sim/day
    citywatch replay var/sim/day                       # max speed, registry from var/sim/day
    citywatch replay 'var/sim/day/*.jsonl.gz' --speed 60x --from 2026-11-02T08:00 --to 09:30

FILES are files, directories (their ``*.jsonl``/``*.jsonl.gz``) or globs; each file is one
source partition. Reference data comes from ``--registry DIR``, else a ``registry/`` next to
the files (what ``citywatch simulate`` writes), else ``<data_dir>/registry``. Alerts go to
``REDIS_URL`` (or a private embedded Redis that lives as long as the replay). The progress
bar on stderr shows records, rate, event-time position and an ETA from the bytes read; the
last line gives the totals the flow counted (``cw:counts``): records, valid, dead letters by
reason, alerts raised by rule, time and rate.

A file ordered by entity (all records of one vehicle, then the next) would lose most of its
records as late: ``--order auto`` (the default) finds such files in one quick pass and reads
a copy sorted by time (made in bounded memory under ``$TMPDIR``, removed after); ``--order
entity`` sorts every file, ``--order file`` none. A file that breaks while read (a gzip cut
short) is processed up to the break, then reported: one line, exit code 2.

A replay runs in this one process (pacing and progress live here) and keeps no recovery
state; for a parallel replay at full speed use ``citywatch run --source files --processes N``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from citywatch.errors import InputError
from citywatch.settings import Settings

if TYPE_CHECKING:
    from flows.replay import Progress, ReplaySource

__all__ = ["add_arguments", "parse_time", "run"]


def parse_time(text: str, *, day_of: int | None = None) -> int:
    """Epoch ms from epoch ms, ISO 8601 (Nantong time without an offset) or ``HH:MM[:SS]``
    (on the local day of ``day_of``).

    >>> parse_time("1793548800000"), parse_time("2026-11-02T00:00")
    (1793548800000, 1793548800000)
    >>> parse_time("08:30", day_of=1793548800000) - 1793548800000
    30600000
    """
    from simulators.clock import local_midnight, parse_start

    t = text.strip()
    if ":" in t and "-" not in t and "T" not in t:
        if day_of is None:
            msg = f"time: {text!r} has no date (give --from as a full date first)"
            raise ValueError(msg)
        fields = t.split(":")
        nums = [int(x) for x in fields if x.isdigit()]
        if (
            len(nums) != len(fields)
            or len(nums) not in (2, 3)
            or not (nums[0] < 24 and all(x < 60 for x in nums[1:]))
        ):
            msg = f"time: {text!r} is not HH:MM or HH:MM:SS"
            raise ValueError(msg)
        h, m, s = [*nums, 0][:3]
        return local_midnight(day_of) + ((h * 60 + m) * 60 + s) * 1000
    try:
        return parse_start(t)
    except ValueError as exc:
        msg = f"time: {text!r} is not epoch ms, ISO 8601 or HH:MM"
        raise ValueError(msg) from exc


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILES", help="JSONL(.gz) files, dirs or globs")
    p.add_argument("--speed", default="max", help="max (default), 1x (live), 10x, 60x, ...")
    p.add_argument("--from", dest="from_", metavar="TIME", help="skip records before TIME")
    p.add_argument("--to", metavar="TIME", help="skip records at or after TIME")
    p.add_argument(
        "--registry", metavar="PATH", help="reference data, directory or file (default: see above)"
    )
    p.add_argument(
        "--order",
        choices=("auto", "entity", "file"),
        default="auto",
        help="auto (default): sort files that look ordered by entity by time first; "
        "entity: sort every file; file: read records as the files have them",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def default_registry(files: list[str]) -> str | None:
    """A ``registry/`` directory (``citywatch simulate`` output) or a ``registry.jsonl``
    (``citywatch import`` output) next to the first file that has one."""
    for f in files:
        d = Path(f).parent / "registry"
        if d.is_dir():
            return str(d)
        if d.with_suffix(".jsonl").is_file():
            return str(d.with_suffix(".jsonl"))
    return None


def run(args: argparse.Namespace) -> int:
    from flows.replay import Progress, ReplaySource
    from flows.sources.files import PROBLEMS
    from flows.sources.iterable import parse_speed

    settings = Settings.load(args.config)
    PROBLEMS.take()
    try:
        speed = parse_speed(args.speed)
        from_ms = parse_time(args.from_) if args.from_ else None
        to_ms = parse_time(args.to, day_of=from_ms) if args.to else None
        progress = Progress()
        source = ReplaySource(
            args.files, speed=speed, from_ms=from_ms, to_ms=to_ms, progress=progress
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="citywatch-replay-") as tmp:
        try:
            source.prepare(args.order, int(settings.lateness_s * 1000), Path(tmp), _say)
        except OSError as exc:  # a full disk while sorting, say
            msg = f"sorting by time under {tmp}: {exc.strerror or exc} (set TMPDIR elsewhere?)"
            raise InputError(msg) from None
        return _replay(args, settings, source, progress)


def _say(text: str) -> None:
    print(f"replay: {text}", file=sys.stderr, flush=True)


def _replay(
    args: argparse.Namespace, settings: Settings, source: ReplaySource, progress: Progress
) -> int:
    from citywatch.redisconn import check_url, embedded_or_url, redact
    from flows.metrics import Totals, read_counts
    from flows.replay import build_replay_flow, progress_line, run_in_process
    from flows.run import citywatch_errors, registry_path, watch_redis
    from flows.sources.files import PROBLEMS

    registry = args.registry or default_registry(source.files.files)
    stop = threading.Event()
    tty = sys.stderr.isatty()

    def show() -> None:
        while not stop.wait(0.5 if tty else 5.0):
            print(
                ("\r" if tty else "") + progress_line(progress),
                end="" if tty else "\n",
                file=sys.stderr,
                flush=True,
            )

    # The Redis URL's form, the registry and the region first: a bad one is one line before
    # anything starts (reaching Redis comes after).
    if settings.redis_url is not None:
        check_url(settings.redis_url)
    registry_path(registry, settings)
    with embedded_or_url(settings.redis_url, retries=settings.redis_retries) as url:
        if settings.redis_url is None:
            _say(f"embedded Redis at {redact(url)} (set REDIS_URL to keep the alerts)")
        run_id = f"replay-{uuid.uuid4().hex[:8]}"
        flow = build_replay_flow(source, settings, url, registry_dir=registry, run_id=run_id)
        before = read_counts(url, settings)
        bar = threading.Thread(target=show, daemon=True, name="replay-progress")
        if not args.quiet:
            bar.start()
        t0 = time.monotonic()
        try:
            with watch_redis(url, settings, "citywatch replay"), citywatch_errors():
                run_in_process(flow, settings)
        except KeyboardInterrupt:
            print("\nreplay: interrupted", file=sys.stderr)
            return 130
        finally:
            stop.set()
        dt = time.monotonic() - t0
        totals = Totals.say(before, read_counts(url, settings), dt)
    window = f"; {progress.skipped:,} outside the window" if progress.skipped else ""
    print(
        ("\r" if tty and not args.quiet else "")
        + f"replay: {totals}{window}; {len(source.files.files)} file(s), "
        f"registry {registry or settings.data_dir / 'registry'}",
        file=sys.stderr,
    )
    PROBLEMS.check()  # a file broke while read: processed up to the break, then said
    return 0
