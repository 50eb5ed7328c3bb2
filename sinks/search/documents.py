"""What the search index holds: one :class:`Doc` per alert, hotline ticket and work order.

Documents are built from what the streams carry, never from a private copy:

- an **alert** from each version in ``cw:alerts`` (the newest version replaces the older);
- a **ticket** from each hotline record in ``cw:tickets`` (text, category, address, place);
- a **work order** from the audit events of ``cw:audit`` (its status, department, and every
  note and reason written on it, so "what did the handler say" is searchable).

>>> d = alert_doc({"id": "a1", "rule": "air.spike", "level": "orange", "state": "firing",
...     "subject": {"kind": "station", "id": "ST0001"}, "first_ts": 5, "last_ts": 9,
...     "district": "崇川区", "title": "PM2.5 局地突增", "evidence": {"wind": "NE"}})
>>> d.doc_id, d.kind, d.ts, d.level, d.body
('alert:a1', 'alert', 9, 3, 'air.spike station ST0001 崇川区 NE')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

__all__ = ["LEVELS", "Doc", "alert_doc", "order_doc", "ticket_doc"]

#: Level name -> rank (filters and sorting); the colours of citywatch.alerts.Level.
LEVELS: Final = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}
#: Evidence text kept per document (a runaway list must not bloat the index).
MAX_BODY_CHARS: Final = 4000


class Doc(msgspec.Struct, frozen=True, kw_only=True):
    """One searchable document. ``ref`` is what the console opens (alert or ticket id)."""

    doc_id: str
    kind: str  # alert | ticket | order
    ref: str
    ts: int
    title: str
    body: str
    district: str = ""
    town: str = ""
    grid: str = ""
    rule: str = ""
    level: int = 0
    status: str = ""
    lat: float | None = None
    lon: float | None = None


def _strings(value: Any, out: list[str], depth: int = 0) -> None:
    """The text inside an evidence value: strings (not numbers: they only add noise)."""
    if isinstance(value, str):
        out.append(value)
    elif depth < 3 and isinstance(value, Mapping):
        for v in value.values():
            _strings(v, out, depth + 1)
    elif depth < 3 and isinstance(value, list | tuple):
        for v in value:
            _strings(v, out, depth + 1)


def _join(parts: Iterable[str | None]) -> str:
    return " ".join(p for p in parts if p)[:MAX_BODY_CHARS]


def alert_doc(a: Mapping[str, Any]) -> Doc:
    """The document of one alert version (the dict of ``Alert.to_dict``)."""
    subject = a.get("subject") or {}
    texts: list[str] = []
    _strings(a.get("evidence") or {}, texts)
    body = _join(
        [a.get("rule"), subject.get("kind"), subject.get("id"), a.get("district"),
         a.get("town"), a.get("grid"), *texts]
    )  # fmt: skip
    return Doc(
        doc_id=f"alert:{a['id']}",
        kind="alert",
        ref=str(a["id"]),
        ts=int(a.get("last_ts") or a.get("first_ts") or 0),
        title=str(a.get("title") or a.get("rule") or ""),
        body=body,
        district=str(a.get("district") or ""),
        town=str(a.get("town") or ""),
        grid=str(a.get("grid") or ""),
        rule=str(a.get("rule") or ""),
        level=LEVELS.get(str(a.get("level")), 0),
        status=str(a.get("state") or ""),
        lat=a.get("lat"),
        lon=a.get("lon"),
    )


def ticket_doc(t: Mapping[str, Any]) -> Doc:
    """The document of one hotline ticket (the ``hotline`` event's fields)."""
    text = str(t.get("text") or "")
    category = str(t.get("category") or "")
    return Doc(
        doc_id=f"ticket:{t['ticket']}",
        kind="ticket",
        ref=str(t["ticket"]),
        ts=int(t.get("ts") or 0),
        title=_join([category, text[:40]]),
        body=_join([text, t.get("address"), t.get("grid"), str(t["ticket"])]),
        district=str(t.get("district") or ""),
        town=str(t.get("town") or ""),
        grid=str(t.get("grid") or ""),
        rule=category,
        lat=t.get("lat"),
        lon=t.get("lon"),
    )


def order_doc(events: Iterable[Mapping[str, Any]], alert: Mapping[str, Any] | None) -> Doc:
    """The document of one work order from its audit events (oldest first) and its alert."""
    evs = list(events)
    last = evs[-1]
    notes = [e.get(k) for e in evs for k in ("note", "reason") if e.get(k)]
    people = {str(e.get(k)) for e in evs for k in ("actor", "dept", "assignee") if e.get(k)}
    a = alert or {}
    return Doc(
        doc_id=f"order:{last['id']}",
        kind="order",
        ref=str(last["id"]),
        ts=int(last.get("ts_ms") or 0),
        title=str(a.get("title") or last.get("rule") or ""),
        body=_join([*(str(n) for n in notes), *sorted(people)]),
        district=str(last.get("district") or a.get("district") or ""),
        town=str(last.get("town") or a.get("town") or ""),
        grid=str(a.get("grid") or ""),
        rule=str(last.get("rule") or a.get("rule") or ""),
        level=LEVELS.get(str(last.get("level") or a.get("level")), 0),
        status=str(last.get("to") or ""),
    )
