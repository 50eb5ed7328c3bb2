"""Dirty mode: malformed records mixed into the stream, every one of which must dead-letter.

Each malformed record is derived from the valid record just before it (same timestamp and
partition key), by one of the faults real feeds produce. None contains a newline, so JSONL
framing survives. The share of malformed records in the output is ``fraction``.

>>> import random
>>> ts, keys, lines = corrupt([1], [7], [b'{"kind":"air","ts":1793548800000,"station":"S"}'],
...                           0.4, random.Random(3))
>>> len(lines) >= 1
True
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

import orjson

__all__ = ["FAULTS", "corrupt", "malform"]


def _truncated(line: bytes, rng: random.Random) -> bytes:
    return line[: rng.randrange(1, max(2, len(line) - 1))]


def _set(line: bytes, field: str, value: object) -> bytes:
    d = orjson.loads(line)
    d[field] = value
    return orjson.dumps(d)


def _wrong_type(line: bytes, rng: random.Random) -> bytes:
    d = orjson.loads(line)
    field = rng.choice([k for k in d if k != "kind"])
    v = d[field]
    d[field] = {"value": v} if isinstance(v, str) else (str(v) if v is not None else [1])
    return orjson.dumps(d)


def _nan_token(line: bytes, rng: random.Random) -> bytes:
    token = rng.choice((b"NaN", b"Infinity", b"-Infinity"))
    return line.replace(b'"ts":', b'"ts":' + token + b',"x":', 1)


def _huge_number(line: bytes, rng: random.Random) -> bytes:
    token = rng.choice((b"1e999", b"100000000000000000000000000000", b"-1e400"))
    return line.replace(b'"ts":', b'"ts":' + token + b',"x":', 1)


def _out_of_region(line: bytes, rng: random.Random) -> bytes:
    d = orjson.loads(line)
    lat, lon = rng.choice(((39.9, 116.4), (22.5, 114.1), (0.0, 0.0)))
    return orjson.dumps({"kind": "gps", "ts": d["ts"], "vehicle": "HV-OUT", "lat": lat, "lon": lon})


def _unknown_kind(line: bytes, rng: random.Random) -> bytes:
    return _set(line, "kind", rng.choice(("radar", "AIR", "", "weather")))


def _not_utf8(line: bytes, rng: random.Random) -> bytes:
    # inside a string value the decoder must read (msgspec skips unknown keys unchecked)
    bad = rng.choice((b"\xff", b"\xfe\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"))
    anchors = [b'"kind":"'] + [
        b'"%s":"' % k for k in (b"station", b"vehicle", b"camera", b"meter", b"ticket", b"text")
    ]
    found = [(line.find(a), a) for a in anchors if a in line]
    at, anchor = rng.choice(found) if found else (0, b"")
    k = at + len(anchor)
    return line[:k] + bad + line[k:]


def _huge_text(line: bytes, rng: random.Random) -> bytes:
    d = orjson.loads(line)
    text = "噪" * rng.randrange(1400, 6000)
    return orjson.dumps({"kind": "hotline", "ts": d["ts"], "ticket": "T-HUGE", "text": text})


def _missing_key(line: bytes, rng: random.Random) -> bytes:
    d = orjson.loads(line)
    for k in ("station", "vehicle", "camera", "meter", "ticket", "site"):
        if k in d:
            del d[k]
            return orjson.dumps(d)
    del d["ts"]
    return orjson.dumps(d)


def _seconds(line: bytes, rng: random.Random) -> bytes:
    d = orjson.loads(line)
    return _set(line, "ts", d["ts"] // 1000)


def _not_object(line: bytes, rng: random.Random) -> bytes:
    return rng.choice((b"[1,2,3]", b'"air"', b"null", b"42", b"{}", b"   "))


FAULTS: Final[dict[str, Callable[[bytes, random.Random], bytes]]] = {
    "truncated": _truncated,
    "wrong_type": _wrong_type,
    "nan_token": _nan_token,
    "huge_number": _huge_number,
    "out_of_region": _out_of_region,
    "unknown_kind": _unknown_kind,
    "not_utf8": _not_utf8,
    "huge_text": _huge_text,
    "missing_key": _missing_key,
    "ts_in_seconds": _seconds,
    "not_object": _not_object,
}
_NAMES: Final = tuple(FAULTS)


def malform(line: bytes, rng: random.Random) -> bytes:
    """One malformed record derived from a valid one."""
    return FAULTS[rng.choice(_NAMES)](line, rng)


def corrupt(
    ts: list[int], keys: list[int], lines: list[bytes], fraction: float, rng: random.Random
) -> tuple[list[int], list[int], list[bytes]]:
    """Insert malformed records after randomly chosen ones so they make up ``fraction``."""
    p = fraction / (1.0 - fraction)
    out_ts: list[int] = []
    out_keys: list[int] = []
    out_lines: list[bytes] = []
    rand = rng.random
    for t, k, line in zip(ts, keys, lines, strict=True):
        out_ts.append(t)
        out_keys.append(k)
        out_lines.append(line)
        if rand() < p:
            out_ts.append(t)
            out_keys.append(k)
            out_lines.append(malform(line, rng))
    return out_ts, out_keys, out_lines
