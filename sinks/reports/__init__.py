"""Analysis reports: a day, week or month of alerts, tickets, air observations and work
orders, compared with the period before, as HTML with figures (docs/reports.md).

:func:`build_report` reads Redis (``source.py``) and computes one :class:`~.content.Section`
per topic (``air.py``, ``hazmat.py``, ``worksites.py``, ``hotline.py``, ``water.py``,
``effectiveness.py``); :func:`write_report` writes ``report.html`` (self-contained: figures
inlined), the figures as PNG files beside it and ``report.json`` (every figure's numbers).
``citywatch report`` and the daily report of ``citywatch run`` (``daily.py``) call these.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import orjson
import redis

from citywatch.errors import DependencyError, InputError
from citywatch.keys import Keys
from citywatch.registry import Registry
from sinks.reports import air, effectiveness, hazmat, hotline, water, worksites
from sinks.reports.content import Report, Section
from sinks.reports.context import Context
from sinks.reports.html import render
from sinks.reports.period import Period
from sinks.reports.source import Dataset, load, watermark

__all__ = ["OPTIONAL", "TOPICS", "build_report", "default_at", "write_report"]

#: Topic -> the function computing its section, in report order.
TOPICS: Final[dict[str, Callable[[Context], Section]]] = {
    "air": air.section,
    "hazmat": hazmat.section,
    "worksites": worksites.section,
    "hotline": hotline.section,
    "water": water.section,
    "effectiveness": effectiveness.section,
}
#: Topics a city may not have at all (no water stations): their section is left out unless
#: their rules raised an alert in the period or the one before.
OPTIONAL: Final[dict[str, tuple[str, ...]]] = {"water": water.RULES}


def default_at(r: redis.Redis, keys: Keys, now_ms: int) -> int:
    """Which time picks the period when none is given: the flow's watermark (so a replay of
    simulated or recorded data reports its own period), else the newest audit action, else
    ``now_ms``."""
    wm = watermark(r, keys)
    if wm:
        return wm
    rows = r.xrevrange(keys.audit, count=1)
    if rows:
        try:
            return int(orjson.loads(rows[0][1][b"e"])["ts_ms"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
            pass
    return now_ms


def build_report(
    r: redis.Redis,
    keys: Keys,
    *,
    kind: str,
    topics: Sequence[str] = tuple(TOPICS),
    at_ms: int | None = None,
    offset_h: float = 8.0,
    registry: Registry | None = None,
    simulated_outlines: bool = False,
    figures: bool = True,
    now_ms: int | None = None,
    source: str = "",
) -> Report:
    """Compute the report of the ``kind`` period holding ``at_ms`` (default:
    :func:`default_at`). Raises :class:`DependencyError` when Redis fails."""
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        msg = f"topic: {unknown[0]!r} is not one of {', '.join(TOPICS)}, all"
        raise InputError(msg)
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        at = at_ms if at_ms is not None else default_at(r, keys, now)
        period = Period.containing(kind, at, offset_h)
        previous = period.previous()
        data = load(r, keys, previous.start_ms, period.end_ms)
    except redis.RedisError as exc:
        msg = f"redis: {exc}"
        raise DependencyError(msg) from exc
    newest_action = max((int(e["ts_ms"]) for e in data.audit if _is_int(e.get("ts_ms"))), default=0)
    as_of = max(data.watermark_ms or 0, newest_action) or now
    before = _has_data(data, previous)
    ctx = Context(
        data=data,
        period=period,
        previous=previous,
        as_of_ms=as_of,
        registry=registry,
        simulated_outlines=simulated_outlines,
        figures=figures,
    )
    present = {str(a.get("rule")) for a in data.alerts}
    sections = [
        TOPICS[t](ctx)
        for t in TOPICS
        if t in topics and (t not in OPTIONAL or present & set(OPTIONAL[t]))
    ]
    meta = {
        "redis": source,
        "prefix": keys.prefix,
        "alerts": len(data.alerts),
        "audit": len(data.audit),
        "tickets": len(data.tickets),
        "hourly": len(data.hourly),
        "unreadable": data.unreadable,
        "registry": "有" if registry is not None else "无",
        "previous_has_data": before,
    }
    return Report(
        title=f"城市运行分析{period.name_zh}",
        period=period,
        previous=previous,
        as_of_ms=as_of,
        generated_ms=now,
        sections=sections,
        meta=meta,
    )


def _has_data(data: Dataset, period: Period) -> bool:
    """Whether anything at all happened in ``period`` (else its zeros mean "no data", and
    a comparison with it means little)."""
    return (
        any(period.contains(_ts(a.get("first_ts"))) for a in data.alerts)
        or any(period.contains(_ts(t.get("ts"))) for t in data.tickets)
        or any(period.contains(_ts(o.get("ts"))) for o in data.hourly)
        or any(period.contains(_ts(e.get("ts_ms"))) for e in data.audit)
    )


def _ts(v: object) -> int:
    return v if _is_int(v) else -1  # type: ignore[return-value]


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def write_report(report: Report, out: Path) -> Path:
    """Write ``report.html``, one PNG per figure and ``report.json`` into ``out`` (created);
    returns the HTML's path. Raises :class:`InputError` when ``out`` cannot be written."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for s in report.sections:
            for f in s.figures:
                (out / f"{f.key}.png").write_bytes(f.png)
        (out / "report.json").write_bytes(
            orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
        page = out / "report.html"
        tmp = out / ".report.html.tmp"
        tmp.write_text(render(report), encoding="utf-8")
        tmp.replace(page)
    except OSError as exc:
        msg = f"--out: cannot write the report into {out} ({exc.strerror or exc})"
        raise InputError(msg) from exc
    return page
