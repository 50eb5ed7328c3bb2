"""The water section of the analysis report: figures from water alerts, and no section at all
for a city whose water stations raised nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from citywatch.alerts import Alert, AlertState, Level, Subject, episode_id, fingerprint
from citywatch.registry import Registry, WaterStation
from citywatch.settings import Settings
from sinks.reports import build_report
from sinks.reports.context import Context
from sinks.reports.period import Period
from sinks.reports.source import Dataset
from sinks.reports.water import section

DAY = 86_400_000
T = 1_793_548_800_000 + 10 * 3_600_000  # 2026-11-02 10:00 Beijing
REG = Registry(
    water_stations={
        "WQ1": WaterStation(id="WQ1", name="狼山水厂出厂水", lat=32.0, lon=120.9, district="崇川区")
    }
)


def alert(rule: str, station: str, first: int, minutes: int, **evidence: Any) -> dict[str, Any]:
    subject = Subject("water_station", station)
    fp = fingerprint(rule, subject)
    a = Alert(
        id=episode_id(fp, first),
        fingerprint=fp,
        rule=rule,
        level=Level.ORANGE,
        state=AlertState.RESOLVED,
        subject=subject,
        first_ts=first,
        last_ts=first + minutes * 60_000,
        district="崇川区",
        evidence=evidence,
    )
    out: dict[str, Any] = orjson.loads(a.to_json())
    return out


def context(alerts: list[dict[str, Any]]) -> Context:
    period = Period.containing("day", T)
    previous = period.previous()
    return Context(
        data=Dataset(previous.start_ms, period.end_ms, alerts=alerts),
        period=period,
        previous=previous,
        as_of_ms=period.end_ms,
        registry=REG,
        figures=False,
    )


def test_water_section_counts_by_rule_station_and_district() -> None:
    alerts = [
        alert("water.event", "WQ1", T, 30, channels=["turbidity_ntu", "chlorine_mg_l"]),
        alert("water.range", "WQ1", T + 600_000, 20, channels=["turbidity_ntu"]),
        alert("water.stuck", "WQ2", T + 3_600_000, 300, channels=["ph"]),
        alert("water.event", "WQ1", T - DAY, 15, channels=["ph"]),  # the previous day
    ]
    s = section(context(alerts))
    stats = {st.key: (st.current, st.previous) for st in s.stats}
    assert stats == {
        "water_events": (1, 1),
        "water_breaches": (1, 0),
        "water_stations": (1, 1),
        "water_stuck": (1, 0),
    }
    table = next(t for t in s.tables if t.key == "water_by_station")
    first = table.rows[0]
    assert first[0] == "狼山水厂出厂水（WQ1）"
    assert first[2:5] == ["1", "1", "0"]
    assert "浊度" in first[5]
    assert s.highlights


@pytest.mark.integration
def test_a_report_has_a_water_section_only_where_water_rules_raised_alerts(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    report = build_report(redis_client, keys, kind="day", at_ms=T, figures=False, now_ms=T)
    assert "water" not in [s.topic for s in report.sections]  # type: ignore[attr-defined]
    a = alert("water.event", "WQ1", T, 30, channels=["ph"])
    redis_client.hset(keys.alert(a["id"]), mapping={"a": orjson.dumps(a)})
    report = build_report(redis_client, keys, kind="day", at_ms=T, figures=False, now_ms=T)
    topics = [s.topic for s in report.sections]  # type: ignore[attr-defined]
    assert "water" in topics
    water = report.sections[topics.index("water")]  # type: ignore[attr-defined]
    assert {st.key: st.current for st in water.stats}["water_events"] == 1
