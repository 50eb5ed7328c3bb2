"""Ground truth: what a correct model should report, and where the hidden workshops are.

A :class:`Label` is one anomaly a model should alert on: the ``rule`` and subject it should use
(``subject_kind``/``subject_id``, as in the rule table of ``docs/simulators.md``), the event-time
interval ``[start_ms, end_ms]`` during which the condition holds, ``also`` (other subject ids that
count as a hit, e.g. the other districts an episode covers, or the other tickets of a duplicate
cluster) and ``params`` (builtin scalars and lists: ``level``, ``lat``, ``lon``, ``radius_m``,
``tickets``, ``category`` ...). ``docs/simulators.md`` documents the params of every rule.

>>> lab = Label(rule="air.spike", subject_kind="station", subject_id="ST0001",
...             start_ms=1, end_ms=2, params={"lat": 32.0, "lon": 120.9})
>>> decode_labels(encode_labels([lab])) == [lab]
True
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from citywatch.errors import InputError

__all__ = ["Label", "Workshop", "decode_labels", "encode_labels", "read_labels"]


class Label(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    """One ground-truth anomaly (see the module docstring)."""

    rule: str
    subject_kind: str
    subject_id: str
    start_ms: int
    end_ms: int
    also: tuple[str, ...] = ()
    params: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def subject_ids(self) -> tuple[str, ...]:
        """Every subject id that counts as a hit."""
        return (self.subject_id, *self.also)


class Workshop(msgspec.Struct, frozen=True, kw_only=True):
    """An unregistered "small chemical" workshop: hidden truth, never in the registry.

    ``visits`` and ``vehicles`` count the dwells the simulation planned there during the run.
    """

    id: str
    lat: float
    lon: float
    district: str = ""
    visits: int = 0
    vehicles: tuple[str, ...] = ()


_ENC = msgspec.json.Encoder()
_LABELS = msgspec.json.Decoder(Label)
_WORKSHOPS = msgspec.json.Decoder(Workshop)


def encode_labels(items: Iterable[Label | Workshop]) -> bytes:
    """JSON Lines, one object per line, in the given order."""
    return b"".join(_ENC.encode(x) + b"\n" for x in items)


def decode_labels(data: bytes) -> list[Label]:
    """Parse ``labels.jsonl`` bytes."""
    return [_LABELS.decode(line) for line in data.splitlines() if line.strip()]


def decode_workshops(data: bytes) -> list[Workshop]:
    """Parse ``workshops.jsonl`` bytes."""
    return [_WORKSHOPS.decode(line) for line in data.splitlines() if line.strip()]


def read_labels(path: str | Path) -> list[Label]:
    """Read a labels file (JSON Lines, a UTF-8 BOM tolerated); a missing file or a line that
    is not a :class:`Label` is an :class:`InputError` naming the file, the line and why."""
    p = Path(path)
    try:
        data = p.read_bytes().removeprefix(b"\xef\xbb\xbf")
    except OSError as exc:
        msg = f"labels: {str(p)!r}: {exc.strerror or exc}"
        raise InputError(msg) from exc
    out = []
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            lab = _LABELS.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            msg = f"labels: {p.name} line {n}: {exc}"
            raise InputError(msg) from exc
        if lab.end_ms < lab.start_ms:
            msg = f"labels: {p.name} line {n}: end_ms {lab.end_ms} is before start_ms"
            raise InputError(msg)
        out.append(lab)
    return out
