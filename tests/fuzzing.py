"""Fuzzing the input path: strategies and the checks every generated input must pass.

Used by the bounded fuzz tests (``tests/citywatch/test_fuzz_decoder.py``,
``tests/flows/test_fuzz_files.py``, run by ``make test``) and by the long run,
``benchmarks/fuzz.py --examples N``. A check never raises on a finding: it returns a
:class:`Finding` per broken promise, so the tests can assert there are none and the
benchmark can count them.

The promises:

- the decoder and the file readers raise nothing, whatever the bytes;
- accounting: every input record ends as exactly one valid event or one dead letter;
- every dead letter has a one-line reason, and when the record was broken in a field
  (wrong type, missing, NaN, a huge number, strange text) the reason names that field.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import orjson
from hypothesis import strategies as st

from citywatch.events import BOM, KINDS, DeadLetter, EventDecoder, encode
from flows.sources import DecodingSource
from flows.sources.files import PROBLEMS, FileSource
from sinks.redis_sink import NOT_COUNTED
from tests.citywatch.test_events import STRATEGIES

__all__ = [
    "Finding",
    "Mutated",
    "check_decoded",
    "check_file",
    "file_contents",
    "mutated_records",
]

DECODER = EventDecoder()


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken promise: which, and the input that broke it."""

    promise: str  # "escaped", "unaccounted", "reason_without_field", "no_reason"
    detail: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class Mutated:
    """A record as bytes, and the field it was broken in (None: not in one field)."""

    raw: bytes
    field: str | None
    how: str


def _render(record: dict[str, Any], raw_values: dict[str, bytes]) -> bytes:
    """``record`` as a JSON object, with the values in ``raw_values`` written as they are."""
    parts = []
    for k, v in record.items():
        value = raw_values[k] if k in raw_values else orjson.dumps(v)
        parts.append(orjson.dumps(k) + b":" + value)
    return b"{" + b",".join(parts) + b"}"


_WRONG: list[Any] = ["text", 17, -3, 2.5, True, False, [1, 2], {"a": [None]}, "", [], {}]
_NOT_FINITE = [b"NaN", b"Infinity", b"-Infinity", b"nan", b"inf"]
_HUGE = [b"1e999", b"-1e999", b"100000000000000000000000000000", b"-99999999999999999999999"]
_STRANGE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=300
)


@st.composite
def mutated_records(draw: st.DrawFn, kinds: tuple[str, ...] = KINDS) -> Mutated:
    """A valid record of some kind, broken (or not) in one of many ways."""
    kind = draw(st.sampled_from(kinds))
    event = draw(STRATEGIES[kind])
    record: dict[str, Any] = msgspec.to_builtins(event)
    record = {"kind": kind, **{k: v for k, v in record.items() if k != "kind"}}
    names = [k for k in record if k != "kind"]
    how = draw(
        st.sampled_from(
            [
                "valid",
                "wrong_type",
                "missing",
                "not_finite",
                "huge",
                "strange_text",
                "truncated",
                "unknown_garbage",
                "bytes",
                "kind",
            ]
        )
    )
    name = draw(st.sampled_from(names))
    if how == "valid":
        return Mutated(encode(event), None, how)
    if how == "wrong_type":
        record[name] = draw(st.sampled_from(_WRONG))
        return Mutated(_render(record, {}), name, how)
    if how == "missing":
        del record[name]
        return Mutated(_render(record, {}), name, how)
    if how == "not_finite":
        return Mutated(_render(record, {name: draw(st.sampled_from(_NOT_FINITE))}), name, how)
    if how == "huge":
        return Mutated(_render(record, {name: draw(st.sampled_from(_HUGE))}), name, how)
    if how == "strange_text":
        record[name] = draw(_STRANGE)
        return Mutated(_render(record, {}), name, how)
    if how == "truncated":
        raw = encode(event)
        return Mutated(raw[: draw(st.integers(0, len(raw) - 1))], None, how)
    if how == "unknown_garbage":
        junk = draw(
            st.sampled_from([b"NaN", b"[" * 1200 + b"]" * 1200, b'"\\ud800"', b"{", b"tru"])
        )
        return Mutated(_render(record, {"extra": junk}), "extra", how)
    if how == "kind":
        record["kind"] = draw(st.sampled_from([*_WRONG, "weather", "AIR", None]))
        return Mutated(_render(record, {}), "kind", how)
    return Mutated(draw(st.binary(max_size=400)), None, how)


def _names(reason: str, name: str) -> bool:
    """Whether ``reason`` names field ``name``: first (``pm25: ...``, ``lat/lon: ...``,
    ``plates[1]: ...``) or quoted after (``... (in field 'extra')``)."""
    head = reason.split(": ", 1)[0]
    if name in re.split(r"[/.\[]", head):
        return True
    return f"'{name}" in reason


def check_decoded(items: list[Mutated], decoder: EventDecoder = DECODER) -> list[Finding]:
    """Decode ``items`` one by one and as a batch; return every broken promise."""
    found: list[Finding] = []
    raws = [m.raw for m in items]
    try:
        good, dead = decoder.decode_batch(raws, "fuzz")
    except Exception:
        return [Finding("escaped", traceback.format_exc(limit=3), b"|".join(raws)[:2000])]
    if len(good) + len(dead) != len(raws):
        found.append(Finding("unaccounted", f"{len(good)} + {len(dead)} != {len(raws)}", b""))
    for m in items:
        out = decoder.decode(m.raw, "fuzz")
        if type(out) is not DeadLetter:
            continue
        reason = out.reason
        if not reason or "\n" in reason:
            found.append(Finding("no_reason", repr(reason), m.raw))
        elif m.field is not None and not _names(reason, m.field):
            found.append(Finding("reason_without_field", f"{m.how} {m.field}: {reason}", m.raw))
    return found


# -- files -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileCase:
    """What to write: the records and how the file is laid out around them."""

    records: list[bytes]
    crlf: list[bool]
    blanks: list[bytes]  # a blank line (maybe spaces) after each record, or b""
    bom: bool
    final_newline: bool
    gzip: bool
    #: Keep this fraction of the gzip bytes (1.0: all of it).
    keep: float = 1.0

    def content(self) -> bytes:
        out = [BOM] if self.bom else []
        for i, (rec, crlf, blank) in enumerate(
            zip(self.records, self.crlf, self.blanks, strict=True)
        ):
            last = i == len(self.records) - 1
            out.append(rec)
            if not last or self.final_newline:
                out.append(b"\r\n" if crlf else b"\n")
            if blank and not last:
                out.append(blank + b"\n")
        return b"".join(out)

    def expected(self) -> list[bytes]:
        """The records a reader must hand out: every non-blank line, stripped (a record with
        a line break inside is two lines: two records, both dead letters then)."""
        text = self.content().removeprefix(BOM)
        return [s for s in (line.strip() for line in text.split(b"\n")) if s]


_RECORD = st.one_of(
    mutated_records().map(lambda m: m.raw),
    st.binary(max_size=80),
    st.just(b'{"kind":"air","ts":1767225600000,"station":"S1"}'),
)


@st.composite
def file_contents(draw: st.DrawFn) -> FileCase:
    """A JSON Lines file as real feeds write them: CRLF, blank lines, a BOM, no final line
    break, random breaks inside records, gzip (cut short or not)."""
    records = draw(st.lists(_RECORD, min_size=0, max_size=25))
    n = len(records)
    return FileCase(
        records=records,
        crlf=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        blanks=draw(
            st.lists(st.sampled_from([b"", b"", b"", b" ", b"\t", b"\r"]), min_size=n, max_size=n)
        ),
        bom=draw(st.booleans()),
        final_newline=draw(st.booleans()),
        gzip=draw(st.booleans()),
        keep=draw(st.sampled_from([1.0, 1.0, 0.9, 0.5, 0.1])),
    )


def check_file(case: FileCase, directory: Path, router: Any) -> list[Finding]:
    """Write ``case``, read it back through a :class:`FileSource` partition as the flow does
    (decode, gate, route); return every broken promise."""
    data = case.content()
    name = "case.jsonl.gz" if case.gzip else "case.jsonl"
    path = directory / name
    if case.gzip:
        packed = gzip.compress(data)
        packed = packed[: max(2, int(len(packed) * case.keep))]
        path.write_bytes(packed)
    else:
        path.write_bytes(data)
    expected = case.expected()
    PROBLEMS.take()
    try:
        source = DecodingSource(FileSource([str(path)]), batch_size=7).split_by(router)
        part = source.build_part("in", f"file:{path}", None)
        batches = []
        with contextlib.suppress(StopIteration):
            for _ in range(10_000):
                batches += part.next_batch()
        part.close()
    except Exception:
        return [Finding("escaped", traceback.format_exc(limit=4), data[:2000])]
    found: list[Finding] = []
    valid = sum(1 for b in batches for c in b.codes if c != NOT_COUNTED)
    dead = [d.dead for b in batches for d in b.dead]
    problems = PROBLEMS.take()
    cut = case.gzip and case.keep < 1.0
    read = valid + len(dead)
    if not cut and read != len(expected):
        found.append(Finding("unaccounted", f"{valid} + {len(dead)} != {len(expected)}", data))
    if cut and (read > len(expected) or (read < len(expected) and not problems)):
        found.append(
            Finding("unaccounted", f"cut gzip: {read} of {len(expected)}, {problems}", data)
        )
    for d in dead:
        if not d.reason or "\n" in d.reason:
            found.append(Finding("no_reason", repr(d.reason), d.raw))
    return found
