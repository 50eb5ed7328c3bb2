"""Work sites: suspected illegal resumptions of work at suspended sites, by site and district.

From ``worksite.resumption`` alerts (evidence: ``channels`` video/power, ``night``,
``complaints``, ``order_until``); site names from the registry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from sinks.reports.content import Section, Stat, Table, change, fmt
from sinks.reports.context import Compared, Context, as_int, compare_counts

__all__ = ["section"]

_CHANNEL_ZH: Final = {
    "video": "视频",
    "video_persistence": "视频持续",
    "video_cusum": "视频累积",
    "power": "用电",
    "complaints": "投诉",
}


def _site(a: Mapping[str, Any]) -> str:
    return str((a.get("subject") or {}).get("id") or "?")


def section(ctx: Context) -> Section:
    s = Section("worksites", "停工工地复工")
    alerts = ctx.alerts(["worksite.resumption"])
    cur, prev = ctx.started(alerts, ctx.period), ctx.started(alerts, ctx.previous)
    night = sum(1 for a in cur if ctx.evidence(a).get("night"))
    night_prev = sum(1 for a in prev if ctx.evidence(a).get("night"))
    complained = sum(1 for a in cur if as_int(ctx.evidence(a).get("complaints")) > 0)
    complained_prev = sum(1 for a in prev if as_int(ctx.evidence(a).get("complaints")) > 0)
    sites, sites_prev = {_site(a) for a in cur}, {_site(a) for a in prev}
    s.stats += [
        Stat("resumptions", "疑似复工告警", len(cur), len(prev), "int", "resumptions"),
        Stat("sites", "涉及工地", len(sites), len(sites_prev), "int", "resumption_sites"),
        Stat("night", "其中夜间", night, night_prev, "int", "resumption_night"),
        Stat(
            "complained",
            "有群众投诉佐证",
            complained,
            complained_prev,
            "int",
            "resumption_complaints",
        ),
    ]
    reg = ctx.registry
    prev_by_site = Counter(_site(a) for a in prev)
    rows, data = [], []
    per: dict[str, list[Mapping[str, Any]]] = {}
    for a in cur:
        per.setdefault(_site(a), []).append(a)
    for sid, group in sorted(per.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        name = reg.sites[sid].name if reg is not None and sid in reg.sites else sid
        channels: Counter[str] = Counter()
        for a in group:
            ch = ctx.evidence(a).get("channels")
            for c in ch if isinstance(ch, list) else []:
                channels[str(c)] += 1
        dur = sum(ctx.overlap_ms(a, ctx.period) for a in group)
        last = max(as_int(a.get("first_ts")) for a in group)
        rows.append(
            [
                f"{name}（{sid}）" if name != sid else sid,
                str(group[0].get("district") or "—"),
                ctx.town_name(group[0].get("town")),
                str(len(group)),
                str(sum(1 for a in group if ctx.evidence(a).get("night"))),
                "、".join(_CHANNEL_ZH.get(c, c) for c in channels) or "—",
                fmt(dur, "dur"),
                ctx.time(last),
                str(prev_by_site.get(sid, 0)),
            ]
        )
        data.append(
            {
                "site": sid,
                "name": name,
                "district": group[0].get("district"),
                "alerts": len(group),
                "duration_ms": dur,
                "alerts_previous": prev_by_site.get(sid, 0),
            }
        )
    s.tables.append(
        Table(
            "resumptions_by_site",
            "各工地疑似复工",
            [
                "工地",
                "区县",
                "镇街",
                "告警数",
                "夜间",
                "证据来源",
                "本期内持续",
                "最近一次",
                "上期告警数",
            ],
            rows,
            ("resumptions", "resumption_duration", "resumption_night"),
            "本期无疑似复工告警",
            data,
        )
    )
    by_d = Counter(str(a.get("district") or "—") for a in cur)
    by_d_prev = Counter(str(a.get("district") or "—") for a in prev)
    compare_counts(
        ctx,
        s,
        Compared(
            "resumptions_by_district",
            "各区县疑似复工",
            "区县",
            by_d,
            by_d_prev,
            ("resumptions",),
            "本期和上期均无疑似复工告警",
            (
                "worksites-by-district",
                "各区县疑似复工告警：本期与上期",
                "alerts",
                "Suspected resumptions by district",
                "深色为本期，浅色为上期。",
            ),
            extra=(
                "工地数",
                lambda d: str(len({_site(a) for a in cur if (a.get("district") or "—") == d})),
            ),
        ),
    )
    if cur:
        top = max(per.items(), key=lambda kv: len(kv[1]))
        s.highlights.append(
            f"疑似复工告警 {len(cur)} 起（较上期 {change(len(cur), len(prev), 'int')}），涉及工地 "
            f"{len(sites)} 处，夜间 {night} 起；最多的是 {top[0]}（{len(top[1])} 起）。"
        )
    return s
