"""Feeding the search index from the streams: alerts, hotline tickets and the audit.

:meth:`SearchFeeder.catch_up` reads each stream after the position the index stored, turns
its entries into documents and adds them with the new positions in one transaction, so an
index that was stopped (or a fresh one: ``rebuild``) catches up exactly where it stopped.
The feed service calls it a few times a second (a new alert or ticket is searchable within
about a second); ``citywatch search`` calls it once before answering.

A stream trimmed past the stored position (Redis keeps the newest entries) is read from its
head; ``trimmed`` says that some entries were lost to the trim.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import orjson
import redis

from citywatch.keys import Keys
from citywatch.tiers import Location, Locator
from sinks.search.documents import Doc, alert_doc, order_doc, ticket_doc

__all__ = ["CatchUp", "SearchFeeder", "SearchIndex"]

log = logging.getLogger(__name__)


class SearchIndex(Protocol):
    """What the feeder needs of an index (SQLite or PostgreSQL)."""

    def add(self, docs: list[Doc], positions: Mapping[str, str] | None = None) -> int: ...

    def positions(self) -> dict[str, str]: ...

    def get(self, doc_id: str) -> Doc | None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What one catch-up did: documents added per stream, entries it could not read."""

    added: dict[str, int]
    unreadable: int = 0
    trimmed: bool = False

    @property
    def total(self) -> int:
        return sum(self.added.values())


def _decode(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


class SearchFeeder:
    """Reads ``alerts``, ``tickets`` and ``audit`` after the index's positions, in pages."""

    STREAMS = ("alerts", "tickets", "audit")

    def __init__(
        self, index: SearchIndex, client: redis.Redis, keys: Keys, locator: Locator | None = None
    ) -> None:
        self.index = index
        self.client = client
        self.keys = keys
        #: Places tickets (district, town) for the filters; None: as the ticket says.
        self.locator = locator

    def rebuild(self, page: int = 5000) -> CatchUp:
        """Drop the index and read every stream from its head."""
        self.index.clear()
        return self.catch_up(page=page)

    def catch_up(self, page: int = 5000, max_pages: int | None = None) -> CatchUp:
        """Index everything after the stored positions (at most ``max_pages`` per stream)."""
        positions = self.index.positions()
        added: dict[str, int] = {}
        unreadable = 0
        trimmed = False
        for name in self.STREAMS:
            stream = getattr(self.keys, name)
            last = positions.get(name, "0-0")
            if last != "0-0":
                head = cast("list[Any]", self.client.xrange(stream, count=1))
                if head and _id_after(head[0][0].decode(), last, strict=True):
                    trimmed = True
            pages = 0
            while max_pages is None or pages < max_pages:
                rows = cast(
                    "list[tuple[bytes, dict[bytes, bytes]]]",
                    self.client.xrange(stream, min=f"({last}", count=page),
                )
                if not rows:
                    break
                docs, bad = self._docs(name, rows)
                unreadable += bad
                last = rows[-1][0].decode()
                self.index.add(docs, {name: last})
                added[name] = added.get(name, 0) + len(docs)
                pages += 1
                if len(rows) < page:
                    break
        if unreadable:
            log.warning("search: %d stream entries could not be read", unreadable)
        return CatchUp(added, unreadable, trimmed)

    def _docs(
        self, name: str, rows: list[tuple[bytes, dict[bytes, bytes]]]
    ) -> tuple[list[Doc], int]:
        docs: list[Doc] = []
        bad = 0
        if name == "audit":
            return self._orders(rows)
        field = b"a" if name == "alerts" else b"t"
        for _, fields in rows:
            value = _decode(fields.get(field))
            if not isinstance(value, dict):
                bad += 1
                continue
            try:
                docs.append(alert_doc(value) if name == "alerts" else self._ticket(value))
            except (KeyError, TypeError, ValueError):
                bad += 1
        return docs, bad

    def _ticket(self, t: dict[str, Any]) -> Doc:
        loc = self.locator
        if loc is not None and not t.get("town"):
            lat, lon = t.get("lat"), t.get("lon")
            where = None
            if isinstance(lat, float | int) and isinstance(lon, float | int):
                where = loc.locate(float(lat), float(lon))
            elif t.get("grid") in loc.grids:
                g = loc.grids[t["grid"]]
                where = Location(g.district, g.town, g.id)
            if where is not None:
                t = {**t, "district": t.get("district") or where.district, "town": where.town}
        return ticket_doc(t)

    def _orders(self, rows: list[tuple[bytes, dict[bytes, bytes]]]) -> tuple[list[Doc], int]:
        """Work-order documents: each audit event extends its order's document."""
        events: dict[str, list[dict[str, Any]]] = {}
        bad = 0
        for _, fields in rows:
            ev = _decode(fields.get(b"e"))
            if not isinstance(ev, dict) or not ev.get("id"):
                bad += 1
                continue
            events.setdefault(str(ev["id"]), []).append(ev)
        docs: list[Doc] = []
        for alert_id, evs in events.items():
            prior = self.index.get(f"order:{alert_id}")
            alert = self.index.get(f"alert:{alert_id}")
            history = [{"id": alert_id, "note": prior.body}] if prior is not None else []
            a = {"title": alert.title, "district": alert.district, "town": alert.town,
                 "grid": alert.grid, "rule": alert.rule} if alert is not None else None  # fmt: skip
            try:
                docs.append(order_doc([*history, *evs], a))
            except (KeyError, TypeError, ValueError):
                bad += 1
        return docs, bad


def _id_after(a: str, b: str, *, strict: bool) -> bool:
    """Stream id ``a`` after ``b``."""
    ta = tuple(int(x) for x in a.split("-"))
    tb = tuple(int(x) for x in b.split("-"))
    return ta > tb if strict else ta >= tb
