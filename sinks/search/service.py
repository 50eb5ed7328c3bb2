"""Search as a service: the feed process keeps an index caught up and answers queries.

:class:`SearchService` owns one index and one Redis client; :meth:`catch_up` (a few times a
second, from a worker thread) reads the streams after the index's positions, and
:meth:`search` answers a :class:`SearchRequest` (from the websocket ``search`` op or
``GET /api/search``), both under one lock: the index is a SQLite connection.
:func:`parse_request` checks what a client sent, naming the field in its error.

>>> parse_request({"q": "噪声", "kinds": ["ticket"], "level": "orange", "limit": 5})
SearchRequest(query='噪声', filters=Filters(from_ms=None, to_ms=None, kinds=('ticket',), \
districts=(), towns=(), rules=(), min_level=3, statuses=()), limit=5)
>>> parse_request({"q": "x", "limit": 500})
Traceback (most recent call last):
...
sinks.search.service.SearchRequestError: limit: must be an integer 1..50, got 500
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import redis

from citywatch.errors import CitywatchError
from citywatch.keys import Keys
from citywatch.registry import Registry
from citywatch.tiers import Locator
from sinks.search.documents import LEVELS
from sinks.search.feeder import CatchUp, SearchFeeder
from sinks.search.places import Gazetteer
from sinks.search.sqlite_index import Filters
from sinks.search.tokens import QueryError

__all__ = [
    "SearchRequest",
    "SearchRequestError",
    "SearchService",
    "parse_request",
    "registry_search",
]

log = logging.getLogger(__name__)

MAX_QUERY: Final = 200
MAX_LIMIT: Final = 50
_LISTS: Final = {
    "kinds": "kinds",
    "districts": "districts",
    "towns": "towns",
    "rules": "rules",
    "statuses": "statuses",
}


class SearchRequestError(CitywatchError):
    """A search request that does not fit: the message names the field."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    filters: Filters
    limit: int = 10


def _texts(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list) or len(value) > 64:
        msg = f"{name}: expected a list of at most 64 strings"
        raise SearchRequestError(msg)
    out = []
    for v in value:
        if not isinstance(v, str) or not 0 < len(v) <= 64:
            msg = f"{name}: {str(v)[:40]!r} is not a string of 1-64 characters"
            raise SearchRequestError(msg)
        out.append(v)
    return tuple(out)


def _ms(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        msg = f"{name}: expected epoch milliseconds, got {str(value)[:40]!r}"
        raise SearchRequestError(msg)
    return value


def parse_request(obj: Mapping[str, Any]) -> SearchRequest:
    """A checked :class:`SearchRequest` from a JSON object or HTTP query parameters."""
    q = obj.get("q")
    if not isinstance(q, str) or not q.strip():
        msg = "q: give the words to search for"
        raise SearchRequestError(msg)
    if len(q) > MAX_QUERY:
        msg = f"q: at most {MAX_QUERY} characters, got {len(q)}"
        raise SearchRequestError(msg)
    limit = obj.get("limit", 10)
    if isinstance(limit, str) and limit.isdigit():
        limit = int(limit)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        msg = f"limit: must be an integer 1..{MAX_LIMIT}, got {str(limit)[:20]}"
        raise SearchRequestError(msg)
    level = obj.get("level")
    if level is not None and level not in LEVELS:
        msg = f"level: {str(level)[:20]!r} is not one of {', '.join(LEVELS)}"
        raise SearchRequestError(msg)
    lists = {attr: _texts(name, obj.get(name)) for name, attr in _LISTS.items()}
    filters = Filters(
        from_ms=_ms("from", obj.get("from")),
        to_ms=_ms("to", obj.get("to")),
        min_level=LEVELS.get(str(level), 0) if level is not None else 0,
        **lists,
    )
    return SearchRequest(q.strip(), filters, limit)


class SearchService:
    """One index (``open_index``'s choice) fed from Redis; thread-safe behind one lock."""

    def __init__(
        self,
        index: Any,
        redis_url: str,
        keys: Keys,
        locator: Locator | None = None,
        places: Gazetteer | None = None,
    ) -> None:
        self.index = index
        self.index.places = places
        self.client = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.feeder = SearchFeeder(index, self.client, keys, locator)
        self.lock = threading.Lock()
        self.last: CatchUp | None = None

    def catch_up(self, max_pages: int = 4) -> CatchUp:
        """Index what the streams added (bounded per call, so a long backlog is spread out)."""
        with self.lock:
            self.last = self.feeder.catch_up(max_pages=max_pages)
            return self.last

    def search(self, req: SearchRequest) -> dict[str, Any]:
        """The JSON of the results (raises :class:`SearchRequestError` for an empty query)."""
        with self.lock:
            try:
                results = self.index.search(req.query, req.filters, limit=req.limit)
            except QueryError as exc:
                raise SearchRequestError(str(exc)) from exc
        return dict(results.to_dict())

    def close(self) -> None:
        with self.lock:
            self.index.close()
            self.client.close()


def registry_search(
    registry_dir: Path, registry: Registry | None = None
) -> tuple[Locator | None, Gazetteer | None]:
    """What search needs of the registry (``registry``, else the one in ``registry_dir``):
    the locator that places tickets and the place names of queries; (None, None) when there
    is no registry."""
    if registry is None:
        try:
            registry = Registry.load(registry_dir)
        except CitywatchError as exc:
            log.info("search: no registry at %s (%s); tickets keep their own places, "
                     "place names are only words", registry_dir, exc)  # fmt: skip
            return None, None
    locator = registry.locator() if registry.districts or registry.towns else None
    return locator, Gazetteer.from_registry(registry)
