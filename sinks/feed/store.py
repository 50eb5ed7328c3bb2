"""Redis access for the feed service (redis.asyncio): stream paging, snapshots, work orders.

Keys are those of docs/contracts.md (``citywatch.keys.Keys``) plus two the feed service owns:

- ``{prefix}wo:due`` sorted set: alert id -> the time its work order must be looked at again
  (a sign-off or handling deadline, or the end of a shelving). The escalator polls it.
- ``{prefix}wo:active`` sorted set: ids of work orders not new and not closed (score =
  updated_ms), so a fresh console also sees dispatched orders whose alert has resolved.

Every transition is one Lua script run (atomic): compare ``rev`` with what the caller read,
write the hash fields, XADD the audit event, update both sorted sets. A lost race returns
``None`` and the caller re-reads and re-plans (optimistic concurrency, no locks held).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

import orjson
import redis.asyncio as aioredis

from citywatch.keys import Keys
from sinks.feed.lifecycle import Transition, WorkOrder
from sinks.feed.protocol import sid_key

__all__ = ["FeedStore"]

#: KEYS: hash, audit, due, active. ARGV: expected rev, event JSON, audit maxlen, id, due score
#: ("" = remove), active score ("" = remove), then field/value pairs.
_APPLY: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 'missing'} end
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
if rev ~= ARGV[1] then return {0, 'conflict'} end
local n = #ARGV
for i = 7, n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
local aid = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'e', ARGV[2])
if ARGV[5] == '' then redis.call('ZREM', KEYS[3], ARGV[4])
else redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4]) end
if ARGV[6] == '' then redis.call('ZREM', KEYS[4], ARGV[4])
else redis.call('ZADD', KEYS[4], ARGV[6], ARGV[4]) end
return {1, aid}
"""

#: Lifecycle fields read with the alert (the sink's fields plus ours).
ORDER_FIELDS: Final = (
    "status",
    "dept",
    "assignee",
    "shelved_until",
    "deadline_ms",
    "updated_ms",
    "updated_by",
    "overdue",
    "rev",
    "centre",
)
_META_FIELDS: Final = ("a", "district", "rule", "level")
AUDIT_MAXLEN: Final = 1_000_000


class FeedStore:
    """The feed's view of Redis; one per process, sharing one connection pool."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.r = client
        self.keys = keys
        self.due_key = keys.wo_due
        self.active_key = keys.wo_active
        self._apply = client.register_script(_APPLY)

    @classmethod
    def from_url(cls, url: str, keys: Keys) -> FeedStore:
        return cls(aioredis.Redis.from_url(url, health_check_interval=30), keys)

    async def close(self) -> None:
        await self.r.aclose()

    # -- streams --------------------------------------------------------------------------

    async def last_id(self, stream: str) -> str:
        """The newest entry id of ``stream`` ("0-0" when empty or missing)."""
        rows = await self.r.xrevrange(stream, count=1)
        return _str(rows[0][0]) if rows else "0-0"

    async def trimmed_past(self, stream: str, since: str) -> bool:
        """True when entries after ``since`` were trimmed away (backfill would leave a gap)."""
        try:
            info = await self.r.xinfo_stream(stream)
        except aioredis.ResponseError:  # no such key: nothing was ever trimmed
            return False
        first = info.get("first-entry")
        if not first:
            return False
        removed = int(info.get("entries-added", 0)) > int(info.get("length", 0))
        # Trimming removes the oldest entries: a gap is possible only before the first one.
        return removed and sid_key(_str(first[0])) > sid_key(since)

    async def page(
        self, stream: str, after: str, upto: str, count: int = 500
    ) -> AsyncIterator[list[tuple[str, dict[bytes, bytes]]]]:
        """Entries in ``(after, upto]``, paged with XRANGE (exclusive start, Redis >= 6.2)."""
        start = after
        while True:
            rows = await self.r.xrange(stream, min=f"({start}", max=upto, count=count)
            if not rows:
                return
            batch = [(_str(i), f) for i, f in rows]
            yield batch
            if len(rows) < count:
                return
            start = batch[-1][0]

    async def read_live(
        self, positions: dict[str, str], block_ms: int, count: int = 1000
    ) -> list[tuple[str, list[tuple[str, dict[bytes, bytes]]]]]:
        """One XREAD BLOCK over several streams from ``positions`` (stream -> last id)."""
        resp = await self.r.xread(positions, count=count, block=block_ms)  # type: ignore[arg-type]
        return [(_str(s), [(_str(i), f) for i, f in rows]) for s, rows in resp or []]

    # -- alerts and orders ----------------------------------------------------------------

    async def open_ids(self, limit: int = 5000) -> list[str]:
        """Ids of firing alerts (highest level, then oldest first) and of active work orders."""
        pipe = self.r.pipeline(transaction=False)
        pipe.zrevrange(self.keys.open, 0, limit - 1)
        pipe.zrevrange(self.active_key, 0, limit - 1)
        firing, active = await pipe.execute()
        seen: dict[str, None] = {}
        for raw in [*firing, *active]:
            seen.setdefault(_str(raw), None)
        return list(seen)

    async def load(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """``[{"alert": {...}, "wo": {...}}]`` for the ids that have a readable alert."""
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for aid in ids:
            pipe.hmget(self.keys.alert(aid), ["a", *ORDER_FIELDS])
        out = []
        rows: list[Any] = await pipe.execute()
        for values in rows:
            raw = values[0]
            if raw is None:
                continue
            try:
                alert = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            order = WorkOrder.from_fields(dict(zip(ORDER_FIELDS, values[1:], strict=True)))
            out.append({"alert": alert, "wo": order.to_dict()})
        return out

    async def active_centres(self, limit: int = 100_000) -> dict[str, str]:
        """Alert id -> the centre owning its work order, for the active orders that have one."""
        ids = [_str(x) for x in await self.r.zrevrange(self.active_key, 0, limit - 1)]
        out: dict[str, str] = {}
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            pipe = self.r.pipeline(transaction=False)
            for aid in chunk:
                pipe.hget(self.keys.alert(aid), "centre")
            for aid, centre in zip(chunk, await pipe.execute(), strict=True):
                if centre:
                    out[aid] = _str(centre)
        return out

    async def read_order(self, aid: str) -> tuple[WorkOrder, dict[str, Any]] | None:
        """The work order and alert meta (district, rule, level) of ``aid``; None if unknown."""
        values: list[Any] = await self.r.hmget(  # type: ignore[misc]
            self.keys.alert(aid), [*_META_FIELDS, *ORDER_FIELDS]
        )
        if all(v is None for v in values):
            return None
        meta = dict(zip(_META_FIELDS, values[: len(_META_FIELDS)], strict=True))
        alert: dict[str, Any] = {}
        if meta.get("a"):
            try:
                alert = orjson.loads(meta["a"])
            except orjson.JSONDecodeError:
                alert = {}
        for name in ("district", "rule", "level"):
            if meta.get(name) is not None:
                alert.setdefault(name, _str(meta[name]))
        order = WorkOrder.from_fields(
            dict(zip(ORDER_FIELDS, values[len(_META_FIELDS) :], strict=True))
        )
        return order, alert

    async def apply(self, t: Transition) -> str | None:
        """Write ``t`` if the order's ``rev`` is still ``t.before.rev``: the audit id, or None."""
        order = t.order
        due = order.due_ms
        args: list[Any] = [
            str(t.before.rev),
            orjson.dumps(t.event),
            AUDIT_MAXLEN,
            t.event["id"],
            str(due) if due else "",
            str(order.updated_ms) if order.is_active else "",
        ]
        for k, v in order.to_fields().items():
            args.extend((k, v))
        keys = [self.keys.alert(t.event["id"]), self.keys.audit, self.due_key, self.active_key]
        ok, value = await self._apply(keys=keys, args=args)
        if int(ok) == 1:
            return _str(value)
        if _str(value) == "missing":
            msg = f"alert {t.event['id']!r} is unknown"
            raise LookupError(msg)
        return None

    async def due(self, now_ms: int, limit: int = 200) -> list[str]:
        """Ids whose deadline or shelving end is at or before ``now_ms``."""
        rows = await self.r.zrangebyscore(self.due_key, "-inf", now_ms, start=0, num=limit)
        return [_str(r) for r in rows]

    async def drop_due(self, aid: str) -> None:
        await self.r.zrem(self.due_key, aid)

    async def history(
        self, aid: str, *, scan: int = 50_000, limit: int = 200
    ) -> list[dict[str, Any]]:
        """The audit events of one alert, oldest first, from the newest ``scan`` entries."""
        out: list[dict[str, Any]] = []
        upto, seen = "+", 0
        while seen < scan and len(out) < limit:
            rows = await self.r.xrevrange(self.keys.audit, max=upto, min="-", count=1000)
            if not rows:
                break
            seen += len(rows)
            for sid, fields in rows:
                try:
                    ev = orjson.loads(fields.get(b"e", b""))
                except orjson.JSONDecodeError:
                    continue
                if isinstance(ev, dict) and ev.get("id") == aid:
                    out.append({"aid": _str(sid), "event": ev})
            if len(rows) < 1000:
                break
            upto = f"({_str(rows[-1][0])}"
        out.reverse()
        return out[-limit:]

    async def audit_events(self, count: int = 1000) -> AsyncIterator[dict[str, Any]]:
        """Every audit event in stream order (paged), skipping unreadable ones."""
        async for batch in self.page(self.keys.audit, "0-0", "+", count):
            for _, fields in batch:
                try:
                    ev = orjson.loads(fields.get(b"e", b""))
                except orjson.JSONDecodeError:
                    continue
                if isinstance(ev, dict):
                    yield ev


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes | bytearray) else str(v)
