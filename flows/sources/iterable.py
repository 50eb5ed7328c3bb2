"""A raw source over a deterministic iterator of records (the simulator, a list in tests).

Partition ``i`` of ``n`` keeps the records whose partition key hashes to ``i`` (crc32), so
each process reads its own share and per-key order is kept (the key is the entity, except
that a work site's cameras and meters go with the site and all hotline tickets together);
records without a readable key (malformed ones in dirty mode) go by their index. The resume
position is the number of records this partition has emitted: a resumed partition
regenerates the iterator and skips them, which
is exact because the iterator is deterministic.

``speed`` paces by event time: ``1.0`` is live (one event-time second per wall second),
``10.0`` ten times faster, ``None`` as fast as possible.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from flows.sources import RawReader, RawSource, partition_of

__all__ = ["IterableSource", "KeyOf", "parse_speed", "peek"]

_KEY_FIELD: Final = {
    "air": "station",
    "gps": "vehicle",
    "video": "camera",
    "power": "meter",
    "hotline": "ticket",
    "order": "site",
    "water": "station",
}


def parse_speed(text: str | float | None) -> float | None:
    """``"1x"``/``"10x"``/``1.5`` -> factor; ``"max"``/``None``/``0`` -> None (no pacing).

    >>> parse_speed("10x"), parse_speed("max"), parse_speed(2)
    (10.0, None, 2.0)
    """
    if text is None:
        return None
    if isinstance(text, str):
        t = text.strip().lower()
        if t in ("max", "", "0", "0x"):
            return None
        try:
            value = float(t.removesuffix("x"))
        except ValueError as exc:
            msg = f"speed: {text!r} is not like 1x, 10x or max"
            raise ValueError(msg) from exc
    else:
        value = float(text)
    if value <= 0:
        return None
    return value


#: ``key_of(raw) -> (partition key or None, ts or None)``.
KeyOf = Callable[[bytes], tuple[str | None, int | None]]


def peek(raw: bytes) -> tuple[str | None, int | None]:
    """A record's partition key and ts, or Nones when it does not parse.

    Keys: ``station:<id>`` for air, the site for a site's video/power and for orders,
    ``hotline`` for every ticket (the hotline model looks at the whole city), else the entity.
    """
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(d, dict):
        return None, None
    kind = d.get("kind")
    ts = d.get("ts")
    ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else None
    if kind == "hotline":
        return "hotline", ts
    field = _KEY_FIELD.get(kind) if isinstance(kind, str) else None
    value = d.get(field) if field else None
    if kind in ("video", "power") and isinstance(d.get("site"), str):
        value = d["site"]
    if not isinstance(value, str):
        return None, ts
    return (f"station:{value}" if kind == "air" else value), ts


class _IterReader(RawReader):
    def __init__(
        self,
        records: Iterator[bytes],
        index: int,
        count: int,
        skip: int,
        speed: float | None,
        clock: Callable[[], float],
        key_of: KeyOf,
        anchor_ts: int | None = None,
    ) -> None:
        self.index, self.count, self.speed, self.clock = index, count, speed, clock
        self.anchor_ts = anchor_ts
        self.key_of = key_of
        self.it = self._mine(records)
        for _ in itertools.islice(self.it, skip):
            pass
        self.emitted = skip
        self.pending: tuple[bytes, int | None] | None = None
        self.anchor: tuple[float, int] | None = None  # (wall s, event ts) when pacing started
        self.awake: datetime | None = None

    def _mine(self, records: Iterator[bytes]) -> Iterator[tuple[bytes, int | None]]:
        if self.count == 1 and self.speed is None:
            for raw in records:
                yield raw, None
            return
        for i, raw in enumerate(records):
            key, ts = self.key_of(raw)
            owner = partition_of(key, self.count) if key is not None else i % self.count
            if owner == self.index:
                yield raw, ts

    def read(self, max_n: int) -> list[bytes]:
        out: list[bytes] = []
        self.awake = None
        now = self.clock()
        while len(out) < max_n:
            if self.pending is None:
                try:
                    self.pending = next(self.it)
                except StopIteration:
                    if out:
                        break
                    raise
            raw, ts = self.pending
            if self.speed is not None and ts is not None:
                if self.anchor is None:
                    # Pacing starts at the first record, or at ``anchor_ts`` when given:
                    # records before it (a pre-roll) are due at once.
                    self.anchor = (now, ts if self.anchor_ts is None else max(ts, self.anchor_ts))
                due_ts = self.anchor[1] + (now - self.anchor[0]) * 1000.0 * self.speed
                if ts > due_ts:
                    wait_s = min(1.0, (ts - due_ts) / 1000.0 / self.speed)
                    self.awake = datetime.now(UTC) + timedelta(seconds=wait_s)
                    break
            out.append(raw)
            self.pending = None
        self.emitted += len(out)
        return out

    def position(self) -> int:
        return self.emitted

    def next_awake(self) -> datetime | None:
        return self.awake


class IterableSource(RawSource):
    """``factory()`` must return the same records in the same order on every call."""

    def __init__(
        self,
        factory: Callable[[], Iterator[bytes]],
        *,
        partitions: int = 1,
        speed: float | None = None,
        name: str = "iter",
        clock: Callable[[], float] = time.monotonic,
        key_of: KeyOf | None = None,
        anchor_ts: int | None = None,
    ) -> None:
        self.key_of = key_of or peek
        if partitions < 1:
            msg = f"partitions: must be >= 1, got {partitions}"
            raise ValueError(msg)
        self.factory = factory
        self.partitions = partitions
        self.speed = speed
        self.name = name
        self.clock = clock
        #: Paced: the event time due when reading starts (records before it come at once).
        self.anchor_ts = anchor_ts

    def list_parts(self) -> list[str]:
        return [f"{self.name}:{i}/{self.partitions}" for i in range(self.partitions)]

    def open(self, part: str, position: Any | None) -> RawReader:
        index = int(part.rsplit(":", 1)[1].split("/")[0])
        return _IterReader(
            self.factory(),
            index,
            self.partitions,
            int(position or 0),
            self.speed,
            self.clock,
            self.key_of,
            self.anchor_ts,
        )
