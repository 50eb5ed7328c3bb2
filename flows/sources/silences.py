"""Silences from Redis (``cw:silences``: id -> JSON) into the alert engine, while the run lives.

A one-partition bytewax source that polls the hash every ``every_s`` seconds and emits a
:class:`SilenceSet` whenever it changed; the flow sends it to every engine shard. Malformed
entries are skipped with a warning, never fatal. JSON: ``{"until_ms": <epoch ms>, "reason": ...,
"author": ..., "matcher": {"rule": ..., "subject_kind": ..., "subject_id": ..., "district": ...}}``
(missing matchers match anything). Only for runs without end (live sources): the source
finishes only when the flow is asked to stop (``flows.sources.STOP``: SIGINT/SIGTERM), so a
finite run would never end.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from flows.sources import STOP
from models.alert_engine import Silence

__all__ = ["SilenceSet", "SilenceSource", "parse_silences"]

log = logging.getLogger(__name__)

#: How soon the poller sees a stop request (between its polls of Redis).
STOP_CHECK = timedelta(seconds=0.2)


@dataclass(frozen=True, slots=True)
class SilenceSet:
    """Every active silence (replaces the engine's set)."""

    silences: tuple[Silence, ...]


def parse_silences(raw: dict[bytes, bytes]) -> tuple[Silence, ...]:
    out = []
    for sid, doc in sorted(raw.items()):
        try:
            out.append(Silence.from_dict(sid.decode(), orjson.loads(doc)))
        except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            log.warning("silence %r skipped: %s", sid, exc)
    return tuple(out)


class _Poller(StatefulSourcePartition[SilenceSet, None]):
    def __init__(self, url: str, key: str, every_s: float) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=5.0)
        self.key = key
        self.every = timedelta(seconds=every_s)
        self.last: tuple[Silence, ...] | None = None
        self.due = datetime.now(UTC)

    def next_batch(self) -> list[SilenceSet]:
        if STOP.is_set():  # the flow is stopping: this input ends with the others
            raise StopIteration
        now = datetime.now(UTC)
        if now < self.due:
            return []
        self.due = now + self.every
        try:
            raw: Any = self.client.hgetall(self.key)
        except redis.RedisError as exc:
            log.warning("silences: %s; keeping the current set", type(exc).__name__)
            return []
        current = parse_silences(raw)
        if current == self.last:
            return []
        self.last = current
        return [SilenceSet(current)]

    def next_awake(self) -> datetime | None:
        # Awake often enough to see a stop request; Redis is asked every ``every_s``.
        return min(self.due, datetime.now(UTC) + STOP_CHECK)

    def snapshot(self) -> None:
        return None

    def close(self) -> None:
        self.client.close()


class SilenceSource(FixedPartitionedSource[SilenceSet, None]):
    def __init__(self, url: str, key: str, *, every_s: float = 5.0) -> None:
        self.url = url
        self.key = key
        self.every_s = every_s

    def list_parts(self) -> list[str]:
        return ["silences"]

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Poller:
        return _Poller(self.url, self.key, self.every_s)
