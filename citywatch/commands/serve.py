"""``citywatch serve``: the websocket feed and the duty-officer console, until SIGTERM.

Redis is ``REDIS_URL`` (or ``redis_url`` in the config file); the feed reads ``cw:alerts`` and
``cw:audit`` and owns the work-order fields. On SIGTERM or Ctrl-C it stops accepting, closes
every client with 1001 (going away) and exits 0. Tokens come from ``CW_FEED_TOKENS`` (comma
separated) and are never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from citywatch.redisconn import redact, require_url, wait_for
from citywatch.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="interface to bind (default: settings feed_host)")
    p.add_argument("--port", type=int, help="port (default: settings feed_port; 0 = any free)")
    p.add_argument(
        "--registry",
        type=Path,
        help="registry directory with districts.geojson (default: <data_dir>/registry)",
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
    wait_for(url, retries=settings.redis_retries).close()
    settings = settings.with_(redis_url=url)
    print(
        f"citywatch serve: Redis {redact(url)}, "
        f"console http://{settings.feed_host}:{settings.feed_port}/",
        file=sys.stderr,
        flush=True,
    )
    asyncio.run(_main(settings, args.registry, _fallback_districts(settings, args.registry)))
    return 0


def _fallback_districts(settings: Settings, registry: Path | None) -> bytes | None:
    """The simulated Nantong outlines when no registry directory has a districts.geojson.

    ``citywatch run`` on the simulator keeps its registry in memory, so the demo's console
    would otherwise have a map without districts.
    """
    directory = registry or settings.data_dir / "registry"
    if (directory / "districts.geojson").is_file():
        return None
    try:
        from simulators.geography import Geography
    except ImportError:
        return None
    import orjson

    from citywatch.registry import districts_geojson

    print(
        f"citywatch serve: no {directory}/districts.geojson; showing the simulated Nantong "
        "districts",
        file=sys.stderr,
        flush=True,
    )
    return orjson.dumps(districts_geojson(Geography().districts))


async def _main(settings: Settings, registry: Path | None, districts: bytes | None) -> None:
    from sinks.feed.server import run as serve_feed

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve_feed(settings, registry_dir=registry, districts=districts, stop=stop)
