"""The Redis sink: alerts, dead letters and counters into the Redis layout of docs/contracts.md.

Bytewax dynamic sinks are at-least-once: after a crash the flow replays from its last snapshot
and writes some items again. Every write here is therefore idempotent, decided inside Redis by
one Lua script per item (atomic; Redis 7.0 has no idempotent XADD):

* an :class:`~citywatch.alerts.Alert` is applied only if its ``version`` is above the stored
  one: then the ``cw:alert:{id}`` hash (fields ``a``, ``version``, ``state``, ``level``, ``rule``,
  ``district``, ``first_ts``, ``last_ts``; ``status=new`` only if absent), one ``cw:alerts`` entry
  (approximate MAXLEN), ``cw:open`` (added while firing, removed on resolve) and, when the
  level is new for the id, ``cw:counts`` ``alerts:<rule>:<level>``. A resolved alert that
  fires again (the engine reopened it: same id, next version) is back in ``cw:open``; if its
  work order was ``closed``, the problem came back: the order is reopened to ``new`` (actor
  ``system``, reason ``alert fired again``, one ``reopen`` event in ``cw:audit``, ``rev`` + 1),
  so it is dispatched afresh; an order still being worked on (or new, or shelved) is left as
  it is;
* a :class:`Touch` (the newest values of an alert version already written, which the engine
  merged without emitting a version: a newer ``last_ts``, ``count``, score) replaces the
  ``a`` and ``last_ts`` fields of ``cw:alert:{id}`` only while the hash holds that very version,
  firing, with an older ``last_ts``: no stream entry, no counts (the console's snapshot reads
  the hash, so it shows the hour the alert was last seen; the stream has the versions);
* a :class:`DeadRecord` carries its source partition and record offset; it is appended to
  ``cw:deadletter`` and counted as ``dead:<reason class>`` only if that offset is above the
  partition's high-water mark (``cw:sink:hw``, per run);
* an :class:`IngestMark` (one per source batch: first offset and one kind code per record)
  counts ``in:<kind>`` and ``records`` for the offsets not counted yet, so
  ``records == sum(in:*) + sum(dead:*)`` holds across crashes and replays;
* an :class:`~citywatch.alerts.Observation` (a model's measurement, e.g. an hourly AQI)
  replaces its subject's entry in ``cw:obs:{name}`` only if it is newer (Lua), and is
  appended to ``cw:obs:{name}:log`` (at-least-once, like tickets);
* a :class:`TicketRecord` (an accepted hotline ticket) is appended to ``cw:tickets``
  (approximate MAXLEN): at-least-once, since a replay after a crash may append it again;
  its readers (search, the console) key tickets by their id.

One pipeline per batch, and in it one script call for the batch's alert versions and one for
the observations of each name (each up to :data:`_CHUNK` items, in the batch's order), so the
round trip, the commands and their replies do not grow with every record. When Redis goes away
the partition retries the whole batch with capped exponential backoff for up to
``max_outage_s``: the flow stalls (backpressure) and nothing is lost once Redis is back within
that bound; after it, the partition raises :class:`~citywatch.errors.StoreError` (the run
fails; with recovery a rerun resumes from the last snapshot). The client is created late, in
the partition.

**Redis losing data.** Each batch also counts itself in ``cw:sink:mark`` (one field per run
and worker). A count lower than the partition expects means Redis came back empty or from an
older snapshot; the partition then re-publishes the latest version it wrote of every alert
that is still open (it keeps them: the engine's open alerts as last published) and of the
last ``keep_resolved`` alerts it resolved, each one idempotent by ``(id, version)``, so Redis
and the engine agree again. Earlier versions of an alert, older resolved alerts, the audit
stream and work-order fields that Redis lost cannot be rebuilt here (docs/operations.md,
"Guarantees").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from citywatch.alerts import Alert, AlertState, Observation
from citywatch.errors import StoreError
from citywatch.events import KINDS, DeadLetter, Hotline, encode
from citywatch.keys import Keys
from citywatch.redisconn import TRANSIENT, reason, where

__all__ = [
    "KIND_CODES",
    "NOT_COUNTED",
    "DeadRecord",
    "Gauge",
    "IngestMark",
    "OpenAlerts",
    "RedisSink",
    "Republish",
    "TicketRecord",
    "Touch",
    "reason_class",
]

log = logging.getLogger(__name__)

#: One byte per input record in an :class:`IngestMark`: the index of its kind in ``KINDS``.
KIND_CODES: Final = {k: i for i, k in enumerate(KINDS)}
#: The code of a record that is not counted as valid input (it was dead-lettered).
NOT_COUNTED: Final = 255


@dataclass(frozen=True, slots=True)
class DeadRecord:
    """A dead letter and where it came from: ``seq`` is its offset in source ``partition``."""

    dead: DeadLetter
    partition: str
    seq: int


@dataclass(frozen=True, slots=True)
class IngestMark:
    """Input accounting for one source batch: offsets ``start .. start+len(codes)-1``.

    ``codes[i]`` is the :data:`KIND_CODES` value of record ``start+i``, or :data:`NOT_COUNTED`.
    ``high_ts`` is the partition's newest event time (for the lag gauge).
    """

    partition: str
    start: int
    codes: bytes
    high_ts: int = 0


@dataclass(frozen=True, slots=True)
class Republish:
    """An alert version published before, sent again so a Redis that lost it has it again
    (a resumed engine sends its open alerts once). Written like an :class:`Alert`
    (idempotent), but never taken for news by the stages downstream of the engine."""

    alert: Alert


class OpenAlerts:
    """The newest version of every alert not resolved, from the versions seen (repeats and
    stale versions change nothing), and of the last ``keep_resolved`` alerts resolved.

    >>> from citywatch.alerts import AlertState, Level, Subject
    >>> a = Alert(id="a1", fingerprint="f", rule="r", level=Level.RED, state=AlertState.FIRING,
    ...           subject=Subject("station", "S1"), first_ts=1, last_ts=1, version=1)
    >>> seen = OpenAlerts(keep_resolved=1)
    >>> seen.note(a.evolve(version=2)); seen.note(a); [x.version for x in seen]
    [2]
    >>> seen.note(a.evolve(version=3, state=AlertState.RESOLVED)); len(seen), len(seen.resolved)
    (0, 1)
    >>> seen.note(a.evolve(id="a2", state=AlertState.RESOLVED)); list(seen.resolved)
    ['a2']
    >>> seen.note(a.evolve(id="a2", version=2)); list(seen.resolved), [x.id for x in seen]
    ([], ['a2'])
    """

    __slots__ = ("alerts", "keep_resolved", "resolved")

    def __init__(self, keep_resolved: int = 0) -> None:
        self.alerts: dict[str, Alert] = {}
        self.keep_resolved = keep_resolved
        #: The last ``keep_resolved`` resolved alerts, oldest first.
        self.resolved: dict[str, Alert] = {}

    def note(self, alert: Alert) -> None:
        known = self.alerts.get(alert.id) or self.resolved.get(alert.id)
        if known is not None and known.version >= alert.version:
            return
        if alert.state is AlertState.RESOLVED:
            self.alerts.pop(alert.id, None)
            if self.keep_resolved:
                self.resolved.pop(alert.id, None)
                self.resolved[alert.id] = alert
                if len(self.resolved) > self.keep_resolved:
                    del self.resolved[next(iter(self.resolved))]
        else:
            self.resolved.pop(alert.id, None)  # reopened: open again
            self.alerts[alert.id] = alert

    def note_all(self, items: Sequence[Any]) -> None:
        """Note every alert in ``items`` (bare, or the second of a ``(cause, alert)`` pair)."""
        for x in items:
            t = type(x)
            if t is tuple and len(x) == 2:
                x = x[1]
                t = type(x)
            if t is Alert:
                self.note(x)

    def __iter__(self) -> Iterator[Alert]:
        """The open alerts (the resolved ones are in :attr:`resolved`)."""
        return iter(list(self.alerts.values()))

    def __len__(self) -> int:
        return len(self.alerts)

    def __getstate__(self) -> tuple[dict[str, Alert], int, dict[str, Alert]]:
        return self.alerts, self.keep_resolved, self.resolved

    def __setstate__(self, state: tuple[dict[str, Alert], int, dict[str, Alert]]) -> None:
        self.alerts, self.keep_resolved, self.resolved = state


@dataclass(frozen=True, slots=True)
class Touch:
    """The newest values of an alert version already published (same ``version``; newer
    ``last_ts``, ``count``, score, evidence), for the alert's hash only: not a version, never
    taken for news by the stages downstream of the engine."""

    alert: Alert


@dataclass(frozen=True, slots=True)
class TicketRecord:
    """An accepted hotline ticket, bound for the ``tickets`` stream."""

    event: Hotline


@dataclass(frozen=True, slots=True)
class Gauge:
    """Absolute values for ``cw:counts`` fields (HSET: writing one twice changes nothing)."""

    fields: dict[str, int]


def reason_class(reason: str) -> str:
    """The counter class of a dead-letter reason: the field it names, else its kind.

    >>> [reason_class(r) for r in ("pm25: expected `float | null`, got `str`",
    ...     "invalid JSON: x", "expected `object`, got `array`", "late: ts 5 is 700.0 s behind",
    ...     "lat/lon: (1, 2) outside the configured region")]
    ['pm25', 'invalid_json', 'schema', 'late', 'lat/lon']
    """
    head = reason.split(":", 1)[0].strip() if ":" in reason else ""
    if head and all(c.isalnum() or c in "._/[]" for c in head):
        return head.lower()[:40]
    if head:
        return "".join(c if c.isalnum() else "_" for c in head.lower())[:40]
    return "schema"


#: Alert versions, in order, in one call. KEYS: alerts, open, counts, audit, then one hash per
#: version. ARGV: alerts maxlen, now (ms), audit maxlen, then 10 per version: id, version,
#: JSON, state, level, rule, district, first_ts, last_ts, open score. Returns how many were
#: applied (a version not above the stored one is skipped). A closed work order of a reopened
#: alert goes back to ``new``: the fields and audit event of ``sinks.feed.lifecycle.plan``'s
#: ``reopen``, with no centre yet (the feed routes an order that has none, as it does a new one).
_ALERT_LUA: Final = """
local applied = 0
for i = 5, #KEYS do
  local key = KEYS[i]
  local j = 3 + (i - 5) * 10
  local id, version, json, state = ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], ARGV[j + 4]
  local level, rule, district = ARGV[j + 5], ARGV[j + 6], ARGV[j + 7]
  local stored = tonumber(redis.call('HGET', key, 'version') or '0')
  if tonumber(version) > stored then
    applied = applied + 1
    local prev_level = redis.call('HGET', key, 'level')
    local prev_state = redis.call('HGET', key, 'state')
    redis.call('HSET', key, 'a', json, 'version', version, 'state', state,
               'level', level, 'rule', rule, 'district', district,
               'first_ts', ARGV[j + 8], 'last_ts', ARGV[j + 9])
    redis.call('HSETNX', key, 'status', 'new')
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'a', json)
    if state == 'firing' then
      redis.call('ZADD', KEYS[2], ARGV[j + 10], id)
      if prev_level ~= level then
        redis.call('HINCRBY', KEYS[3], 'alerts:' .. rule .. ':' .. level, 1)
      end
      if prev_state == 'resolved' and redis.call('HGET', key, 'status') == 'closed' then
        local rev = tonumber(redis.call('HGET', key, 'rev') or '0') + 1
        local dept = redis.call('HGET', key, 'dept')
        if not dept or dept == '' then dept = cjson.null end
        local where = district
        if where == '' then where = cjson.null end
        redis.call('HSET', key, 'status', 'new', 'rev', rev, 'dept', '', 'assignee', '',
                   'shelved_until', '0', 'deadline_ms', '0', 'overdue', '', 'centre', '',
                   'updated_ms', ARGV[2], 'updated_by', 'system')
        local event = cjson.encode({
          id = id, action = 'reopen', actor = 'system', ts_ms = tonumber(ARGV[2]),
          from = 'closed', to = 'new', dept = dept, assignee = cjson.null,
          deadline_ms = cjson.null, overdue = cjson.null, rev = rev, centre = cjson.null,
          tier = cjson.null, reason = 'alert fired again', district = where,
          rule = rule, level = level})
        redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*', 'e', event)
      end
    else
      redis.call('ZREM', KEYS[2], id)
    end
  end
end
return applied
"""

#: Touches, in order. KEYS: one alert hash each. ARGV: version, last_ts, JSON per touch.
_TOUCH_LUA: Final = """
local done = 0
for i = 1, #KEYS do
  local j = (i - 1) * 3
  local h = redis.call('HMGET', KEYS[i], 'version', 'state', 'last_ts')
  if h[1] == ARGV[j + 1] and h[2] == 'firing'
     and tonumber(h[3] or '0') <= tonumber(ARGV[j + 2]) then
    redis.call('HSET', KEYS[i], 'a', ARGV[j + 3], 'last_ts', ARGV[j + 2])
    done = done + 1
  end
end
return done
"""

_DEAD_LUA: Final = """
local hw = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if tonumber(ARGV[2]) <= hw then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
           'raw', ARGV[3], 'source', ARGV[4], 'reason', ARGV[5])
redis.call('HINCRBY', KEYS[3], 'dead:' .. ARGV[6], 1)
redis.call('HINCRBY', KEYS[3], 'records', 1)
return 1
"""

#: The observations of one name, in order, in one call. KEYS: the newest-per-subject hash, the
#: log stream. ARGV: log maxlen, the number of logged payloads, those payloads, then subject,
#: ts, payload of the newest of each subject in the call: it replaces the stored one unless
#: that is newer (its ``ts``).
_OBS_LUA: Final = """
local n = tonumber(ARGV[2])
for i = 3, n + 2 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'o', ARGV[i])
end
for i = n + 3, #ARGV, 3 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if not cur or tonumber(cjson.decode(cur)['ts']) <= tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  end
end
return n
"""

_INGEST_LUA: Final = """
local hw = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local start = tonumber(ARGV[2])
local codes = ARGV[3]
local n = string.len(codes)
if start + n <= hw then return 0 end
local from = math.max(hw - start, 0) + 1
local counts = {}
for i = from, n do
  local c = string.byte(codes, i)
  if c < 255 then counts[c] = (counts[c] or 0) + 1 end
end
local total = 0
for c, k in pairs(counts) do
  redis.call('HINCRBY', KEYS[2], 'in:' .. ARGV[4 + c], k)
  total = total + k
end
if total > 0 then redis.call('HINCRBY', KEYS[2], 'records', total) end
redis.call('HSET', KEYS[1], ARGV[1], start + n)
return 1
"""


class RedisSink(DynamicSink[Any]):
    """Write :class:`Alert`, :class:`DeadRecord`, :class:`IngestMark`, :class:`Gauge` idempotently.

    ``run_id`` scopes the offset high-water marks: a resumed run keeps its id (the flow stores it
    next to the recovery partitions), a fresh run gets a new one so its offsets start again.
    ``max_outage_s``: how long a partition holds a batch while Redis is unreachable before the
    run fails with :class:`~citywatch.errors.StoreError`. ``keep_resolved``: how many of the
    alerts it resolved last a partition also re-publishes after Redis lost data (a Redis
    restored from an older copy must not show them firing again). ``audit_maxlen``: the
    ``cw:audit`` bound for the ``reopen`` events it writes (as the feed service's).
    """

    def __init__(
        self,
        url: str,
        keys: Keys,
        *,
        run_id: str,
        alerts_maxlen: int = 200_000,
        deadletter_maxlen: int = 100_000,
        tickets_maxlen: int = 1_000_000,
        observations_maxlen: int = 2_000_000,
        backoff_s: tuple[float, float] = (0.05, 5.0),
        max_outage_s: float = 300.0,
        keep_resolved: int = 10_000,
        audit_maxlen: int = 1_000_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.keys = keys
        self.run_id = run_id
        self.alerts_maxlen = alerts_maxlen
        self.deadletter_maxlen = deadletter_maxlen
        self.tickets_maxlen = tickets_maxlen
        self.observations_maxlen = observations_maxlen
        self.backoff_s = backoff_s
        self.max_outage_s = max_outage_s
        self.keep_resolved = keep_resolved
        self.audit_maxlen = audit_maxlen
        self.clock = clock

    def build(self, step_id: str, worker_index: int, worker_count: int) -> RedisSinkPartition:
        return RedisSinkPartition(self, worker_index)


def is_transient(exc: Exception) -> bool:
    """Whether waiting may cure ``exc``: Redis down, restarting, loading, failing over, or
    refusing writes for now (out of memory, or unable to persist: ``OOM``, ``MISCONF``).

    >>> is_transient(redis.ConnectionError("refused")), is_transient(redis.ResponseError(
    ...     "MISCONF Redis is configured to save RDB snapshots")), is_transient(
    ...     redis.ResponseError("WRONGTYPE Operation against a key"))
    (True, True, False)
    """
    if isinstance(exc, (*TRANSIENT, redis.exceptions.OutOfMemoryError)):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(("OOM", "MISCONF"))


#: The sink's scripts, in the order ``_write`` unpacks their SHA1s.
_SCRIPTS = (_ALERT_LUA, _DEAD_LUA, _INGEST_LUA, _OBS_LUA, _TOUCH_LUA)
#: Alerts per pipeline when re-publishing.
_REPUBLISH_CHUNK = 1000
#: Alert versions, or observations of one name, per script call: a call runs inside Redis
#: without a break, so a batch of many is cut into calls this long.
_CHUNK = 256


class RedisSinkPartition(StatelessSinkPartition[Any]):
    """Owns one worker's connection; writes each batch in one pipeline, retrying on outages.

    ``open_alerts`` is the latest version this partition wrote of every alert not resolved
    (what it re-publishes when Redis lost data); ``outages``, ``losses`` and ``republished``
    count what happened, for tests and logs.
    """

    def __init__(self, cfg: RedisSink, worker_index: int = 0) -> None:
        self.cfg = cfg
        self.client: redis.Redis = redis.Redis.from_url(
            cfg.url, socket_timeout=10.0, socket_connect_timeout=5.0, health_check_interval=30
        )
        #: SHA1 of each script, loaded once per connection (SCRIPT LOAD) and called with
        #: EVALSHA: redis-py's Script objects ask SCRIPT EXISTS before every pipeline.
        self._sha: dict[str, str] = {}
        self.hw_key = cfg.keys.sink_hw
        self.mark_key = cfg.keys.sink_mark
        self.mark_field = f"{cfg.run_id}:{worker_index}"
        #: Batches written as Redis counts them (None until the first: a resumed partition
        #: takes what Redis has).
        self.marks: int | None = None
        self.open_alerts = OpenAlerts(keep_resolved=cfg.keep_resolved)
        self.outages = 0
        self.losses = 0
        self.republished = 0
        #: The newest :class:`Touch` of each alert, re-written after its version when Redis
        #: lost data (dropped when the alert has a newer version or is gone).
        self.touched: dict[str, Alert] = {}
        self._must_republish = False

    def write_batch(self, items: list[Any]) -> None:
        if not items:
            return
        delay, cap = self.cfg.backoff_s
        since: float | None = None
        unseen = False
        while True:
            try:
                if not self._sha:
                    self._sha = {lua: str(self.client.script_load(lua)) for lua in _SCRIPTS}
                self._attempt(items)
            except redis.exceptions.NoScriptError:
                # Redis lost its scripts (restarted, SCRIPT FLUSH): load them again and write
                # the batch again (every write is idempotent).
                log.info("redis sink: scripts missing on the server; loading them again")
                self._sha = {}
                continue
            except redis.AuthenticationError as exc:
                at = where(self.cfg.url)
                msg = f"redis: Redis at {at} refused the sink's credentials ({exc})"
                raise StoreError(msg) from exc
            except redis.RedisError as exc:
                if not is_transient(exc):
                    msg = f"redis: Redis at {where(self.cfg.url)} refused a write ({exc})"
                    raise StoreError(msg) from exc
                now = time.monotonic()
                if since is None:
                    since = now
                    self.outages += 1
                    # Gone or not answering: the run's RedisWatch says so; refusing writes
                    # (OOM, MISCONF) answers its PING: only this line says it.
                    unseen = not isinstance(exc, redis.ConnectionError | redis.TimeoutError)
                    log.log(
                        logging.WARNING if unseen else logging.INFO,
                        "redis sink: Redis at %s %s (%s); holding %d items, "
                        "retrying for up to %.0f s",
                        where(self.cfg.url),
                        "refuses writes" if unseen else "unreachable",
                        reason(exc),
                        len(items),
                        self.cfg.max_outage_s,
                    )
                left = self.cfg.max_outage_s - (now - since)
                if left <= 0:
                    msg = (
                        f"redis: Redis at {where(self.cfg.url)} unreachable for "
                        f"{now - since:.0f} s ({reason(exc)}); the run stopped with "
                        f"{len(items)} item{'s' if len(items) != 1 else ''} unwritten "
                        "(redis_outage_s; with --recovery a rerun resumes from the last snapshot)"
                    )
                    raise StoreError(msg) from exc
                time.sleep(min(delay, left))
                delay = min(cap, delay * 2)
                continue
            if since is not None:
                log.log(
                    logging.WARNING if unseen else logging.INFO,
                    "redis sink: Redis takes writes again after %.1f s",
                    time.monotonic() - since,
                )
            return

    def _attempt(self, items: Sequence[Any]) -> None:
        """Write ``items``; when Redis lost data meanwhile, re-publish what it remembers.

        Safe to repeat after a failure at any point (every write is idempotent; a re-publish
        that failed is done again on the next attempt). The batch count is read before it is
        counted up, in the same pipeline: an attempt that failed half-way (scripts missing
        after a restart, say) counted up already, which must not hide a loss.
        """
        before, after, error = self._write(items)
        if self.marks is not None and before < self.marks:
            self._must_republish = True
            self.losses += 1
            log.warning(
                "redis sink: Redis at %s lost data (it counts %d batches of this run, the "
                "sink wrote %d)",
                where(self.cfg.url),
                before,
                self.marks,
            )
        self.marks = after
        if error is not None:
            raise error
        touched = self.touched
        for x in items:
            t = type(x)
            if t is Alert:
                self.open_alerts.note(x)
                if touched:
                    touched.pop(x.id, None)  # a newer version (or a resolve) supersedes it
            elif t is Republish:
                self.open_alerts.note(x.alert)
            elif t is Touch:
                touched[x.alert.id] = x.alert
        if self._must_republish:
            self.republish()
            self._must_republish = False

    def republish(self) -> int:
        """Write every remembered alert again, the resolved ones first (a no-op where Redis
        has the version); returns how many versions Redis was missing."""
        alerts = [*self.open_alerts.resolved.values(), *self.open_alerts]
        written = 0
        for i in range(0, len(alerts), _REPUBLISH_CHUNK):
            pipe: Any = self.client.pipeline(transaction=False)
            self._add_alerts(pipe, alerts[i : i + _REPUBLISH_CHUNK], int(self.cfg.clock() * 1000))
            written += sum(r for r in pipe.execute() if isinstance(r, int))
        # The values the open alerts were last seen with (their hashes only).
        current = self.open_alerts.alerts
        self.touched = {
            i: a
            for i, a in self.touched.items()
            if (v := current.get(i)) is not None and v.version == a.version
        }
        if self.touched:
            pipe = self.client.pipeline(transaction=False)
            self._add_touches(pipe, list(self.touched.values()))
            pipe.execute()
        self.republished += written
        log.warning(
            "redis sink: re-published %d of %d alerts (%d open, %d recently resolved)",
            written,
            len(alerts),
            len(self.open_alerts),
            len(self.open_alerts.resolved),
        )
        return written

    def _add_alerts(self, pipe: Any, alerts: Sequence[Alert], now_ms: int) -> None:
        """Queue ``alerts`` (in order) as one script call per :data:`_CHUNK` of them."""
        k, cfg = self.cfg.keys, self.cfg
        sha = self._sha[_ALERT_LUA]
        for i in range(0, len(alerts), _CHUNK):
            chunk = alerts[i : i + _CHUNK]
            keys = [k.alerts, k.open, k.counts, k.audit]
            args: list[Any] = [cfg.alerts_maxlen, now_ms, cfg.audit_maxlen]
            for a in chunk:
                keys.append(k.alert(a.id))
                args += (
                    a.id,
                    a.version,
                    a.to_json(),
                    a.state.value,
                    a.level.colour,
                    a.rule,
                    a.district or "",
                    a.first_ts,
                    a.last_ts,
                    int(a.level) * 10**13 + a.first_ts,
                )
            pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)

    def _add_touches(self, pipe: Any, touches: Sequence[Alert]) -> None:
        """Queue :class:`Touch` values (one per id) as one script call per :data:`_CHUNK`."""
        k = self.cfg.keys
        sha = self._sha[_TOUCH_LUA]
        for i in range(0, len(touches), _CHUNK):
            chunk = touches[i : i + _CHUNK]
            args: list[Any] = []
            for a in chunk:
                args += (a.version, a.last_ts, a.to_json())
            pipe.execute_command("EVALSHA", sha, len(chunk), *(k.alert(a.id) for a in chunk), *args)

    def _add_observations(self, pipe: Any, name: str, items: Sequence[Observation]) -> None:
        """Queue the observations of ``name`` (in order) as one script call per
        :data:`_CHUNK`: every one logged, the newest of each subject kept."""
        k = self.cfg.keys
        sha = self._sha[_OBS_LUA]
        keys = (k.observed(name), k.observations(name))
        dumps = orjson.dumps
        for i in range(0, len(items), _CHUNK):
            logged: list[bytes] = []
            newest: dict[str, tuple[int, bytes]] = {}
            for o in items[i : i + _CHUNK]:
                payload = dumps(o.to_dict())
                logged.append(payload)
                subject = f"{o.subject.kind}:{o.subject.id}"
                kept = newest.get(subject)
                if kept is None or kept[0] <= o.ts:
                    newest[subject] = (o.ts, payload)
            args: list[Any] = [self.cfg.observations_maxlen, len(logged), *logged]
            for subject, (ts, payload) in newest.items():
                args += (subject, ts, payload)
            pipe.execute_command("EVALSHA", sha, 2, *keys, *args)

    def _write(self, items: Sequence[Any]) -> tuple[int, int, Exception | None]:
        """One pipeline for ``items``: the run's batch count as Redis had it before and after,
        and the first error a command of the pipeline met (the others were applied).

        Alert versions go in one script call per :data:`_CHUNK` of them, then the touches (the
        newest of each id), observations in one per name and chunk, each in the order of ``items``
        (the keys they write are theirs alone: the order between them and the other items changes
        nothing); the rest one command or call each.
        """
        k = self.cfg.keys
        pipe: Any = self.client.pipeline(transaction=False)
        pipe.hget(self.mark_key, self.mark_field)
        sha_dead, sha_ingest = self._sha[_DEAD_LUA], self._sha[_INGEST_LUA]
        run = pipe.execute_command
        newest = 0
        now_ms = int(self.cfg.clock() * 1000)
        alerts: list[Alert] = []
        touches: dict[str, Alert] = {}
        observed: dict[str, list[Observation]] = {}
        for item in items:
            t = type(item)
            if t is Alert:
                alerts.append(item)
            elif t is Observation:
                got = observed.get(item.name)
                if got is None:
                    observed[item.name] = [item]
                else:
                    got.append(item)
            elif t is Republish:
                alerts.append(item.alert)
            elif t is Touch:
                touches[item.alert.id] = item.alert  # the newest of each id
            elif t is IngestMark:
                run(
                    "EVALSHA",
                    sha_ingest,
                    2,
                    self.hw_key,
                    k.counts,
                    f"in:{self.cfg.run_id}:{item.partition}",
                    item.start,
                    item.codes,
                    *KINDS,
                )
                newest = max(newest, item.high_ts)
            elif t is DeadRecord:
                d = item.dead
                run(
                    "EVALSHA",
                    sha_dead,
                    3,
                    self.hw_key,
                    k.deadletter,
                    k.counts,
                    f"dead:{self.cfg.run_id}:{item.partition}",
                    item.seq,
                    d.raw,
                    d.source,
                    d.reason,
                    reason_class(d.reason),
                    self.cfg.deadletter_maxlen,
                )
            elif t is TicketRecord:
                pipe.xadd(
                    k.tickets,
                    {"t": encode(item.event)},
                    maxlen=self.cfg.tickets_maxlen,
                    approximate=True,
                )
            elif t is Gauge:
                if item.fields:
                    pipe.hset(k.counts, mapping=item.fields)
            elif isinstance(item, Alert):  # a subclass: as an alert
                alerts.append(item)
            elif isinstance(item, Observation):
                observed.setdefault(item.name, []).append(item)
            else:
                msg = f"redis sink: cannot write a {type(item).__name__}"
                raise TypeError(msg)
        if alerts:
            self._add_alerts(pipe, alerts, now_ms)
        if touches:  # after the versions: a touch of a version in this batch finds it
            self._add_touches(pipe, list(touches.values()))
        for name, obs in observed.items():
            self._add_observations(pipe, name, obs)
        if newest:
            pipe.hset(k.counts, mapping={"watermark_ms": newest, "lag_ms": max(0, now_ms - newest)})
        pipe.hincrby(self.mark_key, self.mark_field, 1)
        results = pipe.execute(raise_on_error=False)
        error = next((r for r in results if isinstance(r, Exception)), None)
        count = results[-1]
        if isinstance(count, Exception):  # pragma: no cover - a foreign value under our key
            raise count
        return int(results[0] or 0), int(count), error

    def close(self) -> None:
        self.client.close()
