"""``citywatch serve``: the websocket feed and the duty-officer console, until SIGTERM.

Redis is ``REDIS_URL`` (or ``redis_url`` in the config file); the feed reads ``cw:alerts`` and
``cw:audit`` and owns the work-order fields. On SIGTERM or Ctrl-C it stops accepting, closes
every client with 1001 (going away) and exits 0.

Who may log in: the users of ``users_file`` (``citywatch users``), and on loopback only the
development token(s) of ``CW_FEED_TOKENS`` (default ``dev-token``, an administrator) and, with
``--demo-logins``, the demo's published logins. A non-loopback ``--host`` while any of those is
on is refused (exit 2), as is a port that is taken. Tokens are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from citywatch.identity import UserStore, is_loopback
from citywatch.outlines import Outlines, load_outlines
from citywatch.processes import check_port
from citywatch.redisconn import redact, require_url, wait_for
from citywatch.registry import Registry
from citywatch.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="interface to bind (default: settings feed_host)")
    p.add_argument("--port", type=int, help="port (default: settings feed_port; 0 = any free)")
    p.add_argument(
        "--registry",
        type=Path,
        help="registry directory with districts.geojson, towns, grids and, for the maps, "
        "outlines.geojson (default: <data_dir>/registry)",
    )
    p.add_argument(
        "--demo-logins",
        action="store_true",
        help="also accept the demo's published logins, one per role (loopback only; "
        "`citywatch demo` sets this)",
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(getattr(args, "config", None))
    changes: dict[str, object] = {}
    if args.host:
        changes["feed_host"] = args.host
    if args.port is not None:
        changes["feed_port"] = args.port
    if changes:
        settings = settings.with_(**changes)
    url = require_url(settings, "serve")
    demo = bool(getattr(args, "demo_logins", False))
    check_serving(settings, demo_logins=demo)  # before waiting for Redis: these are instant
    directory = args.registry or settings.data_dir / "registry"
    outlines = load_outlines(directory if directory.is_dir() else directory.parent)
    wait_for(url, retries=settings.redis_retries).close()
    settings = settings.with_(redis_url=url)
    print(
        f"citywatch serve: Redis {redact(url)}, "
        f"console http://{settings.feed_host}:{settings.feed_port}/",
        file=sys.stderr,
        flush=True,
    )
    fallback = _fallback_registry(settings, args.registry)
    districts = None
    if fallback is not None:
        import orjson

        from citywatch.registry import districts_geojson

        districts = orjson.dumps(districts_geojson(fallback.districts))
    if outlines is None:
        print(
            "citywatch serve: no outlines.geojson beside the registry: the maps show simulated "
            "outlines, labelled 模拟边界 (docs/operations.md, supplying outlines)",
            file=sys.stderr,
            flush=True,
        )
    asyncio.run(_main(settings, args.registry, districts, demo, fallback, outlines))
    return 0


def check_serving(settings: Settings, *, demo_logins: bool) -> None:
    """Everything that would stop the feed, checked before anything starts: development
    logins on a non-loopback host, a taken port, a malformed users file. Warns (one line) when
    nobody could log in."""
    from sinks.feed.server import check_exposure

    dev = bool(settings.feed_tokens) or demo_logins
    check_exposure(settings.feed_host, dev_logins=dev)
    check_port(settings.feed_host, settings.feed_port)
    users = UserStore(settings.users_path)
    if not dev and not any(u.active for u in users.users()):
        print(
            f"citywatch serve: no users in {settings.users_path} yet: add them with "
            "`citywatch users add` (the feed reads the file again when it changes)",
            file=sys.stderr,
            flush=True,
        )
    if not is_loopback(settings.feed_host):
        print(
            "citywatch serve: listening beyond this machine without TLS: put a TLS-terminating "
            "proxy in front (docs/operations.md)",
            file=sys.stderr,
            flush=True,
        )


def _fallback_registry(settings: Settings, registry: Path | None) -> Registry | None:
    """The simulated Nantong (districts, towns, grids) when no registry directory has a
    districts.geojson.

    ``citywatch run`` on the simulator keeps its registry in memory, so the demo's console
    and cockpit would otherwise have maps without districts and centres without names.
    """
    directory = registry or settings.data_dir / "registry"
    if (directory / "districts.geojson").is_file():
        return None
    try:
        from simulators.geography import Geography
        from simulators.towns import build_grids, build_towns
    except ImportError:
        return None
    print(
        f"citywatch serve: no {directory}/districts.geojson; showing the simulated Nantong "
        "districts, towns and grids",
        file=sys.stderr,
        flush=True,
    )
    towns = build_towns()
    return Registry(
        districts=list(Geography().districts),
        towns={t.id: t for t in towns},
        grids=build_grids(towns),
    )


async def _main(
    settings: Settings,
    registry: Path | None,
    districts: bytes | None,
    demo_logins: bool,
    fallback: Registry | None = None,
    outlines: Outlines | None = None,
) -> None:
    from sinks.feed.server import run as serve_feed

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_feed(
        settings,
        registry_dir=registry,
        districts=districts,
        stop=stop,
        demo_logins=demo_logins,
        registry=fallback,
        outlines=outlines,
    )
