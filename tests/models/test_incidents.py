from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from citywatch.alerts import Alert, AlertState, Level, Subject
from citywatch.events import Hotline
from citywatch.geo import offset
from citywatch.registry import Registry, Station
from models.incidents import IncidentConfig, IncidentCorrelator

T0 = 1_793_581_200_000
MIN = 60_000
HOUR = 3_600_000
LAT, LON = 32.0, 120.9


def alert(
    aid: str,
    rule: str,
    kind: str,
    sid: str,
    ts: int,
    north_m: float = 0.0,
    east_m: float = 0.0,
    *,
    placed: bool = True,
    version: int = 1,
    **evidence: Any,
) -> Alert:
    lat, lon = offset(LAT, LON, north_m, east_m)
    return Alert(
        id=aid,
        fingerprint=aid,
        rule=rule,
        level=Level.YELLOW,
        state=AlertState.FIRING,
        subject=Subject(kind, sid),
        first_ts=ts,
        last_ts=ts,
        lat=lat if placed else None,
        lon=lon if placed else None,
        evidence=evidence,
        version=version,
    )


def one_call(**cfg: Any) -> IncidentCorrelator:
    """A correlator for which one ticket is enough for the hotline to count."""
    return IncidentCorrelator(IncidentConfig(min_tickets=1, **cfg))


def spike(ts: int = T0, **ev: Any) -> Alert:
    return alert("air-1", "air.spike", "station", "S1", ts, **ev)


def dwell(aid: str, ts: int, north_m: float, east_m: float, **ev: Any) -> Alert:
    return alert(aid, "vehicle.dwell", "vehicle", f"V-{aid}", ts, north_m, east_m, **ev)


def smell(tid: str, ts: int, north_m: float = 300.0, east_m: float = 0.0) -> Hotline:
    lat, lon = offset(LAT, LON, north_m, east_m)
    return Hotline(ts=ts, ticket=tid, text="小区里一股刺鼻的化工异味", lat=lat, lon=lon)


def test_spike_smell_and_upwind_truck_make_a_red_incident() -> None:
    c = one_call(refresh_ms=HOUR)
    assert c.observe_alert(spike(wind_deg=90.0, wind_ms=2.5)) == []  # wind from the east
    (s1,) = c.observe_ticket(smell("T1", T0 + 20 * MIN))
    assert (s1.rule, s1.subject.kind, s1.level) == ("incident.correlated", "incident", Level.ORANGE)
    (s2,) = c.observe_ticket(smell("T2", T0 + 30 * MIN, -400.0, 200.0))
    assert s2.subject == s1.subject
    assert s2.evidence["tickets"] == ["T1", "T2"]
    (s3,) = c.observe_alert(dwell("d1", T0 + 40 * MIN, 100.0, 1200.0))  # 1.2 km east: upwind
    assert s3.subject == s1.subject
    assert s3.level is Level.RED
    assert s3.evidence["sources"] == ["air", "hotline", "vehicle"]
    assert s3.evidence["upwind"] == ["V-d1"]
    assert s3.evidence["alerts"] == ["air-1", "d1"]
    assert (round(s3.lat, 4), round(s3.lon, 4)) == (LAT, LON)  # placed at the station
    assert s3.score == 0.75
    (end,) = c.advance(T0 + 40 * MIN + 2 * HOUR + MIN)
    assert (end.subject, end.active) == (s1.subject, False)
    assert c.open_incidents == []


def test_truck_downwind_does_not_corroborate_the_spike() -> None:
    c = one_call()
    c.observe_alert(spike(wind_deg=90.0, wind_ms=2.5))
    assert c.observe_alert(dwell("d1", T0 + 10 * MIN, 0.0, -1200.0)) == []  # west: downwind


def test_without_wind_distance_alone_decides() -> None:
    c = one_call()
    c.observe_alert(spike())
    (s,) = c.observe_alert(dwell("d1", T0 + 10 * MIN, 0.0, -1200.0))
    assert s.level is Level.ORANGE
    assert s.evidence["upwind"] == []
    calm = one_call()
    calm.observe_alert(spike(wind_deg=90.0, wind_ms=0.2))  # calm: direction meaningless
    assert calm.observe_alert(dwell("d1", T0 + 10 * MIN, 0.0, -1200.0))


@pytest.mark.parametrize(
    ("ts", "north_m"),
    [(T0 + 3 * HOUR, 300.0), (T0 + 10 * MIN, 2600.0)],
    ids=["too-late", "too-far"],
)
def test_far_in_time_or_space_is_no_incident(ts: int, north_m: float) -> None:
    c = one_call()
    c.observe_alert(spike())
    assert c.observe_ticket(smell("T1", ts, north_m)) == []


def test_tickets_alone_or_without_a_matching_cue_are_no_incident() -> None:
    c = one_call()
    for i in range(5):
        assert c.observe_ticket(smell(f"T{i}", T0 + i * MIN)) == []
    c2 = one_call()
    c2.observe_alert(spike())
    lat, lon = offset(LAT, LON, 200.0, 0.0)
    pothole = Hotline(ts=T0 + MIN, ticket="P", text="路面坑洼破损", lat=lat, lon=lon)
    assert c2.observe_ticket(pothole) == []
    assert c2.observe_ticket(smell("T", T0 + MIN), cues=frozenset({"noise"})) == []


def test_worksite_with_night_noise_is_a_yellow_incident() -> None:
    c = one_call()
    c.observe_alert(alert("w1", "worksite.resumption", "site", "SITE1", T0))
    lat, lon = offset(LAT, LON, 150.0, 0.0)
    t = Hotline(ts=T0 + 5 * MIN, ticket="N1", text="工地半夜还在施工，噪音很大", lat=lat, lon=lon)
    (s,) = c.observe_ticket(t)
    assert s.level is Level.YELLOW
    assert s.evidence["sources"] == ["hotline", "site"]
    assert "night_noise" in s.evidence["cues"]


def test_other_rules_repeats_and_registered_dwells_are_ignored() -> None:
    c = one_call()
    assert c.observe_alert(alert("e1", "air.episode", "district", "崇川区", T0)) == []
    assert c.observe_alert(alert("i1", "incident.correlated", "incident", "x", T0)) == []
    c.observe_alert(spike())
    assert c.observe_alert(dwell("d1", T0 + MIN, 0.0, 300.0, registered=True)) == []
    (s,) = c.observe_ticket(smell("T1", T0 + 2 * MIN))
    assert c.observe_alert(spike(T0 + 5 * MIN, version=2)) == []  # a later version: no member
    assert c.observe_ticket(smell("T1", T0 + 2 * MIN)) == []  # re-delivered ticket
    assert s.evidence["alerts"] == ["air-1"]


def test_alert_without_place_is_placed_by_the_registry_or_skipped() -> None:
    reg = Registry(stations={"S1": Station(id="S1", lat=LAT, lon=LON)})
    c = IncidentCorrelator(IncidentConfig(min_tickets=1), registry=reg)
    c.observe_alert(alert("air-1", "air.spike", "station", "S1", T0, placed=False))
    assert c.observe_ticket(smell("T1", T0 + MIN))
    bare = one_call()
    bare.observe_alert(alert("air-1", "air.spike", "station", "S1", T0, placed=False))
    assert bare.observe_ticket(smell("T1", T0 + MIN)) == []


def test_by_default_one_call_near_a_spike_is_not_enough() -> None:
    c = IncidentCorrelator()
    c.observe_alert(spike())
    assert c.observe_ticket(smell("T1", T0 + MIN)) == []
    (s,) = c.observe_ticket(smell("T2", T0 + 2 * MIN, 500.0, 100.0))
    assert s.evidence["tickets"] == ["T1", "T2"]
    assert s.level is Level.ORANGE


def test_open_incident_is_refreshed_until_it_goes_quiet() -> None:
    c = one_call(refresh_ms=10 * MIN, quiet_ms=HOUR)
    c.observe_alert(spike())
    (first,) = c.observe_ticket(smell("T1", T0 + MIN))
    refresh = c.advance(T0 + 12 * MIN)
    assert [(s.subject, s.active) for s in refresh] == [(first.subject, True)]
    assert c.advance(T0 + 15 * MIN) == []  # refreshed 3 minutes ago
    (end,) = c.advance(T0 + MIN + HOUR + MIN)
    assert (end.subject, end.active) == (first.subject, False)


def test_clone_mid_stream_gives_identical_signals() -> None:
    steps: list[Any] = [
        spike(wind_deg=90.0, wind_ms=3.0),
        smell("T1", T0 + 10 * MIN),
        dwell("d1", T0 + 20 * MIN, 0.0, 900.0),
        smell("T2", T0 + 30 * MIN),
    ]

    def run(c: IncidentCorrelator, xs: list[Any]) -> list[Any]:
        out = []
        for x in xs:
            out += c.observe_ticket(x) if isinstance(x, Hotline) else c.observe_alert(x)
        return out + c.advance(T0 + 5 * HOUR)

    expected = run(one_call(), steps)
    c = one_call()
    head = []
    for x in steps[:2]:
        head += c.observe_ticket(x) if isinstance(x, Hotline) else c.observe_alert(x)
    c = copy.deepcopy(pickle.loads(pickle.dumps(c)))  # noqa: S301 (our own bytes)
    assert head + run(c, steps[2:]) == expected
    levels = [s.level for s in expected]
    assert levels[0] is Level.ORANGE
    assert levels == sorted(levels)
    assert levels[-1] is Level.RED
    assert [s.active for s in expected].count(False) == 1
    assert not expected[-1].active


@pytest.mark.parametrize("bad", [{"radius_m": 0.0}, {"upwind_deg": 200.0}, {"min_tickets": 0}])
def test_config_is_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        IncidentConfig(**bad)


def _registry_with_a_community() -> Registry:
    from citywatch.registry import Locality

    reg = Registry()
    reg.localities = {
        "CM1": Locality(
            id="CM1", name="幸福花园", kind="community", lat=LAT + 0.003, lon=LON, district="崇川区"
        )
    }
    return reg


def test_a_ticket_with_an_address_in_words_is_placed_by_the_gazetteer() -> None:
    corr = IncidentCorrelator(IncidentConfig(min_tickets=1), registry=_registry_with_a_community())
    corr.observe_alert(spike())
    sigs = corr.observe_ticket(
        Hotline(
            ts=T0 + 5 * MIN,
            ticket="T1",
            text="幸福花園這邊有很刺鼻的化工氣味",
            address="幸福花园3栋",
        )
    )
    assert sigs
    assert sigs[0].evidence["sources"] == ["air", "hotline"]
    assert sigs[0].evidence["tickets"] == ["T1"]


def test_unplaceable_tickets_and_decisions_are_not_observations() -> None:
    corr = IncidentCorrelator(IncidentConfig(min_tickets=1), registry=_registry_with_a_community())
    corr.observe_alert(spike())
    assert corr.observe_ticket(Hotline(ts=T0 + MIN, ticket="T1", text="我家楼下一股化工异味")) == []
    decided = Hotline(
        ts=T0 + 2 * MIN,
        ticket="T2",
        text="有很刺鼻的化工气味",
        lat=LAT,
        lon=LON,
        dept="市生态环境局",
    )
    assert corr.observe_ticket(decided) == []
    assert corr.open_incidents == []
