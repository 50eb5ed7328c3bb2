"""What a report reads from Redis (docs/contracts.md): alerts, audit, tickets, observations.

Everything is read once, with pipelines and paged XRANGE, into plain dicts; the topic
modules compute from those (pure functions, testable without Redis). Unreadable entries are
counted and skipped, never fatal: a report over a month must not fail on one bad record.

- alerts: the newest version of every alert (``cw:alert:{id}`` field ``a``) with its work
  order's ``status`` and ``dept``; the hash, not the stream, since the stream is trimmed and
  holds every version;
- audit: every ``cw:audit`` event, in stream order (effectiveness needs whole cycles);
- tickets: ``cw:tickets`` in the time window, once per ticket id (the stream is
  at-least-once);
- observations: ``cw:obs:{name}:log`` in the time window, once per (subject, ts);
- the flow's event-time watermark (``cw:counts`` ``watermark_ms``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
import redis

from citywatch.keys import Keys

__all__ = ["Dataset", "load", "load_alerts", "stream_rows", "watermark"]

PAGE = 5000


@dataclass(slots=True)
class Dataset:
    """The raw material of one report (the window covers the period and the one before)."""

    start_ms: int
    end_ms: int
    alerts: list[dict[str, Any]] = field(default_factory=list)
    audit: list[dict[str, Any]] = field(default_factory=list)
    tickets: list[dict[str, Any]] = field(default_factory=list)
    hourly: list[dict[str, Any]] = field(default_factory=list)
    #: every alert's place and rule, by id (work orders may outlive the window's alerts)
    places: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    watermark_ms: int | None = None
    #: entries skipped because they were not readable JSON of the expected shape
    unreadable: int = 0


def _json(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def stream_rows(r: redis.Redis, key: str, page: int = PAGE) -> Iterator[dict[bytes, bytes]]:
    """Every entry's fields of stream ``key``, oldest first (paged XRANGE)."""
    start = "-"
    while True:
        rows = cast(list[Any], r.xrange(key, min=start, max="+", count=page))
        if not rows:
            return
        for _, fields in rows:
            yield fields
        if len(rows) < page:
            return
        last = rows[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))


def watermark(r: redis.Redis, keys: Keys) -> int | None:
    """The newest event time the flow has taken in (``cw:counts`` ``watermark_ms``)."""
    return _int(r.hget(keys.counts, "watermark_ms"))


def load_alerts(r: redis.Redis, keys: Keys) -> tuple[list[dict[str, Any]], int]:
    """Every alert (newest version) with ``wo_status``, ``wo_dept`` and ``wo_rev`` added;
    and the number of unreadable hashes."""
    prefix = keys.alert("")
    out: list[dict[str, Any]] = []
    bad = 0
    names: list[Any] = []

    def flush() -> None:
        nonlocal bad
        pipe = r.pipeline(transaction=False)
        for name in names:
            pipe.hmget(name, ["a", "status", "dept", "rev"])
        for values in pipe.execute():
            a = _json(values[0])
            if not isinstance(a, dict) or "id" not in a or "rule" not in a:
                bad += 1
                continue
            a["wo_status"] = (values[1] or b"new").decode("utf-8", "replace")
            a["wo_dept"] = (values[2] or b"").decode("utf-8", "replace")
            a["wo_rev"] = _int(values[3]) or 0
            out.append(a)
        names.clear()

    for name in r.scan_iter(match=f"{_escape(prefix)}*", count=2000, _type="hash"):
        names.append(name)
        if len(names) >= 1000:
            flush()
    if names:
        flush()
    out.sort(key=lambda a: (_int(a.get("first_ts")) or 0, str(a["id"])))
    return out, bad


def _escape(prefix: str) -> str:
    """A prefix as a literal inside a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in prefix)


def load(r: redis.Redis, keys: Keys, start_ms: int, end_ms: int) -> Dataset:
    """Read what a report of ``[start_ms, end_ms)`` needs (alerts overlapping it, tickets and
    observations inside it, the whole audit)."""
    data = Dataset(start_ms, end_ms, watermark_ms=watermark(r, keys))
    alerts, bad = load_alerts(r, keys)
    data.unreadable += bad
    for a in alerts:
        data.places[str(a["id"])] = (
            str(a.get("district") or ""),
            str(a.get("town") or ""),
            str(a.get("rule") or ""),
        )
        first = _int(a.get("first_ts"))
        last = _int(a.get("last_ts")) or first
        if first is None or last is None:
            data.unreadable += 1
        elif first < end_ms and last >= start_ms:
            data.alerts.append(a)
    for fields in stream_rows(r, keys.audit):
        ev = _json(fields.get(b"e"))
        if isinstance(ev, dict):
            data.audit.append(ev)
        else:
            data.unreadable += 1
    seen: set[str] = set()
    for fields in stream_rows(r, keys.tickets):
        t = _json(fields.get(b"t"))
        ts = _int(t.get("ts")) if isinstance(t, dict) else None
        if not isinstance(t, dict) or ts is None or "ticket" not in t:
            data.unreadable += 1
            continue
        tid = str(t["ticket"])
        if start_ms <= ts < end_ms and tid not in seen:
            seen.add(tid)
            data.tickets.append(t)
    data.tickets.sort(key=lambda t: int(t["ts"]))
    data.hourly, bad = load_observations(r, keys, "air.hourly", start_ms, end_ms)
    data.unreadable += bad
    return data


def load_observations(
    r: redis.Redis, keys: Keys, name: str, start_ms: int, end_ms: int
) -> tuple[list[dict[str, Any]], int]:
    """Observations ``name`` with ``ts`` in the window, once per (subject, ts), by time."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    bad = 0
    for fields in stream_rows(r, keys.observations(name)):
        o = _json(fields.get(b"o"))
        subject = o.get("subject") if isinstance(o, dict) else None
        ts = _int(o.get("ts")) if isinstance(o, dict) else None
        if (
            not isinstance(o, dict)
            or not isinstance(subject, dict)
            or ts is None
            or not isinstance(o.get("values"), dict)
        ):
            bad += 1
            continue
        if start_ms <= ts < end_ms:
            found[(str(subject.get("id")), ts)] = o
    return sorted(found.values(), key=lambda o: (int(o["ts"]), str(o["subject"].get("id")))), bad
