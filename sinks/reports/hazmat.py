"""Hazmat vehicles: where they dwelt abnormally (a map over the district outlines), which
vehicles did it again, and the candidate illegal workshops with their evidence.

From ``vehicle.dwell`` alerts (evidence: ``context`` school/hospital/residential/water/...,
``ref`` the zone or place, ``dwell_s``, ``un``) and ``vehicle.workshop`` alerts (evidence:
``vehicles``, ``visits``, ``dwell_s``, ``vehicle_ids``, ``first_ms``, ``last_ms``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any, Final

from sinks.reports import plots
from sinks.reports.content import Figure, Section, Stat, Table, change, fmt
from sinks.reports.context import Context, as_float, as_int, level_zh

__all__ = ["section"]

_CONTEXT_ZH: Final = {
    "school": "学校",
    "hospital": "医院",
    "residential": "居民区",
    "water": "水源地",
    "unregistered": "非登记地点",
    "gate": "企业门口",
    "unknown": "未知",
    "enterprise": "登记企业",
    "depot": "停车场",
    "fuel": "加油站",
}
_LEVELS: Final = ("blue", "yellow", "orange", "red")


def _level_rank(level: Any) -> int:
    return _LEVELS.index(level) if level in _LEVELS else -1


def _vehicle(a: Mapping[str, Any]) -> str:
    return str((a.get("subject") or {}).get("id") or "?")


def _place(ctx: Context, a: Mapping[str, Any]) -> tuple[str, str]:
    """(key, name) of where a dwell happened: the zone or place named in its evidence, else
    its grid, else rounded coordinates."""
    ev = ctx.evidence(a)
    ref = ev.get("ref")
    reg = ctx.registry
    if isinstance(ref, str) and ref:
        if reg is not None and ref in reg.zones:
            return ref, f"{reg.zones[ref].name}（{ref}）"
        if reg is not None and ref in reg.places:
            return ref, f"{reg.places[ref].name}（{ref}）"
        return ref, ref
    if a.get("grid"):
        return str(a["grid"]), f"网格 {a['grid']}"
    lat, lon = as_float(a.get("lat")), as_float(a.get("lon"))
    if lat is None or lon is None:
        return "?", "位置不明"
    key = f"{lat:.3f},{lon:.3f}"
    return key, key


def section(ctx: Context) -> Section:
    s = Section("hazmat", "危化品车辆")
    dwell_all = ctx.alerts(["vehicle.dwell"])
    cur = ctx.started(dwell_all, ctx.period)
    prev = ctx.started(dwell_all, ctx.previous)
    vehicles = Counter(_vehicle(a) for a in cur)
    vehicles_prev = Counter(_vehicle(a) for a in prev)
    repeat = {v: n for v, n in vehicles.items() if n >= 2}
    repeat_prev = sum(1 for n in vehicles_prev.values() if n >= 2)
    hours = sum(as_float(ctx.evidence(a).get("dwell_s")) or 0.0 for a in cur) / 3600
    hours_prev = sum(as_float(ctx.evidence(a).get("dwell_s")) or 0.0 for a in prev) / 3600
    high = sum(1 for a in cur if a.get("level") in ("orange", "red"))
    high_prev = sum(1 for a in prev if a.get("level") in ("orange", "red"))
    s.stats += [
        Stat("dwell_alerts", "异常停留告警", len(cur), len(prev), "int", "dwell_alerts"),
        Stat("dwell_high", "其中橙色及以上", high, high_prev, "int", "dwell_alerts"),
        Stat(
            "dwell_vehicles", "涉及车辆", len(vehicles), len(vehicles_prev), "int", "dwell_vehicles"
        ),
        Stat("repeat_vehicles", "重复停留车辆", len(repeat), repeat_prev, "int", "repeat_vehicles"),
        Stat("dwell_hours", "异常停留累计小时", hours, hours_prev, "h1", "dwell_hours"),
    ]
    _hotspots(ctx, s, cur, prev)
    _repeat(ctx, s, cur, repeat)
    _workshops(ctx, s)
    if ctx.figures:
        _map(ctx, s, cur)
    if cur:
        s.highlights.insert(
            0,
            f"异常停留告警 {len(cur)} 起（较上期 {change(len(cur), len(prev), 'int')}），涉及车辆 "
            f"{len(vehicles)} 辆，其中 {len(repeat)} 辆在本期内重复发生。",
        )
    return s


def _hotspots(
    ctx: Context, s: Section, cur: list[Mapping[str, Any]], prev: list[Mapping[str, Any]]
) -> None:
    groups: dict[str, dict[str, Any]] = {}
    prev_n = Counter(_place(ctx, a)[0] for a in prev)
    for a in cur:
        key, name = _place(ctx, a)
        g = groups.setdefault(
            key,
            {
                "name": name,
                "context": Counter(),
                "district": a.get("district") or "—",
                "n": 0,
                "vehicles": set(),
                "dwell_s": 0.0,
            },
        )
        ev = ctx.evidence(a)
        g["context"][str(ev.get("context") or "unknown")] += 1
        g["n"] += 1
        g["vehicles"].add(_vehicle(a))
        g["dwell_s"] += as_float(ev.get("dwell_s")) or 0.0
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1]["n"], -kv[1]["dwell_s"], kv[0]))
    rows, data = [], []
    for key, g in ranked[:10]:
        ctx_name = g["context"].most_common(1)[0][0]
        rows.append(
            [
                g["name"],
                _CONTEXT_ZH.get(ctx_name, ctx_name),
                str(g["district"]),
                str(g["n"]),
                str(len(g["vehicles"])),
                fmt(g["dwell_s"] * 1000, "dur"),
                str(prev_n.get(key, 0)),
            ]
        )
        data.append(
            {
                "place": key,
                "name": g["name"],
                "context": ctx_name,
                "district": g["district"],
                "alerts": g["n"],
                "vehicles": len(g["vehicles"]),
                "dwell_s": g["dwell_s"],
                "alerts_previous": prev_n.get(key, 0),
            }
        )
    s.tables.append(
        Table(
            "dwell_hotspots",
            "异常停留热点（前10，按告警数）",
            ["地点", "场景", "区县", "告警数", "车辆数", "累计停留", "上期告警数"],
            rows,
            ("hotspot", "dwell_hours"),
            "本期无异常停留告警",
            data,
        )
    )


def _repeat(
    ctx: Context, s: Section, cur: list[Mapping[str, Any]], repeat: Mapping[str, int]
) -> None:
    per: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for a in cur:
        if _vehicle(a) in repeat:
            per[_vehicle(a)].append(a)
    reg = ctx.registry
    rows, data = [], []
    for vid, alerts in sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        places = {_place(ctx, a)[1] for a in alerts}
        contexts = Counter(str(ctx.evidence(a).get("context") or "unknown") for a in alerts)
        dwell = sum(as_float(ctx.evidence(a).get("dwell_s")) or 0.0 for a in alerts)
        top = max(alerts, key=lambda a: _level_rank(a.get("level")))
        plate = reg.vehicles[vid].plate if reg is not None and vid in reg.vehicles else "—"
        rows.append(
            [
                vid,
                plate,
                str(len(alerts)),
                str(len(places)),
                "、".join(_CONTEXT_ZH.get(c, c) for c in contexts),
                fmt(dwell * 1000, "dur"),
                level_zh(top.get("level")),
            ]
        )
        data.append(
            {
                "vehicle": vid,
                "plate": plate,
                "alerts": len(alerts),
                "places": len(places),
                "dwell_s": dwell,
            }
        )
    s.tables.append(
        Table(
            "repeat_vehicles",
            "重复异常停留车辆（本期2次及以上）",
            ["车辆", "车牌", "告警数", "地点数", "场景", "累计停留", "最高级别"],
            rows,
            ("repeat_vehicles",),
            "本期无车辆重复异常停留",
            data,
        )
    )


def _workshops(ctx: Context, s: Section) -> None:
    alerts = ctx.alerts(["vehicle.workshop"])
    cur = [
        a
        for a in alerts
        if ctx.overlap_ms(a, ctx.period) or ctx.period.contains(as_int(a.get("first_ts")))
    ]
    prev = [a for a in alerts if ctx.overlap_ms(a, ctx.previous)]
    s.stats.append(Stat("workshops", "疑似非法作坊候选点", len(cur), len(prev), "int", "workshops"))
    rows, data = [], []
    for a in sorted(cur, key=lambda a: (as_int(ctx.evidence(a).get("rank"), 999), str(a["id"]))):
        ev = ctx.evidence(a)
        lat, lon = as_float(a.get("lat")), as_float(a.get("lon"))
        ids = ev.get("vehicle_ids")
        vids = "、".join(str(v) for v in ids) if isinstance(ids, list) else "—"
        rows.append(
            [
                str((a.get("subject") or {}).get("id") or "?"),
                f"{lat:.4f}, {lon:.4f}" if lat is not None and lon is not None else "—",
                f"{a.get('district') or '—'} {ctx.town_name(a.get('town'))}",
                fmt(ev.get("vehicles"), "int"),
                fmt(ev.get("visits"), "int"),
                fmt((as_float(ev.get("dwell_s")) or 0) * 1000, "dur"),
                ctx.time(as_int(ev.get("first_ms")) or None),
                ctx.time(as_int(ev.get("last_ms")) or None),
                vids,
                level_zh(a.get("level")),
                "持续中" if a.get("state") != "resolved" else "已解除",
            ]
        )
        data.append(
            {
                "id": a["id"],
                "spot": (a.get("subject") or {}).get("id"),
                "lat": lat,
                "lon": lon,
                "evidence": dict(ev),
            }
        )
    s.tables.append(
        Table(
            "workshop_candidates",
            "疑似非法危化品作坊候选点及证据（vehicle.workshop）",
            [
                "候选点",
                "位置(纬度, 经度)",
                "区县 镇街",
                "车辆数",
                "停留次数",
                "累计停留",
                "首次",
                "末次",
                "涉及车辆",
                "级别",
                "状态",
            ],
            rows,
            ("workshops",),
            "本期无作坊候选点",
            data,
        )
    )
    if cur:
        best = sorted(cur, key=lambda a: as_int(ctx.evidence(a).get("rank"), 999))[0]
        ev = ctx.evidence(best)
        s.highlights.append(
            f"疑似作坊候选点 {len(cur)} 处；首位 {(best.get('subject') or {}).get('id')}"
            f"（{best.get('district') or '—'}）：{fmt(ev.get('vehicles'), 'int')} 辆车停留 "
            f"{fmt(ev.get('visits'), 'int')} 次。"
        )


def _map(ctx: Context, s: Section, cur: list[Mapping[str, Any]]) -> None:
    reg = ctx.registry
    outlines = [(d.name, d.rings) for d in reg.districts] if reg is not None else []
    points = []
    for a in cur:
        lat, lon = as_float(a.get("lat")), as_float(a.get("lon"))
        if lat is None or lon is None:
            continue
        dwell_min = (as_float(ctx.evidence(a).get("dwell_s")) or 0) / 60
        points.append((lat, lon, str(a.get("level")), 15 + min(200.0, dwell_min * 2)))
    stars = []
    for a in ctx.alerts(["vehicle.workshop"]):
        lat, lon = as_float(a.get("lat")), as_float(a.get("lon"))
        if (
            lat is not None
            and lon is not None
            and (ctx.overlap_ms(a, ctx.period) or ctx.period.contains(as_int(a.get("first_ts"))))
        ):
            stars.append((lat, lon, str((a.get("subject") or {}).get("id") or "")))
    if not points and not stars:
        return
    if not outlines:
        s.notices.append("没有区县边界（登记数据中无 districts.geojson），地图只画告警点。")
    s.figures.append(
        Figure(
            "hazmat-map",
            "危化品车辆异常停留热点与疑似作坊分布",
            plots.district_map(
                outlines,
                points,
                stars,
                title="Hazmat dwell alerts and workshop candidates",
                labels=ctx.labels,
                simulated=ctx.simulated_outlines,
            ),
            "圆点为本期异常停留告警（颜色=告警级别，大小=停留时长），紫色星为疑似作坊候选点。"
            + ("区县边界为模拟边界。" if ctx.simulated_outlines else ""),
            ("dwell_alerts", "workshops"),
        )
    )
