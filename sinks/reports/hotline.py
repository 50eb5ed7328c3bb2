"""12345 hotline: volume, categories, surges, duplicate merges, top addresses and towns.

Volume, categories and places from ``cw:tickets`` (every accepted ticket, once per id);
surges from ``hotline.surge`` alerts (evidence ``count``, ``expected``, ``p_value``,
``window_s``, ``category``); merges from ``hotline.duplicate`` alerts (evidence ``size``:
tickets in the cluster, ``members``, ``similarity``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sinks.reports import plots
from sinks.reports.content import Figure, Section, Stat, Table, change, fmt
from sinks.reports.context import Compared, Context, as_float, as_int, compare_counts, level_zh
from sinks.reports.period import Period

__all__ = ["CATEGORY_ZH", "section"]

#: The hotline's category codes (the ``category`` field) and their Chinese names.
CATEGORY_ZH: Final = {
    "noise": "噪声扰民",
    "odor": "异味废气",
    "garbage": "垃圾清运",
    "traffic": "交通秩序",
    "construction": "施工扬尘",
    "water": "供水问题",
    "vending": "占道经营",
    "streetlight": "路灯故障",
}
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000


def _cat(code: Any) -> str:
    code = str(code or "") or "未分类"
    return f"{CATEGORY_ZH[code]}（{code}）" if code in CATEGORY_ZH else code


def _in(tickets: Sequence[Mapping[str, Any]], period: Period) -> list[Mapping[str, Any]]:
    return [t for t in tickets if period.contains(as_int(t.get("ts")))]


class _Places:
    """Ticket -> (district, town id) by its coordinates, else its grid, else unknown."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        reg = ctx.registry
        self.locate = reg.locator().locate if reg is not None and reg.districts else None

    def of(self, t: Mapping[str, Any]) -> tuple[str, str]:
        reg = self.ctx.registry
        lat, lon = as_float(t.get("lat")), as_float(t.get("lon"))
        if self.locate is not None and lat is not None and lon is not None:
            loc = self.locate(lat, lon)
            if loc.town or loc.district:
                return loc.district or "—", loc.town or ""
        grid = t.get("grid")
        if reg is not None and isinstance(grid, str) and grid in reg.grids:
            g = reg.grids[grid]
            return g.district or "—", g.town
        return str(t.get("district") or "—"), str(t.get("town") or "")


def _address(t: Mapping[str, Any]) -> str | None:
    """Where the caller said it is: the ticket's address in words, else its grid."""
    addr = t.get("address")
    if isinstance(addr, str) and addr.strip():
        return addr.strip()
    grid = t.get("grid")
    return f"网格 {grid}" if isinstance(grid, str) and grid else None


def section(ctx: Context) -> Section:
    s = Section("hotline", "12345热线")
    cur, prev = _in(ctx.data.tickets, ctx.period), _in(ctx.data.tickets, ctx.previous)
    days = max(1.0, ctx.period.hours / 24)
    surges_all = ctx.alerts(["hotline.surge"])
    surges, surges_prev = ctx.started(surges_all, ctx.period), ctx.started(surges_all, ctx.previous)
    dups_all = ctx.alerts(["hotline.duplicate"])
    dups, dups_prev = ctx.started(dups_all, ctx.period), ctx.started(dups_all, ctx.previous)
    merged = sum(max(0, as_int(ctx.evidence(a).get("size"), 1) - 1) for a in dups)
    merged_prev = sum(max(0, as_int(ctx.evidence(a).get("size"), 1) - 1) for a in dups_prev)
    s.stats += [
        Stat("tickets", "工单量", len(cur), len(prev), "int", "tickets"),
        Stat("tickets_per_day", "日均工单", len(cur) / days, len(prev) / days, "f1", "tickets"),
        Stat("surges", "诉求激增告警", len(surges), len(surges_prev), "int", "surges"),
        Stat(
            "duplicate_clusters", "重复诉求合并组", len(dups), len(dups_prev), "int", "duplicates"
        ),
        Stat("merged_tickets", "被合并的重复工单", merged, merged_prev, "int", "duplicates"),
    ]
    _categories(ctx, s, cur, prev)
    if ctx.figures and (cur or prev):
        _volume(ctx, s, cur, prev)
    _surges(ctx, s, surges)
    _duplicates(ctx, s, dups)
    _places(ctx, s, cur, prev)
    if cur:
        top = Counter(str(t.get("category") or "") for t in cur).most_common(1)[0]
        s.highlights.insert(
            0,
            f"受理工单 {fmt(len(cur), 'int')} 件（较上期 {change(len(cur), len(prev), 'int')}），"
            f"最多的是{_cat(top[0])} {top[1]} 件；重复合并 {len(dups)} 组（{merged} 件），"
            f"激增告警 {len(surges)} 次。",
        )
    return s


def _categories(
    ctx: Context, s: Section, cur: Sequence[Mapping[str, Any]], prev: Sequence[Mapping[str, Any]]
) -> None:
    c = Counter(str(t.get("category") or "") for t in cur)
    p = Counter(str(t.get("category") or "") for t in prev)
    names = set(c) | set(p)
    compare_counts(
        ctx,
        s,
        Compared(
            "categories",
            "诉求类别",
            "类别",
            c,
            p,
            ("tickets", "category_share"),
            "本期和上期均无工单",
            (
                "hotline-categories",
                "诉求类别：本期与上期",
                "tickets",
                "Tickets by category",
                "类别代码："
                + "，".join(f"{k}={CATEGORY_ZH.get(k, k)}" for k in sorted(names))
                + "。",
            ),
            extra=("占比", lambda k: fmt(c.get(k, 0) / len(cur) if cur else None, "pct")),
            show=_cat,
            horizontal=True,
        ),
    )


def _volume(
    ctx: Context, s: Section, cur: Sequence[Mapping[str, Any]], prev: Sequence[Mapping[str, Any]]
) -> None:
    step = HOUR_MS if ctx.period.kind == "day" else DAY_MS
    n = int((ctx.period.end_ms - ctx.period.start_ms) // step)
    yc: list[float | None] = [0.0] * n
    yp: list[float | None] = [0.0] * n
    for t in cur:
        i = (as_int(t.get("ts")) - ctx.period.start_ms) // step
        if 0 <= i < n:
            yc[i] = (yc[i] or 0) + 1
    for t in prev:
        i = (as_int(t.get("ts")) - ctx.previous.start_ms) // step
        if 0 <= i < n:
            yp[i] = (yp[i] or 0) + 1
    # what the data does not reach yet is unknown, not zero
    for i in range(n):
        if ctx.period.start_ms + i * step >= ctx.as_of_ms:
            yc[i] = None
    unit = "hour" if step == HOUR_MS else "day"
    s.figures.append(
        Figure(
            "hotline-volume",
            "工单量走势：本期与上期对齐",
            plots.lines(
                list(range(n)),
                yc,
                yp,
                xlabel=f"{unit} of the period",
                ylabel=f"tickets per {unit}",
                title="Hotline volume",
            ),
            f"横轴为周期内第几{'小时' if step == HOUR_MS else '天'}（从0起）；"
            "深色为本期，浅色为上期。",
            ("tickets",),
        )
    )


def _surges(ctx: Context, s: Section, surges: Sequence[Mapping[str, Any]]) -> None:
    rows, data = [], []
    for a in sorted(surges, key=lambda a: as_int(a.get("first_ts"))):
        ev = ctx.evidence(a)
        rows.append(
            [
                str(ev.get("district") or a.get("district") or "—"),
                _cat(ev.get("category")),
                ctx.time(as_int(a.get("first_ts"))),
                fmt(ev.get("count"), "int"),
                fmt(as_float(ev.get("expected")), "f1"),
                f"{as_float(ev.get('p_value')):.1e}"
                if as_float(ev.get("p_value")) is not None
                else "—",
                fmt((as_float(ev.get("window_s")) or 0) / 3600 or None, "h1"),
                level_zh(a.get("level")),
            ]
        )
        data.append(
            {
                "id": a["id"],
                "district": ev.get("district"),
                "category": ev.get("category"),
                "count": ev.get("count"),
                "expected": ev.get("expected"),
            }
        )
    s.tables.append(
        Table(
            "surges",
            "诉求激增（hotline.surge）",
            ["区县", "类别", "开始", "窗口内件数", "常态期望件数", "p值", "窗口(h)", "级别"],
            rows,
            ("surges",),
            "本期无诉求激增",
            data,
        )
    )


def _duplicates(ctx: Context, s: Section, dups: Sequence[Mapping[str, Any]]) -> None:
    ranked = sorted(
        dups, key=lambda a: (-as_int(ctx.evidence(a).get("size"), 1), as_int(a.get("first_ts")))
    )
    rows, data = [], []
    for a in ranked[:10]:
        ev = ctx.evidence(a)
        rows.append(
            [
                str((a.get("subject") or {}).get("id") or "?"),
                fmt(ev.get("size"), "int"),
                _cat(ev.get("category")),
                f"{a.get('district') or '—'} {ctx.town_name(a.get('town'))}",
                _two(as_float(ev.get("similarity"))),
                ctx.time(as_int(ev.get("first_ts")) or as_int(a.get("first_ts"))),
                ctx.time(as_int(a.get("last_ts"))),
            ]
        )
        data.append(
            {
                "id": a["id"],
                "ticket": (a.get("subject") or {}).get("id"),
                "size": ev.get("size"),
                "category": ev.get("category"),
            }
        )
    s.tables.append(
        Table(
            "duplicate_clusters",
            "重复诉求合并（hotline.duplicate，前10，按件数）",
            ["主工单", "件数", "类别", "区县 镇街", "相似度", "首件", "末件"],
            rows,
            ("duplicates",),
            "本期无重复诉求合并",
            data,
        )
    )


def _two(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def _places(
    ctx: Context, s: Section, cur: Sequence[Mapping[str, Any]], prev: Sequence[Mapping[str, Any]]
) -> None:
    places = _Places(ctx)
    addr: Counter[str] = Counter()
    addr_cat: dict[str, Counter[str]] = {}
    towns: Counter[tuple[str, str]] = Counter()
    towns_prev: Counter[tuple[str, str]] = Counter()
    unplaced = 0
    for t in cur:
        a = _address(t)
        if a is not None:
            addr[a] += 1
            addr_cat.setdefault(a, Counter())[str(t.get("category") or "")] += 1
        d, town = places.of(t)
        towns[(d, town)] += 1
        unplaced += not town
    for t in prev:
        towns_prev[places.of(t)] += 1
    s.stats.append(
        Stat("unplaced", "未能定位到镇街的工单", unplaced, None, "int", "town_of_ticket")
    )
    rows = [
        [a, str(n), _cat(addr_cat[a].most_common(1)[0][0])]
        for a, n in addr.most_common(10)
        if n >= 2
    ]
    s.tables.append(
        Table(
            "top_addresses",
            "高频地址（前10，至少2件）",
            ["地址", "件数", "主要类别"],
            rows,
            ("top_addresses",),
            "本期没有重复出现的地址",
            [{"address": a, "tickets": n} for a, n in addr.most_common(10) if n >= 2],
        )
    )
    t_rows = [
        [
            ctx.town_name(town),
            d,
            str(n),
            str(towns_prev.get((d, town), 0)),
            change(n, towns_prev.get((d, town), 0), "int"),
        ]
        for (d, town), n in towns.most_common(10)
    ]
    s.tables.append(
        Table(
            "top_towns",
            "工单最多的镇街（前10）",
            ["镇街", "区县", "本期", "上期", "变化"],
            t_rows,
            ("town_of_ticket",),
            "本期无工单",
            [{"district": d, "town": town, "tickets": n} for (d, town), n in towns.most_common(10)],
        )
    )
