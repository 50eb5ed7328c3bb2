"""simulators.scoring on hand-made cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from citywatch.alerts import Alert, AlertState, Level, Signal, Subject, episode_id, fingerprint
from simulators.labels import Label
from simulators.scoring import score

MIN = 60_000


def _label(rule: str, sid: str, start: int, end: int, **params: Any) -> Label:
    also = tuple(params.pop("also", ()))
    kind = {"air": "station", "vehicle": "vehicle", "incident": "incident"}[rule.split(".")[0]]
    return Label(
        rule=rule,
        subject_kind=kind,
        subject_id=sid,
        start_ms=start,
        end_ms=end,
        also=also,
        params=params,
    )


def _alert(
    rule: str,
    sid: str,
    first: int,
    last: int,
    *,
    aid: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
    kind: str = "station",
) -> Alert:
    subj = Subject(kind, sid)
    fp = fingerprint(rule, subj)
    return Alert(
        id=aid or episode_id(fp, first),
        fingerprint=fp,
        rule=rule,
        level=Level.BLUE,
        state=AlertState.FIRING,
        subject=subj,
        first_ts=first,
        last_ts=last,
        lat=lat,
        lon=lon,
    )


def test_precision_counts_alerts_recall_counts_labels() -> None:
    labels = [_label("air.spike", "S1", 10 * MIN, 20 * MIN), _label("air.spike", "S2", 0, MIN)]
    alerts = [
        _alert("air.spike", "S1", 12 * MIN, 13 * MIN),
        _alert("air.spike", "S1", 15 * MIN, 16 * MIN),  # second alert on the same label: still TP
        _alert("air.spike", "S3", 12 * MIN, 13 * MIN),  # wrong station
        _alert("air.stuck", "S2", 0, MIN),  # other rule: not counted for air.spike
    ]
    r = score(alerts, labels, rules=["air.spike"], tolerance_ms=0).rules["air.spike"]
    assert (r.alerts, r.true_alerts, r.labels, r.detected) == (3, 2, 2, 1)
    assert r.precision == pytest.approx(2 / 3)
    assert r.recall == 0.5
    assert r.f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert r.delays_ms == (2 * MIN,)
    assert r.missed == ("S2",)
    assert r.false_alerts == 1


def test_tolerance_widens_the_window_both_ways() -> None:
    lab = _label("air.spike", "S1", 10 * MIN, 20 * MIN)
    early = _alert("air.spike", "S1", 8 * MIN, 9 * MIN)
    late = _alert("air.spike", "S1", 24 * MIN, 25 * MIN)
    assert score([early, late], [lab], tolerance_ms=0).rules["air.spike"].detected == 0
    r = score([early, late], [lab], tolerance_ms=5 * MIN).rules["air.spike"]
    assert (r.detected, r.true_alerts) == (1, 2)
    assert r.delays_ms == (-2 * MIN,)


def test_also_ids_count_as_hits() -> None:
    lab = Label(
        rule="air.episode",
        subject_kind="district",
        subject_id="崇川区",
        start_ms=0,
        end_ms=10 * MIN,
        also=("通州区",),
    )
    a = _alert("air.episode", "通州区", MIN, 2 * MIN, kind="district")
    assert score([a], [lab], tolerance_ms=0).rules["air.episode"].recall == 1.0


def test_place_rules_match_by_distance_not_id() -> None:
    lab = _label(
        "incident.correlated", "INC0001", 0, 10 * MIN, lat=32.0, lon=120.9, radius_m=2000.0
    )
    near = _alert(
        "incident.correlated", "mine-1", MIN, 2 * MIN, lat=32.01, lon=120.9, kind="incident"
    )  # 1.1 km
    far = _alert(
        "incident.correlated", "INC0001", MIN, 2 * MIN, lat=32.05, lon=120.9, kind="incident"
    )  # 5.6 km, same id: still a miss
    nowhere = _alert("incident.correlated", "x", MIN, 2 * MIN, kind="incident")
    r = score([near, far, nowhere], [lab], tolerance_ms=0).rules["incident.correlated"]
    assert (r.true_alerts, r.detected) == (1, 1)


def test_versions_of_one_alert_count_once_and_span_all() -> None:
    lab = _label("air.stuck", "S1", 30 * MIN, 40 * MIN)
    v1 = _alert("air.stuck", "S1", 0, 5 * MIN, aid="A")
    v2 = v1.evolve(last_ts=35 * MIN, version=2)
    r = score([v1, v2], [lab], tolerance_ms=0).rules["air.stuck"]
    assert (r.alerts, r.true_alerts, r.detected) == (1, 1, 1)


def test_dicts_and_signals_are_accepted() -> None:
    lab = _label("vehicle.dwell", "V1", 0, 10 * MIN)
    sig = Signal(rule="vehicle.dwell", subject=Subject("vehicle", "V1"), ts=5 * MIN)
    d = _alert("vehicle.dwell", "V1", MIN, MIN, kind="vehicle").to_dict()
    r = score([sig, d], [lab], tolerance_ms=0).rules["vehicle.dwell"]
    assert (r.alerts, r.true_alerts) == (2, 2)


def test_false_alerts_per_entity_day_and_empty_cases() -> None:
    alerts = [_alert("air.range", f"S{i}", 0, MIN) for i in range(4)]
    rep = score(alerts, [], entity_days={"air.range": 20.0})
    r = rep.rules["air.range"]
    assert (r.precision, r.recall, r.false_per_entity_day) == (0.0, 1.0, 0.2)
    none = score([], [_label("air.range", "S1", 0, MIN)]).rules["air.range"]
    assert (none.precision, none.recall, none.f1) == (1.0, 0.0, 0.0)
    assert none.delay_median_ms is None
    assert rep.overall is not None
    assert rep.overall.false_alerts == 4


def test_delay_quantiles() -> None:
    labels = [_label("air.spike", f"S{i}", 0, 60 * MIN) for i in range(5)]
    alerts = [_alert("air.spike", f"S{i}", i * MIN, i * MIN) for i in range(5)]
    r = score(alerts, labels, tolerance_ms=0).rules["air.spike"]
    assert r.delay_median_ms == 2 * MIN
    assert r.delay_p90_ms == pytest.approx(3.6 * MIN)


@dataclass
class _Thing:  # anything with the fields is accepted
    rule: str
    subject: Subject
    first_ts: int
    last_ts: int
    lat: float | None = None
    lon: float | None = None
    id: str = "t"


def test_duck_typed_alerts() -> None:
    lab = _label("air.drift", "S1", 0, MIN)
    assert score([_Thing("air.drift", Subject("station", "S1"), 0, 1)], [lab]).overall.recall == 1.0  # type: ignore[union-attr]
