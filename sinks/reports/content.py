"""What a report is made of: sections of key figures, tables and figures, each number tied to
a note (``sinks/reports/notes.py``) that says how it is computed.

The topic modules build :class:`Section` values; ``html.py`` and ``text.py`` render them.
Values stay numbers here (for ``--json`` and tests); formatting is :func:`fmt`.

>>> fmt(0.1234, "pct"), fmt(9_000_000, "dur"), fmt(None, "int"), fmt(87.25, "f1")
('12.3%', '2.5h', '—', '87.2')
>>> change(12, 10, "int"), change(0.30, 0.25, "pct"), change(5, None, "int")
('+2 (+20.0%)', '+5.0个百分点', '—')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["Figure", "Report", "Section", "Stat", "Table", "change", "fmt"]

Fmt = Literal["int", "f1", "pct", "dur", "h1", "text"]
NONE: Final = "—"


def fmt(value: Any, kind: str) -> str:
    """A value as shown: ``int`` 1,234; ``f1`` 12.3; ``pct`` 12.3%; ``dur`` from ms (45s,
    12min, 3.5h, 2.1d); ``h1`` hours with one decimal; ``text`` as is; None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NONE
    if kind == "int":
        return f"{round(value):,}"
    if kind == "f1":
        return f"{value:.1f}"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "h1":
        return f"{value:.1f}"
    if kind == "dur":
        s = float(value) / 1000
        if s < 120:
            return f"{s:.0f}s"
        if s < 7200:
            return f"{s / 60:.0f}min"
        if s < 172_800:
            return f"{s / 3600:.1f}h"
        return f"{s / 86400:.1f}d"
    return str(value)


def change(cur: Any, prev: Any, kind: str) -> str:
    """The change from ``prev`` to ``cur``: rates in percentage points, counts and others as a
    difference with the relative change when ``prev`` is not zero."""
    if cur is None or prev is None or kind == "text":
        return NONE
    diff = cur - prev
    if kind == "pct":
        return f"{100 * diff:+.1f}个百分点"
    shown = fmt(abs(diff), kind)
    sign = "+" if diff > 0 else "-" if diff < 0 else "±"
    rel = f" ({100 * diff / prev:+.1f}%)" if prev else ""
    return f"{sign}{shown}{rel}"


@dataclass(slots=True)
class Stat:
    """A key figure of the period, with the previous period's for comparison."""

    key: str
    label: str
    current: float | None
    previous: float | None
    kind: Fmt
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "current": self.current, "previous": self.previous}


@dataclass(slots=True)
class Table:
    """Rows of already formatted cells; ``data`` keeps the numbers for ``--json``."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    notes: tuple[str, ...] = ()
    empty: str = "本期无数据"
    data: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Figure:
    """One PNG (``key``.png next to the report, inlined in the page)."""

    key: str
    title: str
    png: bytes
    caption: str
    notes: tuple[str, ...] = ()


@dataclass(slots=True)
class Section:
    topic: str
    title: str
    stats: list[Stat] = field(default_factory=list)
    highlights: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    #: what is missing or partial (no hourly AQI, no registry, ...), shown at the top
    notices: list[str] = field(default_factory=list)

    @property
    def has_content(self) -> bool:
        """Whether the section shows anything of the period (a figure or a non-empty table,
        or a key figure with a value)."""
        return (
            bool(self.figures)
            or any(t.rows for t in self.tables)
            or any(s.current for s in self.stats)
        )

    def notes(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.stats:
            seen.setdefault(s.note, None)
        for t in self.tables:
            for n in t.notes:
                seen.setdefault(n, None)
        for f in self.figures:
            for n in f.notes:
                seen.setdefault(n, None)
        return list(seen)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "stats": {s.key: s.as_dict() for s in self.stats},
            "highlights": self.highlights,
            "notices": self.notices,
            "tables": {t.key: t.data for t in self.tables},
            "figures": [f"{f.key}.png" for f in self.figures],
        }


@dataclass(slots=True)
class Report:
    """A whole report: the period, the one it is compared with, and one section per topic."""

    title: str
    period: Any  # sinks.reports.period.Period
    previous: Any
    as_of_ms: int
    generated_ms: int
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "period": {
                "kind": self.period.kind,
                "label": self.period.label,
                "start_ms": self.period.start_ms,
                "end_ms": self.period.end_ms,
            },
            "previous": {
                "label": self.previous.label,
                "start_ms": self.previous.start_ms,
                "end_ms": self.previous.end_ms,
            },
            "as_of_ms": self.as_of_ms,
            "generated_ms": self.generated_ms,
            "meta": self.meta,
            "sections": {s.topic: s.as_dict() for s in self.sections},
        }
