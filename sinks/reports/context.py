"""What every topic of a report works from: the data, the two periods, the registry.

Alert selection rules, shared by every topic (docs/reports.md):

- an alert *of a period* is one whose episode started in it (``first_ts`` in the period):
  counts of alerts use these;
- durations are the part of each episode inside the period (:meth:`Context.overlap_ms`),
  an episode still firing lasting until the report's data time (``as_of_ms``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from citywatch.alerts import Level
from citywatch.errors import SchemaError
from citywatch.registry import Registry
from sinks.reports import plots
from sinks.reports.content import Figure, Section, Table, change
from sinks.reports.period import Period
from sinks.reports.plots import Labels
from sinks.reports.source import Dataset

__all__ = ["Compared", "Context", "as_int", "compare_counts", "level_zh"]


def as_int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def as_float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


@dataclass(slots=True)
class Context:
    data: Dataset
    period: Period
    previous: Period
    as_of_ms: int
    registry: Registry | None = None
    #: the outlines are the simulator's, not the operator's (said on the map)
    simulated_outlines: bool = False
    #: draw figures (off for the stdout summary: quicker)
    figures: bool = True
    labels: Labels = field(default_factory=Labels)

    def alerts(self, rules: Iterable[str]) -> list[dict[str, Any]]:
        """Alerts of these rules (exact names, or families ending in ``.``)."""
        wanted = tuple(rules)
        return [
            a
            for a in self.data.alerts
            if any(a["rule"] == r or (r.endswith(".") and a["rule"].startswith(r)) for r in wanted)
        ]

    @staticmethod
    def started(alerts: Iterable[Mapping[str, Any]], period: Period) -> list[Mapping[str, Any]]:
        """The alerts whose episode started in ``period``."""
        return [a for a in alerts if period.contains(as_int(a.get("first_ts")))]

    def end_ms(self, a: Mapping[str, Any]) -> int:
        """When the episode ended: ``last_ts`` if resolved, else it lasts until ``as_of_ms``."""
        last = as_int(a.get("last_ts"), as_int(a.get("first_ts")))
        return last if a.get("state") == "resolved" else max(last, self.as_of_ms)

    def overlap_ms(self, a: Mapping[str, Any], period: Period) -> int:
        """The part of the episode inside ``period``."""
        lo = max(as_int(a.get("first_ts")), period.start_ms)
        hi = min(self.end_ms(a), period.end_ms)
        return max(0, hi - lo)

    def town_name(self, town: str | None) -> str:
        if not town:
            return "未定位"
        if self.registry is not None and town in self.registry.towns:
            return self.registry.towns[town].name
        return town

    def evidence(self, a: Mapping[str, Any]) -> Mapping[str, Any]:
        ev = a.get("evidence")
        return ev if isinstance(ev, Mapping) else {}

    def time(self, ts: int | None) -> str:
        return "—" if not ts else self.period.local_time(ts)

    @property
    def complete(self) -> bool:
        """Whether the data reaches the end of the period."""
        return self.as_of_ms >= self.period.end_ms


def level_zh(level: Any) -> str:
    """蓝色/黄色/橙色/红色 for a level name, else a dash."""
    try:
        return Level.parse(level).label_zh
    except SchemaError:
        return "—"


@dataclass(frozen=True, slots=True)
class Compared:
    """A count per name this period and the previous one, as a table and a bar figure."""

    key: str
    title: str
    column: str
    current: Counter[str]
    previous: Counter[str]
    notes: tuple[str, ...]
    empty: str
    #: the figure: file key, title, y label and English title, caption
    figure: tuple[str, str, str, str, str]
    #: one more column: (header, cell of a name)
    extra: tuple[str, Callable[[str], str]] | None = None
    show: Callable[[str], str] = str
    horizontal: bool = False


def compare_counts(ctx: Context, s: Section, c: Compared) -> list[str]:
    """Add the table (name, this period, previous, change[, extra]) and, with figures on,
    the bars; returns the names, most this period first."""
    cur, prev = c.current, c.previous
    names = sorted(set(cur) | set(prev), key=lambda k: (-cur.get(k, 0), k))
    rows = []
    for k in names:
        row = [c.show(k), str(cur.get(k, 0)), str(prev.get(k, 0))]
        row.append(change(cur.get(k, 0), prev.get(k, 0), "int"))
        if c.extra is not None:
            row.append(c.extra[1](k))
        rows.append(row)
    columns = [c.column, "本期", "上期", "变化", *([c.extra[0]] if c.extra else [])]
    data = [{"name": k, "current": cur.get(k, 0), "previous": prev.get(k, 0)} for k in names]
    s.tables.append(Table(c.key, c.title, columns, rows, c.notes, c.empty, data))
    if ctx.figures and names:
        key, title, ylabel, en_title, caption = c.figure
        png = plots.bars(
            names,
            [cur.get(k, 0) for k in names],
            [prev.get(k, 0) for k in names],
            ylabel=ylabel,
            title=en_title,
            labels=ctx.labels,
            horizontal=c.horizontal,
        )
        s.figures.append(Figure(key, title, png, caption, c.notes[:1]))
    return names
