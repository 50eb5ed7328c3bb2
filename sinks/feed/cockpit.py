"""What the leader cockpit shows, aggregated from Redis once for every viewer.

One :class:`Cockpit` per feed process computes the picture at most once per ``cache_ms``
(2 s) however many cockpits ask: concurrent requests wait for the same computation, later
ones within the window get the cached result. Nothing here scans Redis per client.

The picture (docs/cockpit.md has every field):

* firing alerts by level, open and overdue work orders, per district and per town, from the
  open alerts and active work orders (``cw:open``, ``cw:wo:active``, the alert hashes);
* work orders per centre (open, new, overdue), each order in the centre that owns it now;
* records per second by source, from the ``in:<kind>`` counters of ``cw:counts`` sampled at
  each computation (the rate over the last ~10 s);
* air: each station's newest hourly AQI from ``cw:obs:air.hourly`` when the flow writes it,
  else the firing air alerts;
* hotline: tickets per town and district over the last day of ticket time (the 24 h before the
  newest ticket), from ``cw:tickets``, read incrementally: each computation reads only the
  tickets added since the last;
* the firing alerts themselves (capped), for markers: the hazmat, work-site and overall maps.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson

from citywatch.keys import Keys
from citywatch.tiers import Locator, Tier
from sinks.feed.lifecycle import ACTIVE, Status, routed_centre
from sinks.feed.store import FeedStore

__all__ = ["Cockpit", "TicketWindow"]

LEVELS: Final = ("red", "orange", "yellow", "blue")
#: At most this many alerts go out as markers (the highest levels first, as cw:open sorts).
MAX_MARKERS: Final = 3000
DAY_MS: Final = 86_400_000
_RATE_WINDOW_S: Final = 10.0


def _str(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)


class TicketWindow:
    """Tickets per town and district over the ``window_ms`` before the newest ticket's time.

    Fed from the ``cw:tickets`` stream in order; an at-least-once repeat (same ticket id) is
    counted once. ``locate(ticket) -> (district, town)`` places a ticket (its grid, else its
    point; "" when unknown).

    >>> w = TicketWindow(lambda t: (t["d"], t["g"]), window_ms=100)
    >>> for n, ts in enumerate([10, 50, 120, 120]):
    ...     w.add({"ticket": f"t{min(n, 2)}", "ts": ts, "d": "崇川区", "g": "T1"})
    >>> w.by_town["T1"], w.newest_ts  # t0 (10) fell out of (20, 120]; t2 came twice
    (2, 120)
    """

    def __init__(
        self,
        locate: Callable[[Mapping[str, Any]], tuple[str, str]],
        window_ms: int = DAY_MS,
        max_ids: int = 500_000,
    ) -> None:
        self.locate = locate
        self.window_ms = window_ms
        self.by_town: Counter[str] = Counter()
        self.by_district: Counter[str] = Counter()
        self.newest_ts = 0
        self.position = "0-0"
        self._heap: list[tuple[int, str, str, str]] = []
        self._ids: set[str] = set()
        self._max_ids = max_ids

    def add(self, ticket: Mapping[str, Any]) -> None:
        try:
            ts = int(ticket["ts"])
            tid = str(ticket.get("ticket") or "")
        except (KeyError, TypeError, ValueError):
            return
        if tid in self._ids or ts <= self.newest_ts - self.window_ms:
            return
        district, town = self.locate(ticket)
        self._ids.add(tid)
        heapq.heappush(self._heap, (ts, tid, district, town))
        self.by_town[town] += 1
        self.by_district[district] += 1
        if ts > self.newest_ts:
            self.newest_ts = ts
            self._expire()

    def _expire(self) -> None:
        cutoff = self.newest_ts - self.window_ms
        while self._heap and self._heap[0][0] <= cutoff:
            _, tid, district, town = heapq.heappop(self._heap)
            self._ids.discard(tid)
            for counter, key in ((self.by_town, town), (self.by_district, district)):
                counter[key] -= 1
                if counter[key] <= 0:
                    del counter[key]
        if len(self._ids) > self._max_ids:  # a flood of tickets within a day: forget repeats
            self._ids = {t for _, t, _, _ in self._heap}

    def __len__(self) -> int:
        return len(self._heap)


class Cockpit:
    """The aggregated picture, computed at most once per ``cache_ms``."""

    def __init__(
        self,
        store: FeedStore,
        keys: Keys,
        *,
        rules: Mapping[str, Tier],
        locator: Locator | None = None,
        clock: Callable[[], int] = lambda: int(time.time() * 1000),
        cache_ms: int = 2000,
        outlines: Mapping[str, Any] | None = None,
        scan_per_call: int = 50_000,
    ) -> None:
        self.store = store
        self.keys = keys
        self.rules = rules
        self.locator = locator
        self.clock = clock
        self.cache_ms = cache_ms
        self.outlines = dict(outlines or {})
        self.scan_per_call = scan_per_call
        self.computations = 0
        self.tickets = TicketWindow(self._locate_ticket)
        self._samples: deque[tuple[float, dict[str, int]]] = deque()
        self._cache: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def picture(self) -> dict[str, Any]:
        """The current picture (cached for ``cache_ms``; one computation at a time)."""
        async with self._lock:
            now = time.monotonic()
            if self._cache is not None and (now - self._cache[0]) * 1000 < self.cache_ms:
                return self._cache[1]
            result = await self._compute()
            self._cache = (time.monotonic(), result)
            return result

    async def _compute(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.computations += 1
        ids = await self.store.open_ids(limit=20_000)
        items: list[dict[str, Any]] = []
        for start in range(0, len(ids), 1000):
            items.extend(await self.store.load(ids[start : start + 1000]))
        rates, counters = await self._rates()
        await self._read_tickets()
        air = await self._air()
        districts: dict[str, dict[str, Any]] = {}
        towns: dict[str, dict[str, Any]] = {}
        centres: dict[str, dict[str, int]] = {}
        firing = dict.fromkeys(LEVELS, 0)
        markers: list[dict[str, Any]] = []
        open_total = overdue_total = 0
        for item in items:
            a, wo = item["alert"], item["wo"]
            status = str(wo.get("status") or "new")
            is_firing = a.get("state") == "firing"
            active = status in _ACTIVE
            is_open = active or (status == Status.NEW.value and is_firing)
            overdue = bool(wo.get("overdue")) and active
            level = str(a.get("level") or "")
            district, town = str(a.get("district") or ""), str(a.get("town") or "")
            centre = str(wo.get("centre") or routed_centre(a, self.rules) or "city")
            for key, table in ((district, districts), (town, towns)):
                if not key:
                    continue
                row = table.get(key)
                if row is None:
                    row = table[key] = {"firing": dict.fromkeys(LEVELS, 0), "open": 0, "overdue": 0}
                if is_firing and level in row["firing"]:
                    row["firing"][level] += 1
                row["open"] += is_open
                row["overdue"] += overdue
            if is_open:
                c = centres.setdefault(centre, {"open": 0, "new": 0, "overdue": 0})
                c["open"] += 1
                c["new"] += status == Status.NEW.value
                c["overdue"] += overdue
            open_total += is_open
            overdue_total += overdue
            if is_firing and level in firing:
                firing[level] += 1
            if is_firing and len(markers) < MAX_MARKERS and isinstance(a.get("lat"), float | int):
                markers.append(
                    {
                        "id": a.get("id"),
                        "rule": a.get("rule"),
                        "level": level,
                        "lat": a.get("lat"),
                        "lon": a.get("lon"),
                        "title": a.get("title"),
                        "district": district or None,
                        "town": town or None,
                        "status": status,
                        "overdue": overdue,
                        "centre": centre,
                        "first_ts": a.get("first_ts"),
                        "subject": a.get("subject"),
                    }
                )
        for counts, table in ((self.tickets.by_district, districts), (self.tickets.by_town, towns)):
            for name, row in table.items():
                row["tickets"] = counts.get(name, 0)
            for name, n in counts.items():
                if name and name not in table:
                    table[name] = {
                        "firing": dict.fromkeys(LEVELS, 0),
                        "open": 0,
                        "overdue": 0,
                        "tickets": n,
                    }
        now = self.clock()
        return {
            "ts_ms": now,
            "took_ms": round((time.perf_counter() - t0) * 1000, 1),
            "outlines": self.outlines,
            "totals": {
                "firing": firing,
                "open": open_total,
                "overdue": overdue_total,
                "records_per_s": round(sum(rates.values()), 1) if rates is not None else None,
                "records": counters.get("records"),
                "lag_ms": counters.get("lag_ms"),
                "watermark_ms": counters.get("watermark_ms"),
            },
            "rates": rates,
            "districts": districts,
            "towns": towns,
            "centres": dict(sorted(centres.items(), key=_centre_order)),
            "alerts": markers,
            "air": air,
            "hotline": {
                "window_ms": self.tickets.window_ms,
                "until_ts": self.tickets.newest_ts or None,
                "tickets": len(self.tickets),
            },
        }

    async def _rates(self) -> tuple[dict[str, float] | None, dict[str, int]]:
        """Records per second by source over the last ~10 s of samples (None: one sample)."""
        raw = await self.store.r.hgetall(self.keys.counts)  # type: ignore[misc]
        counters: dict[str, int] = {}
        for k, v in raw.items():
            try:
                counters[_str(k)] = int(v)
            except ValueError:
                continue
        inputs = {k[3:]: v for k, v in counters.items() if k.startswith("in:")}
        now = time.monotonic()
        self._samples.append((now, inputs))
        while len(self._samples) > 2 and now - self._samples[1][0] >= _RATE_WINDOW_S:
            self._samples.popleft()
        first_t, first = self._samples[0]
        if now - first_t < 0.5:
            return None, counters
        span = now - first_t
        rates = {k: round(max(0, v - first.get(k, 0)) / span, 1) for k, v in sorted(inputs.items())}
        return rates, counters

    async def _read_tickets(self) -> None:
        """Tickets added since the last call (on the first, the newest day's worth)."""
        w, stream = self.tickets, self.keys.tickets
        if w.position == "0-0":
            head = await self.store.last_id(stream)
            if head == "0-0":
                return
            await self._backfill_tickets(head)
            w.position = head
            return
        read = 0
        async for batch in self.store.page(stream, w.position, "+", count=2000):
            for sid, fields in batch:
                w.position = sid
                _add_ticket(w, fields)
            read += len(batch)
            if read >= self.scan_per_call:  # a flood: carry on at the next computation
                break

    async def _backfill_tickets(self, head: str) -> None:
        """Newest first from ``head`` until a page is wholly older than the window."""
        w, upto, seen = self.tickets, head, 0
        while seen < 1_000_000:
            rows = await self.store.r.xrevrange(self.keys.tickets, max=upto, min="-", count=2000)
            if not rows:
                return
            seen += len(rows)
            newest_in_page = None
            for _, fields in rows:
                ts = _add_ticket(w, fields)
                if ts is not None:
                    newest_in_page = ts if newest_in_page is None else max(newest_in_page, ts)
            if newest_in_page is not None and newest_in_page <= w.newest_ts - w.window_ms:
                return
            if len(rows) < 2000:
                return
            upto = f"({_str(rows[-1][0])}"

    def _locate_ticket(self, t: Mapping[str, Any]) -> tuple[str, str]:
        loc = self.locator
        if loc is None:
            return "", ""
        grid = loc.grids.get(str(t.get("grid") or ""))
        if grid is not None:
            return grid.district, grid.town
        lat, lon = t.get("lat"), t.get("lon")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            where = loc.locate(float(lat), float(lon))
            return where.district or "", where.town or ""
        return "", ""

    async def _air(self) -> dict[str, Any]:
        """Stations' newest hourly AQI (``cw:obs:air.hourly``), else the firing air alerts."""
        raw = await self.store.r.hgetall(self.keys.observed("air.hourly"))  # type: ignore[misc]
        stations = []
        for subject, value in raw.items():
            try:
                o = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            values = o.get("values") or {} if isinstance(o, dict) else {}
            aqi = values.get("aqi") if isinstance(values, dict) else None
            if not isinstance(aqi, int | float) or not isinstance(o.get("lat"), int | float):
                continue
            stations.append(
                {
                    "id": _str(subject).split(":", 1)[-1],
                    "lat": o["lat"],
                    "lon": o["lon"],
                    "aqi": aqi,
                    "primary": values.get("primary"),
                    "ts": o.get("ts"),
                    "district": o.get("district"),
                }
            )
        stations.sort(key=lambda s: s["id"])
        return {"source": "observations" if stations else "alerts", "stations": stations}


_ACTIVE: Final = frozenset(s.value for s in ACTIVE)
_TIER_RANK: Final = {"city": 0, "county": 1, "town": 2}


def _centre_order(item: tuple[str, Any]) -> tuple[int, str]:
    return _TIER_RANK.get(item[0].split(":", 1)[0], 3), item[0]


def _add_ticket(w: TicketWindow, fields: Mapping[bytes, bytes]) -> int | None:
    raw = fields.get(b"t")
    if not raw:
        return None
    try:
        t = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(t, dict):
        return None
    w.add(t)
    ts = t.get("ts")
    return int(ts) if isinstance(ts, int) else None
