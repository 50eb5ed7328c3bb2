"""``citywatch report``: work-order effectiveness metrics from the audit stream.

Sign-off time (dispatch -> sign), rejection rate, handling time (sign -> feedback), overdue and
closure rates, in total, per department, district, tier (town, county, city) and centre.
``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import orjson

from citywatch.redisconn import require_url, wait_for
from citywatch.settings import Settings


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(getattr(args, "config", None))
    url = require_url(settings, "report")
    wait_for(url, retries=settings.redis_retries).close()
    metrics = asyncio.run(_collect(settings.with_(redis_url=url)))
    if args.json:
        print(orjson.dumps(metrics).decode())
    else:
        print(format_report(metrics))
    return 0


async def _collect(settings: Settings) -> dict[str, Any]:
    from sinks.feed.lifecycle import compute_metrics
    from sinks.feed.store import FeedStore

    store = FeedStore.from_url(settings.redis_url or "", settings.keys)
    try:
        events = [ev async for ev in store.audit_events()]
    finally:
        await store.close()
    return compute_metrics(events, now_ms=int(time.time() * 1000))


_COLS = (
    ("dispatched", "派单"),
    ("signed", "签收"),
    ("rejected", "退回"),
    ("closed", "办结"),
    ("signoff_ms_median", "签收中位"),
    ("handling_ms_median", "办理中位"),
    ("rejection_rate", "退回率"),
    ("overdue_rate", "超时率"),
    ("closure_rate", "办结率"),
)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key.endswith("_ms_median"):
        return _duration(float(value))
    if key.endswith("_rate"):
        return f"{100 * float(value):.1f}%"
    return str(value)


def _duration(ms: float) -> str:
    s = ms / 1000
    if s < 120:
        return f"{s:.0f}s"
    if s < 7200:
        return f"{s / 60:.0f}min"
    if s < 172_800:
        return f"{s / 3600:.1f}h"
    return f"{s / 86400:.1f}d"


def format_report(metrics: dict[str, Any]) -> str:
    """Plain-text tables: total, then per department, district, tier and centre."""
    lines: list[str] = []
    header = ["", *(zh for _, zh in _COLS)]
    for title, rows in (
        ("total / 合计", {"all": metrics["total"]}),
        ("by department / 按部门", metrics["by_dept"]),
        ("by district / 按区县", metrics["by_district"]),
        ("by tier / 按层级", metrics.get("by_tier", {})),
        ("by centre / 按指挥中心", metrics.get("by_centre", {})),
    ):
        lines.append(f"== {title}")
        table = [header] + [[name, *(_cell(k, r[k]) for k, _ in _COLS)] for name, r in rows.items()]
        widths = [max(_width(row[i]) for row in table) for i in range(len(header))]
        for row in table:
            lines.append("  ".join(_pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip())
        if not rows:
            lines.append("  (no work orders yet)")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _width(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))
