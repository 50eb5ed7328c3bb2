"""Administrative effectiveness: how departments and command tiers handle their work orders,
and the ranking of departments the centre publishes.

The unit is a dispatch cycle (``sinks.feed.lifecycle.dispatch_cycles``: one alert sent to one
department, until closed, rejected or sent elsewhere). A cycle belongs to the period its
dispatch falls in and is followed until the report's data time, so a Monday 23:50 dispatch
signed on Tuesday counts for Monday.

Composite score (0-100) of a department: the weighted mean of five shares, each "higher is
better", over those it has a denominator for (:data:`WEIGHTS`):

=================  ======  =========================================================
component           weight  share
=================  ======  =========================================================
on time              30     cycles never overdue / dispatched cycles
closed               25     closed cycles / dispatched cycles
not rejected         15     1 - rejected / (signed + rejected)
not reworked         15     1 - cycles sent back for rework / cycles with feedback
not reopened         15     1 - closed cycles later reopened / closed cycles
=================  ======  =========================================================

Departments with fewer than :data:`MIN_RANKED` cycles are listed but not ranked.

>>> g = Group()
>>> g.score() is None
True
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from citywatch.tiers import Tier, centre_id, centre_tier, tier_for_rule
from sinks.feed.lifecycle import Cycle, dispatch_cycles
from sinks.reports import plots
from sinks.reports.content import Figure, Section, Stat, Table, fmt
from sinks.reports.context import Context

__all__ = ["MIN_RANKED", "WEIGHTS", "Group", "section"]

WEIGHTS: Final[tuple[tuple[str, int], ...]] = (
    ("on_time", 30),
    ("closed", 25),
    ("not_rejected", 15),
    ("not_reworked", 15),
    ("not_reopened", 15),
)
MIN_RANKED: Final = 5
TIER_ZH: Final = {Tier.CITY: "市级", Tier.COUNTY: "县区级", Tier.TOWN: "镇街级"}
MINUTE_MS: Final = 60_000
_TIERS: Final = frozenset(t.value for t in Tier)


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def percentile(xs: list[int], q: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least ``q`` of the values at or
    below it).

    >>> percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9), percentile([], 0.9)
    (9, None)
    """
    if not xs:
        return None
    s = sorted(xs)
    return s[max(0, math.ceil(q * len(s)) - 1)]


@dataclass(slots=True)
class Group:
    """The figures of a set of cycles (a department, a tier, a centre, everything)."""

    cycles: list[Cycle] = field(default_factory=list)

    def add(self, c: Cycle) -> None:
        self.cycles.append(c)

    @property
    def dispatched(self) -> int:
        return len(self.cycles)

    def _n(self, pred: Any) -> int:
        return sum(1 for c in self.cycles if pred(c))

    def figures(self) -> dict[str, Any]:
        cs = self.cycles
        signed = self._n(lambda c: c.sign_ms is not None)
        rejected = self._n(lambda c: c.reject_ms is not None)
        closed = self._n(lambda c: c.close_ms is not None)
        fed_back = self._n(lambda c: bool(c.feedback_ms))
        signoff = [c.signoff_ms for c in cs if c.signoff_ms is not None]
        handling = [c.handling_ms for c in cs if c.handling_ms is not None]
        return {
            "dispatched": len(cs),
            "signed": signed,
            "rejected": rejected,
            "closed": closed,
            "overdue": self._n(lambda c: c.overdue),
            "reworked": self._n(lambda c: c.reworks > 0),
            "reopened": self._n(lambda c: c.reopened),
            "signoff_ms_median": statistics.median(signoff) if signoff else None,
            "signoff_ms_p90": percentile(signoff, 0.9),
            "handling_ms_median": statistics.median(handling) if handling else None,
            "rejection_rate": _rate(rejected, signed + rejected),
            "rework_rate": _rate(self._n(lambda c: c.reworks > 0), fed_back),
            "overdue_rate": _rate(self._n(lambda c: c.overdue), len(cs)),
            "closure_rate": _rate(closed, len(cs)),
            "reopen_rate": _rate(self._n(lambda c: c.reopened), closed),
        }

    def components(self) -> dict[str, float | None]:
        f = self.figures()

        def inv(x: float | None) -> float | None:
            return None if x is None else 1 - x

        return {
            "on_time": inv(f["overdue_rate"]),
            "closed": f["closure_rate"],
            "not_rejected": inv(f["rejection_rate"]),
            "not_reworked": inv(f["rework_rate"]),
            "not_reopened": inv(f["reopen_rate"]),
        }

    def score(self) -> float | None:
        """The composite score 0-100 (module docstring), None without cycles."""
        comps = self.components()
        got = [(comps[k], w) for k, w in WEIGHTS if comps[k] is not None]
        if not got:
            return None
        return round(100 * sum(v * w for v, w in got if v is not None) / sum(w for _, w in got), 1)


def tier_of(c: Cycle, places: Mapping[str, tuple[str, str, str]]) -> tuple[Tier, str]:
    """(tier, centre id) of a cycle: what its dispatch recorded (centre, tier), else the
    rule's default tier at the alert's place (``citywatch.tiers``)."""
    district, town, rule = places.get(c.id, (c.district, "", c.rule))
    district = c.district if c.district not in ("", "?") else district
    if c.centre:
        return (Tier(c.tier) if c.tier in _TIERS else centre_tier(c.centre)), c.centre
    tier = Tier(c.tier) if c.tier in _TIERS else tier_for_rule(c.rule or rule)
    return tier, centre_id(tier, district=district or None, town=town or None)


def _groups(cycles: Iterable[Cycle], key: Any) -> dict[str, Group]:
    out: dict[str, Group] = defaultdict(Group)
    for c in cycles:
        out[key(c)].add(c)
    return dict(out)


def ranking(groups: Mapping[str, Group]) -> list[tuple[str, float | None, int | None]]:
    """(name, score, rank): ranked departments by score (ties: more cycles, then name), then
    the ones with fewer than :data:`MIN_RANKED` cycles, unranked."""
    ranked = sorted(
        ((n, g) for n, g in groups.items() if g.dispatched >= MIN_RANKED and g.score() is not None),
        key=lambda ng: (-(ng[1].score() or 0), -ng[1].dispatched, ng[0]),
    )
    out: list[tuple[str, float | None, int | None]] = [
        (n, g.score(), i + 1) for i, (n, g) in enumerate(ranked)
    ]
    out += [(n, g.score(), None) for n, g in sorted(groups.items()) if n not in {r[0] for r in out}]
    return out


_COLS: Final = [
    "派单",
    "签收用时中位",
    "签收用时P90",
    "办理用时中位",
    "退回率",
    "返工率",
    "超时率",
    "办结率",
    "重开率",
]
_NOTES: Final = (
    "cycle",
    "signoff",
    "handling",
    "rejection",
    "rework",
    "overdue",
    "closure",
    "reopen",
)


def _cells(f: Mapping[str, Any]) -> list[str]:
    return [
        fmt(f["dispatched"], "int"),
        fmt(f["signoff_ms_median"], "dur"),
        fmt(f["signoff_ms_p90"], "dur"),
        fmt(f["handling_ms_median"], "dur"),
        fmt(f["rejection_rate"], "pct"),
        fmt(f["rework_rate"], "pct"),
        fmt(f["overdue_rate"], "pct"),
        fmt(f["closure_rate"], "pct"),
        fmt(f["reopen_rate"], "pct"),
    ]


def centre_name(ctx: Context, centre: str) -> str:
    if centre == "city":
        return "市指挥中心"
    kind, _, rest = centre.partition(":")
    if kind == "county":
        return f"{rest}指挥中心"
    if kind == "town":
        return f"{ctx.town_name(rest)}指挥中心"
    return centre


def section(ctx: Context) -> Section:
    s = Section("effectiveness", "行政效能")
    all_cycles = dispatch_cycles(ctx.data.audit, now_ms=ctx.as_of_ms)
    cur = [c for c in all_cycles if ctx.period.contains(c.dispatch_ms)]
    prev = [c for c in all_cycles if ctx.previous.contains(c.dispatch_ms)]
    tot, tot_prev = Group(cur).figures(), Group(prev).figures()
    for key, label, kind, note in (
        ("dispatched", "派单（派发轮次）", "int", "cycle"),
        ("signoff_ms_median", "签收用时中位数", "dur", "signoff"),
        ("handling_ms_median", "办理用时中位数", "dur", "handling"),
        ("rejection_rate", "退回率", "pct", "rejection"),
        ("rework_rate", "返工率", "pct", "rework"),
        ("overdue_rate", "超时率", "pct", "overdue"),
        ("closure_rate", "办结率", "pct", "closure"),
        ("reopen_rate", "重开率", "pct", "reopen"),
    ):
        s.stats.append(Stat(key, label, tot[key], tot_prev[key], kind, note))  # type: ignore[arg-type]
    if not cur:
        s.notices.append("本期没有派单记录（审计流中无派发动作）：效能指标空缺。")
    depts, depts_prev = _groups(cur, lambda c: c.dept), _groups(prev, lambda c: c.dept)
    rank, rank_prev = ranking(depts), ranking(depts_prev)
    prev_pos = {n: (sc, r) for n, sc, r in rank_prev}
    score_of = {n: sc for n, sc, _ in rank}
    rows, data = [], []
    for name in sorted(depts, key=lambda n: (-depts[n].dispatched, n)):
        f = depts[name].figures()
        rows.append([name, *_cells(f), fmt(score_of.get(name), "f1")])
        data.append({"dept": name, **f, "score": score_of.get(name)})
    s.tables.append(
        Table(
            "by_dept",
            "各部门效能",
            ["部门", *_COLS, "综合得分"],
            rows,
            (*_NOTES, "score"),
            "本期无派单",
            data,
        )
    )
    r_rows, r_data = [], []
    for name, sc, r in rank:
        psc, pr = prev_pos.get(name, (None, None))
        move = (
            "—"
            if r is None or pr is None
            else ("持平" if r == pr else f"{'↑' if r < pr else '↓'}{abs(pr - r)}")
        )
        r_rows.append(
            [
                str(r) if r is not None else f"不排名（少于{MIN_RANKED}单）",
                name,
                fmt(sc, "f1"),
                fmt(psc, "f1"),
                str(pr) if pr else "—",
                move,
                str(depts[name].dispatched),
            ]
        )
        r_data.append(
            {"rank": r, "dept": name, "score": sc, "score_previous": psc, "rank_previous": pr}
        )
    title = {"month": "部门月度排名", "week": "部门本周排名", "day": "部门当日排名"}[
        ctx.period.kind
    ]
    s.tables.append(
        Table(
            "ranking",
            title,
            ["名次", "部门", "综合得分", "上期得分", "上期名次", "名次变化", "派单"],
            r_rows,
            ("score", "cycle"),
            "本期无派单",
            r_data,
        )
    )
    tiers = _groups(cur, lambda c: tier_of(c, ctx.data.places)[0].value)
    t_rows, t_data = [], []
    for t in (Tier.CITY, Tier.COUNTY, Tier.TOWN):
        if t.value in tiers:
            f = tiers[t.value].figures()
            t_rows.append([TIER_ZH[t], *_cells(f)])
            t_data.append({"tier": t.value, **f})
    s.tables.append(
        Table(
            "by_tier",
            "各层级效能（市、县区、镇街）",
            ["层级", *_COLS],
            t_rows,
            (*_NOTES, "tier"),
            "本期无派单",
            t_data,
        )
    )
    centres = _groups(cur, lambda c: tier_of(c, ctx.data.places)[1])
    c_rows, c_data = [], []
    for name in sorted(centres, key=lambda n: (-centres[n].dispatched, n))[:10]:
        f = centres[name].figures()
        c_rows.append(
            [
                centre_name(ctx, name),
                TIER_ZH[centre_tier(name)],
                fmt(f["dispatched"], "int"),
                fmt(f["signoff_ms_median"], "dur"),
                fmt(f["overdue_rate"], "pct"),
                fmt(f["closure_rate"], "pct"),
            ]
        )
        c_data.append({"centre": name, **f})
    s.tables.append(
        Table(
            "by_centre",
            "派单最多的指挥中心（前10）",
            ["指挥中心", "层级", "派单", "签收用时中位", "超时率", "办结率"],
            c_rows,
            ("tier", "cycle", "signoff", "overdue", "closure"),
            "本期无派单",
            c_data,
        )
    )
    if ctx.figures and depts:
        names = [n for n, _, _ in rank]
        unranked = {n for n, _, r in rank if r is None}

        def fig_label(n: str) -> str:
            return ctx.labels(n) + (" *" if n in unranked else "")

        s.figures.append(
            Figure(
                "effectiveness-scores",
                "各部门综合得分：本期与上期",
                plots.bars(
                    names,
                    [score_of.get(n) for n in names],
                    [prev_pos.get(n, (None, None))[0] for n in names],
                    ylabel="composite score (0-100)",
                    title="Department composite score",
                    labels=fig_label,
                    horizontal=True,
                ),
                "按本期排名排列；深色为本期，浅色为上期；* 派单不足"
                f"{MIN_RANKED}轮，不参与排名。" + _legend(ctx),
                ("score",),
            )
        )
        s.figures.append(
            Figure(
                "effectiveness-signoff",
                "各部门签收用时中位数（分钟）：本期与上期",
                plots.bars(
                    names,
                    [_minutes(depts[n].figures()["signoff_ms_median"]) for n in names],
                    [
                        _minutes(depts_prev[n].figures()["signoff_ms_median"])
                        if n in depts_prev
                        else None
                        for n in names
                    ],
                    ylabel="median sign-off time (min)",
                    title="Median sign-off time by department",
                    labels=ctx.labels,
                    horizontal=True,
                ),
                "深色为本期，浅色为上期。",
                ("signoff",),
            )
        )
    if rank and rank[0][2] == 1:
        best, worst = rank[0], [r for r in rank if r[2] is not None][-1]
        s.highlights.append(
            f"派单 {tot['dispatched']} 轮次，办结率 {fmt(tot['closure_rate'], 'pct')}，超时率 "
            f"{fmt(tot['overdue_rate'], 'pct')}；综合得分最高 {best[0]}（{fmt(best[1], 'f1')}），"
            f"最低 {worst[0]}（{fmt(worst[1], 'f1')}）。"
        )
    return s


def _minutes(ms: float | None) -> float | None:
    return None if ms is None else ms / MINUTE_MS


def _legend(ctx: Context) -> str:
    codes = ctx.labels.legend()
    return f"图中代码：{codes}。" if codes else ""
