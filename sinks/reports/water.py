"""Drinking water: quality events, limit breaches and frozen analysers, by station and district.

From ``water.event`` (evidence: ``channels`` that moved), ``water.range`` (``channels`` beyond
a limit or the analyser's span) and ``water.stuck`` alerts; station names from the registry's
``water_stations``. A city without water stations gets no water section (see
``sinks.reports.OPTIONAL``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from sinks.reports.content import Section, Stat, Table, change, fmt
from sinks.reports.context import Compared, Context, as_int, compare_counts

__all__ = ["RULES", "section"]

RULES: Final = ("water.event", "water.range", "water.stuck")
_CHANNEL_ZH: Final = {
    "temp_c": "水温",
    "ph": "pH",
    "conductivity_us_cm": "电导率",
    "turbidity_ntu": "浊度",
    "chlorine_mg_l": "余氯",
    "redox_mv": "氧化还原电位",
    "flow_m3_h": "流量",
}


def _station(a: Mapping[str, Any]) -> str:
    return str((a.get("subject") or {}).get("id") or "?")


def section(ctx: Context) -> Section:
    s = Section("water", "供水水质")
    alerts = ctx.alerts(RULES)
    cur, prev = ctx.started(alerts, ctx.period), ctx.started(alerts, ctx.previous)

    def count(rule: str, group: list[Mapping[str, Any]]) -> int:
        return sum(1 for a in group if a.get("rule") == rule)

    stations = {_station(a) for a in cur if a.get("rule") != "water.stuck"}
    stations_prev = {_station(a) for a in prev if a.get("rule") != "water.stuck"}
    s.stats += [
        Stat(
            "water_events",
            "水质突变告警",
            count("water.event", cur),
            count("water.event", prev),
            "int",
            "water_events",
        ),
        Stat(
            "water_breaches",
            "水质超标告警",
            count("water.range", cur),
            count("water.range", prev),
            "int",
            "water_breaches",
        ),
        Stat(
            "water_stations",
            "涉及水质监测点",
            len(stations),
            len(stations_prev),
            "int",
            "water_stations",
        ),
        Stat(
            "water_stuck",
            "仪表卡滞告警",
            count("water.stuck", cur),
            count("water.stuck", prev),
            "int",
            "water_stuck",
        ),
    ]
    reg = ctx.registry
    per: dict[str, list[Mapping[str, Any]]] = {}
    for a in cur:
        per.setdefault(_station(a), []).append(a)
    prev_by_station = Counter(_station(a) for a in prev)
    rows, data = [], []
    for sid, group in sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        info = reg.water_stations.get(sid) if reg is not None else None
        name = info.name if info is not None and info.name else sid
        channels: Counter[str] = Counter()
        for a in group:
            ch = ctx.evidence(a).get("channels")
            for c in ch if isinstance(ch, list) else []:
                channels[str(c)] += 1
        dur = sum(ctx.overlap_ms(a, ctx.period) for a in group if a.get("rule") != "water.stuck")
        last = max(as_int(a.get("first_ts")) for a in group)
        rows.append(
            [
                f"{name}（{sid}）" if name != sid else sid,
                str(group[0].get("district") or "—"),
                str(count("water.event", group)),
                str(count("water.range", group)),
                str(count("water.stuck", group)),
                "、".join(_CHANNEL_ZH.get(c, c) for c, _ in channels.most_common(4)) or "—",
                fmt(dur, "dur"),
                ctx.time(last),
                str(prev_by_station.get(sid, 0)),
            ]
        )
        data.append(
            {
                "station": sid,
                "name": name,
                "district": group[0].get("district"),
                "events": count("water.event", group),
                "breaches": count("water.range", group),
                "stuck": count("water.stuck", group),
                "duration_ms": dur,
                "alerts_previous": prev_by_station.get(sid, 0),
            }
        )
    s.tables.append(
        Table(
            "water_by_station",
            "各监测点水质告警",
            [
                "监测点",
                "区县",
                "水质突变",
                "超标",
                "仪表卡滞",
                "涉及指标",
                "本期内持续",
                "最近一次",
                "上期告警数",
            ],
            rows,
            ("water_events", "water_breaches", "water_stuck", "water_duration"),
            "本期无水质告警",
            data,
        )
    )
    quality = [a for a in cur if a.get("rule") != "water.stuck"]
    quality_prev = [a for a in prev if a.get("rule") != "water.stuck"]
    compare_counts(
        ctx,
        s,
        Compared(
            "water_by_district",
            "各区县水质告警（突变与超标）",
            "区县",
            Counter(str(a.get("district") or "—") for a in quality),
            Counter(str(a.get("district") or "—") for a in quality_prev),
            ("water_events", "water_breaches"),
            "本期和上期均无水质突变或超标告警",
            (
                "water-by-district",
                "各区县水质告警：本期与上期",
                "alerts",
                "Water-quality alerts by district",
                "深色为本期，浅色为上期；不含仪表卡滞。",
            ),
        ),
    )
    if cur:
        n_q, n_q_prev = len(quality), len(quality_prev)
        top = max(per.items(), key=lambda kv: len(kv[1]))
        s.highlights.append(
            f"水质突变与超标告警 {n_q} 起（较上期 {change(n_q, n_q_prev, 'int')}），涉及监测点 "
            f"{len(stations)} 个；仪表卡滞 {count('water.stuck', cur)} 起；最多的是 {top[0]}"
            f"（{len(top[1])} 起）。"
        )
    return s
