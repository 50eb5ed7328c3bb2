"""Air quality: AQI by district, hours per AQI category, pollution episodes, faulty stations.

AQI comes from the air model's ``air.hourly`` observations (one per station per completed
clock hour: ``aqi``, ``level`` 1-6, ``category``, ``primary`` and the hourly means); episodes
and faults from the ``air.*`` alerts. Without observations the section says so and still
shows the alert-based parts.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Final

from sinks.reports import plots
from sinks.reports.content import Figure, Section, Stat, Table, change, fmt
from sinks.reports.context import Context, as_float, as_int, level_zh
from sinks.reports.period import Period

__all__ = ["CATEGORY_ZH", "aqi_level", "section"]

#: Upper AQI bound of categories 1-5 (HJ 633-2012); above 300 is 6.
_AQI_MAX: Final = (50, 100, 150, 200, 300)
CATEGORY_ZH: Final = ("优", "良", "轻度污染", "中度污染", "重度污染", "严重污染")
FAULT_RULES: Final = ("air.stuck", "air.range", "air.drift")
_FAULT_ZH: Final = {"air.stuck": "数据恒定", "air.range": "超量程", "air.drift": "漂移"}
_POLLUTANT_ZH: Final = {
    "pm25": "PM2.5",
    "pm10": "PM10",
    "no2": "NO₂",
    "so2": "SO₂",
    "o3": "O₃",
    "co": "CO",
}
HOUR_MS: Final = 3_600_000


def aqi_level(aqi: float) -> int:
    """Category 1-6 of an AQI value.

    >>> aqi_level(50), aqi_level(51), aqi_level(301)
    (1, 2, 6)
    """
    for i, hi in enumerate(_AQI_MAX):
        if aqi <= hi:
            return i + 1
    return 6


class _Hours:
    """The station-hours of one period."""

    def __init__(self, obs: Sequence[Mapping[str, Any]], period: Period) -> None:
        self.rows: list[tuple[str, str, int, float, list[str]]] = []
        for o in obs:
            ts = as_int(o.get("ts"))
            values = o.get("values") or {}
            aqi = as_float(values.get("aqi"))
            if not period.contains(ts) or aqi is None:
                continue
            primary = values.get("primary") or []
            self.rows.append(
                (
                    str((o.get("subject") or {}).get("id")),
                    str(o.get("district") or "未知区县"),
                    ts,
                    aqi,
                    [str(p) for p in primary] if isinstance(primary, list) else [],
                )
            )

    def by_district(self) -> dict[str, list[tuple[str, str, int, float, list[str]]]]:
        out: dict[str, list[tuple[str, str, int, float, list[str]]]] = defaultdict(list)
        for r in self.rows:
            out[r[1]].append(r)
        return out

    def area_hours(
        self, rows: Sequence[tuple[str, str, int, float, list[str]]]
    ) -> dict[int, float]:
        """Clock hour -> the mean AQI of the stations reporting it."""
        per: dict[int, list[float]] = defaultdict(list)
        for r in rows:
            per[r[2] - r[2] % HOUR_MS].append(r[3])
        return {h: statistics.fmean(v) for h, v in per.items()}

    def mean(
        self, rows: Sequence[tuple[str, str, int, float, list[str]]] | None = None
    ) -> float | None:
        rows = self.rows if rows is None else rows
        return statistics.fmean(r[3] for r in rows) if rows else None

    def good_share(
        self, rows: Sequence[tuple[str, str, int, float, list[str]]] | None = None
    ) -> float | None:
        rows = self.rows if rows is None else rows
        return sum(r[3] <= 100 for r in rows) / len(rows) if rows else None


def section(ctx: Context) -> Section:
    s = Section("air", "空气质量")
    cur = _Hours(ctx.data.hourly, ctx.period)
    prev = _Hours(ctx.data.hourly, ctx.previous)
    if not cur.rows:
        s.notices.append(
            "本期无逐小时AQI数据（air.hourly 观测为空：空气模型未运行或尚无完整小时）；"
            "以下AQI相关数字空缺，污染过程与站点故障来自告警。"
        )
    city_cur, city_prev = cur.area_hours(cur.rows), prev.area_hours(prev.rows)
    polluted = sum(v > 100 for v in city_cur.values()) if city_cur else None
    polluted_prev = sum(v > 100 for v in city_prev.values()) if city_prev else None
    s.stats += [
        Stat("aqi_mean", "全市平均AQI", cur.mean(), prev.mean(), "f1", "aqi_mean"),
        Stat(
            "good_share", "优良小时占比", cur.good_share(), prev.good_share(), "pct", "good_share"
        ),
        Stat("polluted_hours", "全市污染小时数", polluted, polluted_prev, "int", "polluted_hours"),
    ]
    _districts(ctx, s, cur, prev)
    _categories(ctx, s, cur)
    if ctx.figures and city_cur:
        xs, ys_cur, ys_prev = _aligned(city_cur, city_prev, ctx.period, ctx.previous)
        unit = "hours" if ctx.period.kind == "day" else "days"
        bands = [
            (lo, hi, c)
            for lo, hi, c in zip(
                (0, 50, 100, 150, 200, 300),
                (50, 100, 150, 200, 300, 500),
                plots.CATEGORY_COLOURS,
                strict=True,
            )
        ]
        s.figures.append(
            Figure(
                "air-city-hourly",
                "全市逐小时AQI（本期与上期对齐）",
                plots.lines(
                    xs,
                    ys_cur,
                    ys_prev or None,
                    xlabel=f"{unit} since the start of the period",
                    ylabel="city AQI (mean of stations)",
                    title="City hourly AQI: this period vs previous",
                    bands=bands,
                ),
                "背景色带为AQI类别（优、良、轻度……）。",
                ("city_hour_aqi",),
            )
        )
    _episodes(ctx, s)
    _faults(ctx, s)
    counts = []
    for rule, key, label in (
        ("air.exceedance", "exceedances", "超标告警"),
        ("air.spike", "spikes", "局地污染源告警"),
    ):
        alerts = ctx.alerts([rule])
        n, p = len(ctx.started(alerts, ctx.period)), len(ctx.started(alerts, ctx.previous))
        s.stats.append(Stat(key, label, n, p, "int", "alerts_started"))
        counts.append((label, n))
    mean, prev_mean = cur.mean(), prev.mean()
    if mean is not None:
        s.highlights.insert(
            0,
            f"全市平均AQI {fmt(mean, 'f1')}（{CATEGORY_ZH[aqi_level(mean) - 1]}），"
            f"较上期 {change(mean, prev_mean, 'f1')}；"
            f"优良小时占比 {fmt(cur.good_share(), 'pct')}。",
        )
    return s


def _aligned(
    cur: Mapping[int, float], prev: Mapping[int, float], period: Period, previous: Period
) -> tuple[list[float], list[float | None], list[float | None]]:
    """Both series on hours since their period's start (x in hours for a day, else days)."""
    n = int(period.hours)
    unit = 1.0 if period.kind == "day" else 24.0
    xs = [h / unit for h in range(n)]
    ys_cur = [cur.get(period.start_ms + h * HOUR_MS) for h in range(n)]
    ys_prev = [prev.get(previous.start_ms + h * HOUR_MS) for h in range(n)] if prev else []
    return xs, ys_cur, ys_prev


def _districts(ctx: Context, s: Section, cur: _Hours, prev: _Hours) -> None:
    dc, dp = cur.by_district(), prev.by_district()
    names = sorted(set(dc) | set(dp), key=lambda d: -(cur.mean(dc.get(d, [])) or 0))
    rows, data = [], []
    for d in names:
        rc, rp = dc.get(d, []), dp.get(d, [])
        m, pm = cur.mean(rc) if rc else None, prev.mean(rp) if rp else None
        top = max((r[3] for r in rc), default=None)
        primary = Counter(p for r in rc for p in r[4]).most_common(1)
        stations = len({r[0] for r in rc})
        rows.append(
            [
                d,
                fmt(stations, "int"),
                fmt(m, "f1"),
                fmt(pm, "f1"),
                change(m, pm, "f1"),
                fmt(top, "int"),
                fmt(cur.good_share(rc) if rc else None, "pct"),
                _POLLUTANT_ZH.get(primary[0][0], primary[0][0]) if primary else "—",
            ]
        )
        data.append(
            {
                "district": d,
                "stations": stations,
                "aqi_mean": m,
                "aqi_mean_previous": pm,
                "aqi_max": top,
            }
        )
    s.tables.append(
        Table(
            "aqi_by_district",
            "各区县AQI",
            [
                "区县",
                "站点数",
                "平均AQI",
                "上期",
                "变化",
                "最高小时AQI",
                "优良小时占比",
                "主要首要污染物",
            ],
            rows,
            ("aqi_mean", "aqi_max", "good_share", "primary"),
            "本期无逐小时AQI数据",
            data,
        )
    )
    if ctx.figures and dc:
        s.figures.append(
            Figure(
                "air-district-aqi",
                "各区县平均AQI：本期与上期",
                plots.bars(
                    names,
                    [cur.mean(dc.get(d, [])) if dc.get(d) else None for d in names],
                    [prev.mean(dp.get(d, [])) if dp.get(d) else None for d in names]
                    if dp
                    else None,
                    ylabel="mean hourly AQI",
                    title="Mean AQI by district",
                    labels=ctx.labels,
                ),
                "深色为本期，浅色为上期。",
                ("aqi_mean",),
            )
        )


def _categories(ctx: Context, s: Section, cur: _Hours) -> None:
    dc = cur.by_district()
    names = sorted(dc)
    table_rows, data = [], []
    layers = [[0.0] * len(names) for _ in CATEGORY_ZH]
    city = Counter(aqi_level(v) for v in cur.area_hours(cur.rows).values())
    for i, d in enumerate(names):
        hours = cur.area_hours(dc[d])
        c = Counter(aqi_level(v) for v in hours.values())
        for k in range(6):
            layers[k][i] = c.get(k + 1, 0)
        table_rows.append([d, *(str(c.get(k + 1, 0)) for k in range(6)), str(len(hours))])
        data.append({"district": d, **{CATEGORY_ZH[k]: c.get(k + 1, 0) for k in range(6)}})
    if city:
        table_rows.append(
            ["全市", *(str(city.get(k + 1, 0)) for k in range(6)), str(sum(city.values()))]
        )
    s.tables.append(
        Table(
            "hours_per_category",
            "各AQI类别小时数",
            ["区县", *CATEGORY_ZH, "有数据小时"],
            table_rows,
            ("category_hours", "city_hour_aqi"),
            "本期无逐小时AQI数据",
            data,
        )
    )
    if ctx.figures and names:
        s.figures.append(
            Figure(
                "air-category-hours",
                "各区县AQI类别小时数",
                plots.stacked(
                    names,
                    layers,
                    plots.CATEGORY_EN,
                    plots.CATEGORY_COLOURS,
                    xlabel="hours",
                    title="Hours per AQI category (district hourly AQI)",
                    labels=ctx.labels,
                ),
                "类别：Excellent=优, Good=良, Light=轻度污染, Moderate=中度污染, "
                "Heavy=重度污染, Severe=严重污染。",
                ("category_hours",),
            )
        )


def _episodes(ctx: Context, s: Section) -> None:
    alerts = ctx.alerts(["air.episode"])
    cur = [a for a in alerts if ctx.overlap_ms(a, ctx.period)]
    prev = [a for a in alerts if ctx.overlap_ms(a, ctx.previous)]
    hours = sum(ctx.overlap_ms(a, ctx.period) for a in cur) / HOUR_MS
    hours_prev = sum(ctx.overlap_ms(a, ctx.previous) for a in prev) / HOUR_MS
    s.stats.append(Stat("episodes", "区域污染过程", len(cur), len(prev), "int", "episodes"))
    s.stats.append(
        Stat(
            "episode_hours",
            "污染过程累计小时",
            hours if cur else 0,
            hours_prev if prev else 0,
            "h1",
            "episode_hours",
        )
    )
    rows, data = [], []
    for a in sorted(cur, key=lambda a: as_int(a.get("first_ts"))):
        ev = ctx.evidence(a)
        ongoing = a.get("state") != "resolved"
        rows.append(
            [
                str(a.get("district") or (a.get("subject") or {}).get("id") or "—"),
                ctx.time(as_int(a.get("first_ts"))),
                "持续中" if ongoing else ctx.time(as_int(a.get("last_ts"))),
                fmt(ctx.overlap_ms(a, ctx.period) / HOUR_MS, "h1"),
                level_zh(a.get("level")),
                fmt(ev.get("stations"), "int"),
                fmt(as_float(ev.get("share_elevated")), "pct"),
            ]
        )
        data.append(
            {
                "id": a["id"],
                "district": a.get("district"),
                "first_ts": a.get("first_ts"),
                "last_ts": a.get("last_ts"),
                "level": a.get("level"),
            }
        )
    s.tables.append(
        Table(
            "episodes",
            "区域污染过程（air.episode）",
            ["区县", "开始", "结束", "本期内时长(h)", "最高级别", "站点数", "升高站点占比"],
            rows,
            ("episodes", "episode_hours"),
            "本期无区域污染过程",
            data,
        )
    )
    if cur:
        s.highlights.append(
            f"区域污染过程 {len(cur)} 次，累计 {fmt(hours, 'h1')} 小时（上期 {len(prev)} 次）。"
        )


def _faults(ctx: Context, s: Section) -> None:
    alerts = ctx.alerts(FAULT_RULES)
    per: dict[str, dict[str, Any]] = {}
    prev_ms: Counter[str] = Counter()
    for a in alerts:
        sid = str((a.get("subject") or {}).get("id"))
        ms = ctx.overlap_ms(a, ctx.period)
        prev_ms[sid] += ctx.overlap_ms(a, ctx.previous)
        if not ms and not ctx.period.contains(as_int(a.get("first_ts"))):
            continue
        row = per.setdefault(
            sid,
            {
                "district": a.get("district") or "—",
                "rules": Counter(),
                "ms": 0,
                "longest": 0,
                "n": 0,
            },
        )
        row["rules"][a["rule"]] += 1
        row["ms"] += ms
        row["longest"] = max(row["longest"], ms)
        row["n"] += 1
    ranked = sorted(per.items(), key=lambda kv: (-kv[1]["ms"], kv[0]))
    prev_n = sum(1 for v in prev_ms.values() if v)
    s.stats.append(Stat("faulty_stations", "故障站点数", len(per), prev_n, "int", "faulty"))
    rows, data = [], []
    for sid, row in ranked[:10]:
        kinds = "、".join(f"{_FAULT_ZH[r]}×{n}" for r, n in sorted(row["rules"].items()))
        rows.append(
            [
                sid,
                str(row["district"]),
                kinds,
                str(row["n"]),
                fmt(row["ms"], "dur"),
                fmt(row["longest"], "dur"),
                fmt(prev_ms.get(sid, 0) or None, "dur"),
            ]
        )
        data.append(
            {
                "station": sid,
                "district": row["district"],
                "rules": dict(row["rules"]),
                "alerts": row["n"],
                "fault_ms": row["ms"],
                "longest_ms": row["longest"],
                "fault_ms_previous": prev_ms.get(sid, 0),
            }
        )
    s.tables.append(
        Table(
            "faulty_stations",
            "故障站点（前10，按本期累计故障时长）",
            ["站点", "区县", "故障类型×次数", "告警数", "本期累计时长", "最长一次", "上期累计时长"],
            rows,
            ("faulty", "fault_duration"),
            "本期无站点故障告警",
            data,
        )
    )
    if ranked:
        sid, row = ranked[0]
        s.highlights.append(
            f"故障站点 {len(per)} 个，时长最长的是 {sid}"
            f"（{row['district']}，{fmt(row['ms'], 'dur')}）。"
        )
