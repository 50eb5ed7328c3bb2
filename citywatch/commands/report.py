"""``citywatch report``: analysis reports per day, week or month, and the effectiveness tables.

    citywatch report                                   # effectiveness tables, all time
    citywatch report --period week                     # this week vs the last: a text summary
    citywatch report --period week --out var/report    # report.html + PNG figures + report.json
    citywatch report --period month --topic effectiveness --at 2026-11 --out var/nov

Without ``--period`` (and without ``--out``) it prints, as before, sign-off time, rejection
rate, handling time, overdue and closure rates in total, per department, district, tier (town,
county, city) and centre from the whole audit stream (``--json``: one JSON object). With
``--period`` it computes the report of the period holding ``--at`` (default: the flow's newest
event time, so a replay reports its own period) against the one before; docs/reports.md
defines every figure.

The effectiveness tables end with the hotline model's routing suggestions: alerts whose
evidence carries its department prediction (``evidence.routing``, top three) scored against
the officers' first dispatch of them, per day (how often the first suggestion, or one of the
three, was the department chosen).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from citywatch.errors import ConfigError
from citywatch.redisconn import require_url, wait_for
from citywatch.settings import Settings

TOPICS = ("air", "hazmat", "worksites", "hotline", "water", "effectiveness")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--period",
        choices=("day", "week", "month"),
        help="report this period against the one before (default with --out: day)",
    )
    p.add_argument(
        "--topic",
        default="all",
        help="air, hazmat, worksites, hotline, water, effectiveness or all (comma-separated; "
        "default all; water only where water stations raised alerts)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="write report.html and figures here")
    p.add_argument(
        "--at",
        metavar="DATE",
        help="a time inside the period: 2026-11-05, 2026-11-05T14:00 (local) or epoch ms "
        "(default: the flow's newest event time)",
    )
    p.add_argument(
        "--registry",
        type=Path,
        metavar="PATH",
        help="reference data for names and district outlines (default: <data_dir>/registry, "
        "else the simulated Nantong ones)",
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(getattr(args, "config", None))
    period = getattr(args, "period", None)
    out = getattr(args, "out", None)
    if period is None and out is None:
        url = require_url(settings, "report")
        wait_for(url, retries=settings.redis_retries).close()
        metrics = asyncio.run(_collect(settings.with_(redis_url=url)))
        print(orjson.dumps(metrics).decode() if args.json else format_report(metrics))
        return 0
    topics = parse_topics(getattr(args, "topic", "all") or "all")
    if out is not None:
        check_out(out)
    from flows.reports import report_registry

    registry, simulated = report_registry(settings, getattr(args, "registry", None))
    url = require_url(settings, "report")
    wait_for(url, retries=settings.redis_retries).close()
    return write_or_print(
        settings.with_(redis_url=url),
        kind=period or "day",
        topics=topics,
        at=getattr(args, "at", None),
        out=out,
        as_json=bool(args.json),
        registry=registry,
        simulated=simulated,
    )


def parse_topics(text: str) -> tuple[str, ...]:
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not parts or "all" in parts:
        return TOPICS
    bad = [t for t in parts if t not in TOPICS]
    if bad:
        msg = f"--topic: {bad[0]!r} is not one of {', '.join(TOPICS)}, all"
        raise ConfigError(msg)
    return tuple(t for t in TOPICS if t in parts)


def check_out(out: Path) -> None:
    """Fail before the work when the output directory cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        msg = f"--out: cannot write into {out} ({exc.strerror or exc})"
        raise ConfigError(msg) from exc


def write_or_print(
    settings: Settings,
    *,
    kind: str,
    topics: tuple[str, ...],
    at: str | None,
    out: Path | None,
    as_json: bool,
    registry: Any,
    simulated: bool,
) -> int:
    import redis

    from citywatch.redisconn import redact
    from sinks.reports import build_report, write_report
    from sinks.reports.period import parse_at
    from sinks.reports.text import summary

    started = time.monotonic()
    at_ms = parse_at(at, settings.report_utc_offset_h) if at else None
    url = settings.redis_url or ""
    r = redis.Redis.from_url(url)
    try:
        report = build_report(
            r,
            settings.keys,
            kind=kind,
            topics=topics,
            at_ms=at_ms,
            offset_h=settings.report_utc_offset_h,
            registry=registry,
            simulated_outlines=simulated,
            figures=out is not None,
            source=redact(url),
        )
    finally:
        r.close()
    if out is None:
        if as_json:
            print(orjson.dumps(report.as_dict(), option=orjson.OPT_NON_STR_KEYS).decode())
        else:
            sys.stdout.write(summary(report))
        return 0
    page = write_report(report, out)
    figures = sum(len(s.figures) for s in report.sections)
    print(
        f"report: {page} ({report.title} {report.period.label}, {len(report.sections)} "
        f"sections, {figures} figures, {time.monotonic() - started:.1f} s)"
    )
    return 0


async def _collect(settings: Settings) -> dict[str, Any]:
    from sinks.feed.lifecycle import compute_metrics
    from sinks.feed.store import FeedStore

    store = FeedStore.from_url(settings.redis_url or "", settings.keys)
    try:
        events = [ev async for ev in store.audit_events()]
        ids = sorted({str(ev.get("id")) for ev in events if ev.get("action") == "dispatch"})
        alerts = {str(x["alert"].get("id")): x["alert"] for x in await store.load(ids)}
    finally:
        await store.close()
    metrics = compute_metrics(events, now_ms=int(time.time() * 1000))
    metrics["routing"] = routing_accuracy(events, alerts)
    return metrics


_DAY_MS = 86_400_000
_BEIJING_MS = 8 * 3_600_000


def routing_accuracy(
    events: list[dict[str, Any]], alerts: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Per Beijing day: first dispatches of alerts with a routing suggestion, and how often the
    top suggestion (``top1``) or one of the three (``top3``) was the department chosen.

    >>> ev = [{"id": "a", "action": "dispatch", "ts_ms": 0, "dept": "市水务集团"},
    ...       {"id": "a", "action": "dispatch", "ts_ms": 5, "dept": "市公安局"}]
    >>> al = {"a": {"evidence": {"routing": [{"dept": "市公安局", "p": 0.5},
    ...                                       {"dept": "市水务集团", "p": 0.3}]}}}
    >>> routing_accuracy(ev, al)
    {'1970-01-01': {'dispatched': 1, 'top1': 0.0, 'top3': 1.0}}
    """
    import datetime as dt

    seen: set[str] = set()
    days: dict[str, list[int]] = {}
    for ev in events:
        aid = str(ev.get("id"))
        if ev.get("action") != "dispatch" or aid in seen:
            continue
        seen.add(aid)
        evidence = alerts.get(aid, {}).get("evidence") or {}
        routing = evidence.get("routing") if isinstance(evidence, dict) else None
        if not isinstance(routing, list) or not routing:
            continue
        top = [str(r.get("dept")) for r in routing[:3] if isinstance(r, dict)]
        ts = int(ev.get("ts_ms") or 0)
        day = dt.datetime.fromtimestamp((ts + _BEIJING_MS) / 1000, dt.UTC).date().isoformat()
        row = days.setdefault(day, [0, 0, 0])
        row[0] += 1
        row[1] += bool(top) and top[0] == ev.get("dept")
        row[2] += ev.get("dept") in top
    return {
        d: {"dispatched": n, "top1": round(h1 / n, 4), "top3": round(h3 / n, 4)}
        for d, (n, h1, h3) in sorted(days.items())
    }


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
    from sinks.reports.content import fmt

    if value is None:
        return "-"
    if key.endswith("_ms_median"):
        return fmt(float(value), "dur")
    if key.endswith("_rate"):
        return fmt(float(value), "pct")
    return str(value)


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
    routing = metrics.get("routing") or {}
    lines.append("== routing suggestions / 派单推荐 (first dispatch vs the model's top three)")
    for day, r in routing.items():
        lines.append(
            f"  {day}  派单 {r['dispatched']}  top1 {100 * r['top1']:.1f}%  "
            f"top3 {100 * r['top3']:.1f}%"
        )
    if not routing:
        lines.append("  (no dispatched alert carried a routing suggestion yet)")
    return "\n".join(lines).rstrip() + "\n"


def _width(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))
