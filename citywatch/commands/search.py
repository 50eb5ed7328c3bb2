"""``citywatch search``: find alerts, hotline tickets and work orders by their words.

Examples::

    citywatch search 噪声 崇川                       # both words, best first
    citywatch search 危化品 --since 7d --level orange # the last week, orange and red
    citywatch search "人民路 工农路" --kind ticket    # a phrase, tickets only
    citywatch search 苏F12345 --json                  # a plate, as JSON
    citywatch search --rebuild                        # rebuild the index from Redis

Before answering, the index catches up with Redis (alerts, tickets, audit), so what the flow
and the console wrote a moment ago is found. Query syntax: ``sinks/search/tokens.py`` and
docs/search.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import Any

import orjson

from citywatch.cli_options import parse_duration
from citywatch.errors import InputError, StoreError
from citywatch.redisconn import redact, require_url
from citywatch.settings import Settings

__all__ = ["add_arguments", "run"]

LEVEL_NAMES = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}
MARK = ("\x1b[1;31m", "\x1b[0m")


def _ts(text: str) -> int:
    """Epoch ms from ``2026-11-30``, ``2026-11-30T08:00`` (local time) or epoch ms."""
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).astimezone().timestamp() * 1000)
    except ValueError:
        msg = f"time: {text!r} is not like 2026-11-30, 2026-11-30T08:00 or epoch ms"
        raise argparse.ArgumentTypeError(msg) from None


def _list(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="*", help='words (AND), "a phrase", -excluded, OR, ST00*')
    p.add_argument("--since", type=parse_duration, help="only the last DURATION (e.g. 7d, 12h)")
    p.add_argument("--from", dest="from_ms", type=_ts, help="from this time (2026-11-30[T08:00])")
    p.add_argument("--to", dest="to_ms", type=_ts, help="until this time")
    p.add_argument("--kind", type=_list, default=(), help="alert,ticket,order (default all)")
    p.add_argument("--district", type=_list, default=(), help="districts, comma-separated")
    p.add_argument("--town", type=_list, default=(), help="towns, comma-separated")
    p.add_argument("--rule", type=_list, default=(), help="rules (or ticket categories)")
    p.add_argument("--level", choices=sorted(LEVEL_NAMES), help="this level or higher")
    p.add_argument("--status", type=_list, default=(), help="firing,resolved or order statuses")
    p.add_argument("--limit", type=int, default=10, help="results to show (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--index", help="index file or postgresql:// URL (default: settings)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the index from Redis first")
    p.add_argument(
        "--offline", action="store_true", help="answer from the index as it is, without Redis"
    )


def run(args: argparse.Namespace) -> int:
    from sinks.search import open_index
    from sinks.search.documents import Doc
    from sinks.search.service import registry_search
    from sinks.search.sqlite_index import Filters
    from sinks.search.tokens import QueryError

    settings = Settings.load(getattr(args, "config", None))
    query = " ".join(args.query).strip()
    if not query and not args.rebuild:
        msg = "give words to search for (or --rebuild)"
        raise InputError(msg)
    if args.limit < 1:
        msg = f"--limit: must be >= 1, got {args.limit}"
        raise InputError(msg)
    index = open_index(settings, args.index)
    locator, index.places = registry_search(settings.data_dir / "registry")
    if getattr(index, "rebuilt", False):
        print("index: an older format, emptied: filled again from Redis", file=sys.stderr)
    try:
        if not args.offline:
            _catch_up(index, settings, locator, rebuild=args.rebuild)
        if not query:
            return 0
        to_ms = args.to_ms
        from_ms = args.from_ms
        if args.since:
            from_ms = int(time.time() * 1000) - args.since * 1000
        filters = Filters(
            from_ms=from_ms,
            to_ms=to_ms,
            kinds=args.kind,
            districts=args.district,
            towns=args.town,
            rules=args.rule,
            min_level=LEVEL_NAMES.get(args.level or "", 0),
            statuses=args.status,
        )
        try:
            results = index.search(query, filters, limit=args.limit)
        except QueryError as exc:
            raise InputError(str(exc)) from exc
    finally:
        index.close()
    if args.json:
        print(orjson.dumps(results.to_dict()).decode())
        return 0
    color = sys.stdout.isatty()
    more = "+" if results.capped else ""
    print(f"{results.matched}{more} matches for {query!r} ({results.took_ms:.0f} ms)")
    if results.capped:
        print(f"  (ranked the newest {results.matched}; narrow --from/--to to reach older ones)")
    for hit in results.hits:
        d: Doc = hit.doc
        when = datetime.fromtimestamp(d.ts / 1000).astimezone().strftime("%Y-%m-%d %H:%M")
        level = next((k for k, v in LEVEL_NAMES.items() if v == d.level), "")
        place = " ".join(x for x in (d.district, d.town) if x)
        partial = "  (some of the words)" if hit.is_partial else ""
        print(f"{d.kind:6} {d.ref}  {when}  {level:6} {place}  {d.title}{partial}")
        text = "".join(
            (f"{MARK[0]}{s}{MARK[1]}" if color else f"[{s}]") if hit_ else s
            for s, hit_ in hit.snippet
        )
        print(f"       {text}")
    return 0


def _catch_up(index: Any, settings: Settings, locator: Any, *, rebuild: bool) -> None:
    import redis

    from sinks.search.feeder import SearchFeeder

    url = require_url(settings, "search")
    client = redis.Redis.from_url(url, socket_timeout=10)
    try:
        feeder = SearchFeeder(index, client, settings.keys, locator)
        done = feeder.rebuild() if rebuild else feeder.catch_up()
    except redis.RedisError as exc:
        msg = f"Redis at {redact(url)}: {exc} (use --offline to skip)"
        raise StoreError(msg) from exc
    finally:
        client.close()
    if rebuild or done.total:
        print(f"index: +{done.total} documents {done.added}", file=sys.stderr)
    if done.trimmed:
        print("index: some stream entries were trimmed before they were indexed", file=sys.stderr)
