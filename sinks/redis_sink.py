"""The Redis sink: alerts, dead letters and counters into the Redis layout of docs/contracts.md.

Bytewax dynamic sinks are at-least-once: after a crash the flow replays from its last snapshot
and writes some items again. Every write here is therefore idempotent, decided inside Redis by
one Lua script per item (atomic; Redis 7.0 has no idempotent XADD):

* an :class:`~citywatch.alerts.Alert` is applied only if its ``version`` is above the stored
  one: then the ``cw:alert:{id}`` hash (fields ``a``, ``version``, ``state``, ``level``, ``rule``,
  ``district``, ``first_ts``, ``last_ts``; ``status=new`` only if absent), one ``cw:alerts`` entry
  (approximate MAXLEN), ``cw:open`` (added while firing, removed on resolve) and, when the
  level is new for the id, ``cw:counts`` ``alerts:<rule>:<level>``;
* a :class:`DeadRecord` carries its source partition and record offset; it is appended to
  ``cw:deadletter`` and counted as ``dead:<reason class>`` only if that offset is above the
  partition's high-water mark (``cw:sink:hw``, per run);
* an :class:`IngestMark` (one per source batch: first offset and one kind code per record)
  counts ``in:<kind>`` and ``records`` for the offsets not counted yet, so
  ``records == sum(in:*) + sum(dead:*)`` holds across crashes and replays.

One pipeline per batch. When Redis goes away the partition retries the whole batch with
capped exponential backoff, logging, never raising: the flow stalls (backpressure) and
nothing is lost once Redis is back. The client is created late, in the partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from citywatch.alerts import Alert
from citywatch.events import KINDS, DeadLetter
from citywatch.keys import Keys

__all__ = [
    "KIND_CODES",
    "NOT_COUNTED",
    "DeadRecord",
    "Gauge",
    "IngestMark",
    "RedisSink",
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


_ALERT_LUA: Final = """
local stored = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if tonumber(ARGV[2]) <= stored then return 0 end
local prev_level = redis.call('HGET', KEYS[1], 'level')
redis.call('HSET', KEYS[1], 'a', ARGV[3], 'version', ARGV[2], 'state', ARGV[4],
           'level', ARGV[5], 'rule', ARGV[6], 'district', ARGV[7],
           'first_ts', ARGV[8], 'last_ts', ARGV[9])
redis.call('HSETNX', KEYS[1], 'status', 'new')
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[10], '*', 'a', ARGV[3])
if ARGV[4] == 'firing' then
  redis.call('ZADD', KEYS[3], ARGV[11], ARGV[1])
  if prev_level ~= ARGV[5] then
    redis.call('HINCRBY', KEYS[4], 'alerts:' .. ARGV[6] .. ':' .. ARGV[5], 1)
  end
else
  redis.call('ZREM', KEYS[3], ARGV[1])
end
return 1
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

#: Redis errors worth waiting out: the server is down, restarting, loading or failing over.
_TRANSIENT: Final = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
)


class RedisSink(DynamicSink[Any]):
    """Write :class:`Alert`, :class:`DeadRecord`, :class:`IngestMark`, :class:`Gauge` idempotently.

    ``run_id`` scopes the offset high-water marks: a resumed run keeps its id (the flow stores it
    next to the recovery partitions), a fresh run gets a new one so its offsets start again.
    """

    def __init__(
        self,
        url: str,
        keys: Keys,
        *,
        run_id: str,
        alerts_maxlen: int = 200_000,
        deadletter_maxlen: int = 100_000,
        backoff_s: tuple[float, float] = (0.05, 5.0),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.keys = keys
        self.run_id = run_id
        self.alerts_maxlen = alerts_maxlen
        self.deadletter_maxlen = deadletter_maxlen
        self.backoff_s = backoff_s
        self.clock = clock

    def build(self, step_id: str, worker_index: int, worker_count: int) -> RedisSinkPartition:
        return RedisSinkPartition(self)


#: The sink's scripts, in the order ``_write`` unpacks their SHA1s.
_SCRIPTS = (_ALERT_LUA, _DEAD_LUA, _INGEST_LUA)


class RedisSinkPartition(StatelessSinkPartition[Any]):
    """Owns one worker's connection; writes each batch in one pipeline, retrying on outages."""

    def __init__(self, cfg: RedisSink) -> None:
        self.cfg = cfg
        self.client: redis.Redis = redis.Redis.from_url(
            cfg.url, socket_timeout=10.0, socket_connect_timeout=5.0, health_check_interval=30
        )
        #: SHA1 of each script, loaded once per connection (SCRIPT LOAD) and called with
        #: EVALSHA: redis-py's Script objects ask SCRIPT EXISTS before every pipeline.
        self._sha: dict[str, str] = {}
        self.hw_key = cfg.keys.sink_hw
        self.outages = 0

    def write_batch(self, items: list[Any]) -> None:
        if not items:
            return
        delay, cap = self.cfg.backoff_s
        attempt = 0
        while True:
            try:
                if not self._sha:
                    self._sha = {lua: str(self.client.script_load(lua)) for lua in _SCRIPTS}
                self._write(items)
            except redis.exceptions.NoScriptError:
                # Redis lost its scripts (restarted, SCRIPT FLUSH): load them again and write
                # the batch again (every write is idempotent).
                log.warning("redis sink: scripts missing on the server; loading them again")
                self._sha = {}
                continue
            except _TRANSIENT as exc:
                attempt += 1
                if attempt == 1:
                    self.outages += 1
                log.warning(
                    "redis sink: %s; retrying %d items in %.2fs (attempt %d)",
                    type(exc).__name__,
                    len(items),
                    delay,
                    attempt,
                )
                time.sleep(delay)
                delay = min(cap, delay * 2)
                continue
            if attempt:
                log.warning("redis sink: Redis is back after %d attempts", attempt)
            return

    def _write(self, items: Sequence[Any]) -> None:
        k = self.cfg.keys
        pipe: Any = self.client.pipeline(transaction=False)
        sha_alert, sha_dead, sha_ingest = (self._sha[x] for x in _SCRIPTS)
        run = pipe.execute_command
        newest = 0
        for item in items:
            if isinstance(item, Alert):
                run(
                    "EVALSHA",
                    sha_alert,
                    4,  # keys, then args
                    k.alert(item.id),
                    k.alerts,
                    k.open,
                    k.counts,
                    item.id,
                    item.version,
                    item.to_json(),
                    item.state.value,
                    item.level.colour,
                    item.rule,
                    item.district or "",
                    item.first_ts,
                    item.last_ts,
                    self.cfg.alerts_maxlen,
                    int(item.level) * 10**13 + item.first_ts,
                )
            elif isinstance(item, DeadRecord):
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
            elif isinstance(item, IngestMark):
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
            elif isinstance(item, Gauge):
                if item.fields:
                    pipe.hset(k.counts, mapping=item.fields)
            else:
                msg = f"redis sink: cannot write a {type(item).__name__}"
                raise TypeError(msg)
        if newest:
            now_ms = int(self.cfg.clock() * 1000)
            pipe.hset(k.counts, mapping={"watermark_ms": newest, "lag_ms": max(0, now_ms - newest)})
        pipe.execute()

    def close(self) -> None:
        self.client.close()
