"""DwellModel and WorkshopModel: signals while stopped, escalation, clears, contract checks."""

from __future__ import annotations

import copy
import math
import pickle
import random

import pytest

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Air, Gps
from citywatch.geo import offset
from citywatch.registry import Place, Registry, Zone
from models.vehicles.dwell import DwellPolicy, Thresholds, Verdict, context_key
from models.vehicles.model import DwellModel, VehicleState, WorkshopModel
from models.vehicles.spatial import PlaceIndex
from models.vehicles.workshops import WorkshopRanker

from .trajectories import LAT0, LON0, T0, generate

SCHOOL = Zone(id="Z-SCH", name="实验小学", lat=LAT0, lon=LON0, category="school", radius_m=300)
DEPOT = Place(id="P-DEP", name="危化品停车场", lat=32.05, lon=120.9, category="depot")
FUEL = Place(id="P-FUEL", name="加油站", lat=32.1, lon=120.9, category="fuel", radius_m=100)
# a registered enterprise inside a residential zone: the place wins
PLANT = Place(id="P-ENT", name="化工厂", lat=32.2, lon=120.9, category="enterprise")
HOMES = Zone(id="Z-RES", name="小区", lat=32.2, lon=120.9, category="residential", radius_m=800)
REG = Registry(
    places={p.id: p for p in (DEPOT, FUEL, PLANT)},
    zones={z.id: z for z in (SCHOOL, HOMES)},
)


def gps(ts_s: float, lat: float, lon: float, vehicle: str = "V1", **kw: object) -> Gps:
    return Gps(ts=T0 + round(ts_s * 1000), vehicle=vehicle, lat=lat, lon=lon, **kw)  # type: ignore[arg-type]


def park(
    model: DwellModel,
    state: VehicleState,
    lat: float,
    lon: float,
    minutes: float,
    start_s: float = 0.0,
    jitter_m: float = 0.0,
    seed: int = 0,
) -> list[Signal]:
    rng = random.Random(seed)
    out: list[Signal] = []
    for i in range(round(minutes * 6) + 1):
        la, lo = offset(lat, lon, rng.gauss(0, jitter_m), rng.gauss(0, jitter_m))
        out += model.update(state, gps(start_s + 10 * i, la, lo))
    return out


# -- spatial index and policy ----------------------------------------------------------------


def test_index_prefers_the_nearest_and_respects_radius_and_margin() -> None:
    near = Place(id="A", name="a", lat=32.0, lon=120.9, category="enterprise", radius_m=200)
    nearer = Place(id="B", name="b", lat=32.0009, lon=120.9, category="fuel", radius_m=200)
    idx = PlaceIndex([near, nearer], [])
    got = idx.lookup(*offset(32.0, 120.9, 80, 0))
    assert got.place is not None
    assert got.place.id == "B"  # 20 m from B, 80 m from A
    edge = offset(32.0, 120.9, -230, 0)  # 230 m south of A: outside 200, inside 200 + 40
    assert idx.lookup(*edge).place is None
    assert PlaceIndex([near], [], margin_m=40).lookup(*edge).place == near


def test_index_finds_large_zones_across_cells() -> None:
    lake = Zone(id="W", name="水源地", lat=32.0, lon=120.9, category="water", radius_m=3000)
    idx = PlaceIndex([], [lake])
    for north, east in [(2900, 0), (0, -2900), (-2000, 2000)]:
        assert idx.lookup(*offset(32.0, 120.9, north, east)).zone == lake
    assert idx.lookup(*offset(32.0, 120.9, 3100, 0)).zone is None
    assert len(idx) == 1


def test_context_key_place_wins_over_zone() -> None:
    ctx = PlaceIndex(REG.places.values(), REG.zones.values()).lookup(32.2, 120.9)
    assert context_key(ctx)[:2] == ("enterprise", "P-ENT")


@pytest.mark.parametrize(
    ("context", "dwell_s", "verdict", "level"),
    [
        ("depot", 10 * 3600, Verdict.NORMAL, None),
        ("enterprise", 10 * 3600, Verdict.NORMAL, None),
        ("fuel", 30 * 60, Verdict.NORMAL, None),
        ("fuel", 61 * 60, Verdict.SUSPICIOUS, Level.BLUE),
        ("school", 9 * 60, Verdict.NORMAL, None),
        ("school", 10 * 60, Verdict.ABNORMAL, Level.ORANGE),
        ("school", 30 * 60, Verdict.ABNORMAL, Level.RED),
        ("unregistered", 15 * 60, Verdict.SUSPICIOUS, Level.BLUE),
        ("unregistered", 30 * 60, Verdict.ABNORMAL, Level.ORANGE),
        ("nonsense", 30 * 60, Verdict.ABNORMAL, Level.ORANGE),  # unknown = unregistered
    ],
)
def test_policy_table(context: str, dwell_s: float, verdict: Verdict, level: Level | None) -> None:
    assert DwellPolicy().classify(context, dwell_s) == (verdict, level)


def test_policy_score_is_monotone_and_bounded() -> None:
    policy = DwellPolicy()
    scores = [policy.score("unregistered", s) for s in range(0, 4 * 3600, 60)]
    assert scores == sorted(scores)
    assert scores[0] == 0.0
    assert scores[-1] == 1.0
    assert policy.score("unregistered", 15 * 60) == 0.5


def test_policy_overrides_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown context"):
        DwellPolicy({"moon": Thresholds(abnormal_s=1)})
    with pytest.raises(ValueError, match="increasing"):
        Thresholds(abnormal_s=600, red_s=300)
    p = DwellPolicy({"depot": Thresholds(abnormal_s=3600)})
    assert p.classify("depot", 3600) == (Verdict.ABNORMAL, Level.ORANGE)


# -- DwellModel ------------------------------------------------------------------------------


def test_fires_while_stopped_escalates_refreshes_and_resolves_on_leaving() -> None:
    model = DwellModel(REG, refresh_s=300)
    state = model.new_state("V1")
    out = park(model, state, LAT0, LON0, minutes=40, jitter_m=10)
    assert all(s.active and s.subject == Subject("vehicle", "V1") for s in out)
    assert all(s.rule == "vehicle.dwell" for s in out)
    times = [(s.ts - T0) // 1000 for s in out]
    # fires at the threshold (10 min), refreshes every 5 min, escalates to red at 30 min
    assert times == [600, 900, 1200, 1500, 1800, 2100, 2400]
    assert [s.level for s in out] == [Level.ORANGE] * 4 + [Level.RED] * 3
    assert out[0].evidence["context"] == "school"
    assert out[0].evidence["ref"] == "Z-SCH"
    assert out[0].evidence["threshold_s"] == 600
    assert out[0].score == pytest.approx(0.5)
    assert out[-1].score == 1.0
    assert out[0].lat == pytest.approx(LAT0, abs=2e-4)
    assert out[0].grid is not None
    assert model.update(state, gps(2410, 32.03, 120.9)) == []  # an outlier, or gone?
    clear = model.update(state, gps(2420, 32.031, 120.9))  # gone, since the fix before
    assert len(clear) == 1
    assert not clear[0].active
    assert clear[0].level == Level.RED
    assert clear[0].evidence["dwell_s"] == 2410.0
    assert clear[0].evidence["closed_by"] == "left"
    assert model.update(state, gps(2430, 32.04, 120.9)) == []


@pytest.mark.parametrize(("lat", "lon"), [(DEPOT.lat, DEPOT.lon), (32.2, 120.9)])
def test_registered_places_never_signal(lat: float, lon: float) -> None:
    model = DwellModel(REG)
    state = model.new_state("V1")
    assert park(model, state, lat, lon, minutes=300, jitter_m=15) == []


def test_unregistered_spot_goes_suspicious_then_abnormal() -> None:
    model = DwellModel(REG, refresh_s=3600)
    state = model.new_state("V1")
    out = park(model, state, 32.3, 121.2, minutes=35)
    assert [((s.ts - T0) // 1000, s.level, s.evidence["verdict"]) for s in out] == [
        (900, Level.BLUE, "suspicious"),
        (1800, Level.ORANGE, "abnormal"),
    ]
    assert out[0].evidence["registered"] is False
    assert out[0].evidence["ref"] is None


def test_short_stops_and_driving_are_silent() -> None:
    model = DwellModel(REG)
    state = model.new_state("V1")
    out: list[Signal] = []
    t = 0.0
    lat = LAT0
    for _ in range(20):  # 8-minute stops by the school, then drive on
        out += park(model, state, lat, LON0, minutes=8, start_s=t)
        t += 8 * 60 + 10
        lat += 0.01
        out += model.update(state, gps(t, lat, LON0))
        t += 10
    assert out == []


def test_gap_resolves_and_watermark_resolves_a_vehicle_gone_dark() -> None:
    model = DwellModel(REG, max_gap_s=600)
    state = model.new_state("V9")
    out = park(model, state, LAT0, LON0, minutes=12)
    assert [s.active for s in out] == [True]
    assert model.on_watermark(state, T0 + 720_000 + 600_000) == []
    cleared = model.on_watermark(state, T0 + 720_000 + 600_001)
    assert [(s.active, s.subject.id, s.evidence["closed_by"]) for s in cleared] == [
        (False, "V9", "gap")
    ]
    assert cleared[0].evidence["dwell_s"] == 720.0
    assert model.on_watermark(state, T0 + 10**8) == []
    # back after the gap, at the same school: a new dwell, a new threshold crossing
    again = park(model, state, LAT0, LON0, minutes=11, start_s=5000)
    assert [((s.ts - T0) // 1000, s.active) for s in again] == [(5600, True)]


def test_routes_gps_only_and_ignores_other_kinds() -> None:
    model = DwellModel(REG)
    air = Air(ts=T0, station="S1", pm25=10.0)
    assert model.route(air) is None
    assert model.route(gps(0, LAT0, LON0, vehicle="沪A-1")) == "沪A-1"
    assert model.update(model.new_state("x"), air) == []


def test_missing_optional_fields_do_not_raise() -> None:
    model = DwellModel(REG)
    state = model.new_state("V1")
    out = []
    for i in range(80):
        ev = Gps(
            ts=T0 + i * 10_000,
            vehicle="V1",
            lat=LAT0,
            lon=LON0,
            speed_kmh=None,
            heading=None,
            un=None,
            plate=None,
        )
        out += model.update(state, ev)
    assert out
    assert out[0].evidence["un"] is None
    refresh = model.update(state, gps(1200, LAT0, LON0, un="1203"))
    assert refresh[0].evidence["un"] == "1203"


def test_bad_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="refresh_s"):
        DwellModel(REG, refresh_s=0)
    with pytest.raises(ValueError, match="radius_m"):
        DwellModel(REG, radius_m=-5)


def _stream(seed: int, n_vehicles: int = 6) -> list[Gps]:
    events = []
    for v in range(n_vehicles):
        fixes = generate(seed * 100 + v)
        for ts, lat, lon in fixes:
            events.append(Gps(ts=ts, vehicle=f"V{v}", lat=lat, lon=lon, un="1203"))
    events.sort(key=lambda e: e.ts)
    return events


def _policy_for_tests() -> DwellPolicy:
    # Short thresholds so the generated trajectories (stops up to 90 min) signal often.
    return DwellPolicy({"unregistered": Thresholds(suspicious_s=300, abnormal_s=900, red_s=3000)})


def _run(model: DwellModel, states: dict[str, VehicleState], events: list[Gps]) -> list[Signal]:
    out: list[Signal] = []
    for ev in events:
        key = model.route(ev)
        assert key is not None
        st = states.get(key)
        if st is None:
            st = states[key] = model.new_state(key)
        out += model.update(st, ev)
    return out


def test_contract_pickle_mid_stream_gives_identical_later_output() -> None:
    model = DwellModel(REG, policy=_policy_for_tests())
    events = _stream(1)
    half = len(events) // 2
    states: dict[str, VehicleState] = {}
    first = _run(model, states, events[:half])
    twin = pickle.loads(pickle.dumps(states))  # noqa: S301 (our own bytes)
    deep = copy.deepcopy(states)
    later = _run(model, states, events[half:])
    assert later, "the second half signals"
    assert _run(model, twin, events[half:]) == later
    assert _run(model, deep, events[half:]) == later
    assert first


def test_contract_same_input_same_output_and_no_mutation() -> None:
    events = _stream(2)
    before = copy.deepcopy(events)
    a = _run(DwellModel(REG, policy=_policy_for_tests()), {}, events)
    b = _run(DwellModel(REG, policy=_policy_for_tests()), {}, events)
    assert a == b
    assert events == before
    for s in a:
        assert math.isfinite(s.score)
        assert 0.0 <= s.score <= 1.0
        assert all(
            isinstance(v, str | int | float | bool | type(None)) for v in s.evidence.values()
        )


def test_every_active_dwell_episode_is_cleared_exactly_once() -> None:
    out = _run(DwellModel(REG, policy=_policy_for_tests()), {}, _stream(3, n_vehicles=10))
    open_: dict[str, int] = {}
    for s in out:
        v = s.subject.id
        if s.active:
            assert open_.setdefault(v, s.evidence["start_ms"]) == s.evidence["start_ms"]
        else:
            assert open_.pop(v) == s.evidence["start_ms"]
    assert len(out) > 20


def test_state_bytes_per_vehicle() -> None:
    model = DwellModel(REG)
    states: dict[str, VehicleState] = {}
    _run(model, states, _stream(4))
    sizes = [len(pickle.dumps(s)) for s in states.values()]
    assert max(sizes) < 400


# -- WorkshopModel ---------------------------------------------------------------------------


def dwell(
    vehicle: str,
    start_s: float,
    ts_s: float,
    lat: float,
    lon: float,
    *,
    active: bool = True,
    context: str = "unregistered",
) -> Signal:
    return Signal(
        rule="vehicle.dwell",
        subject=Subject("vehicle", vehicle),
        ts=T0 + round(ts_s * 1000),
        active=active,
        lat=lat,
        lon=lon,
        evidence={
            "start_ms": T0 + round(start_s * 1000),
            "dwell_s": ts_s - start_s,
            "context": context,
            "registered": context in ("enterprise", "depot", "fuel"),
        },
    )


def test_workshop_routes_only_unregistered_dwell_signals() -> None:
    model = WorkshopModel(REG)
    assert model.route(gps(0, LAT0, LON0)) is None
    assert model.route(dwell("V1", 0, 900, LAT0, LON0)) == "city"
    for context in ("enterprise", "gate", "school", "residential"):
        assert model.route(dwell("V1", 0, 900, LAT0, LON0, context=context)) is None
    villages = WorkshopModel(REG, contexts=("unregistered", "residential"))
    assert villages.route(dwell("V1", 0, 900, LAT0, LON0, context="residential")) == "city"
    with pytest.raises(ValueError, match="contexts"):
        WorkshopModel(REG, contexts=("moon",))
    other = Signal("air.spike", Subject("station", "S"), T0, lat=LAT0, lon=LON0)
    assert model.route(other) is None
    no_place = Signal("vehicle.dwell", Subject("vehicle", "V"), T0, evidence={"start_ms": T0})
    assert model.route(no_place) is None
    assert model.update(model.new_state("city"), no_place) == []


def test_workshop_ranks_by_distinct_vehicles_then_visits_then_dwell() -> None:
    model = WorkshopModel(REG, top_k=2, min_vehicles=2)
    state = model.new_state("city")
    spots = {"A": (32.3, 121.0), "B": (32.4, 121.1), "C": (32.5, 121.2)}
    plan = [
        ("A", "V1"),
        ("A", "V2"),
        ("A", "V3"),
        ("B", "V1"),
        ("B", "V1"),
        ("B", "V2"),
        ("C", "V4"),
        ("C", "V5"),
    ]
    out: list[Signal] = []
    t = 0.0
    for spot, v in plan:
        lat, lon = offset(*spots[spot], random.Random(t).gauss(0, 20), 0)
        out += model.update(state, dwell(v, t, t + 900, lat, lon))
        out += model.update(state, dwell(v, t, t + 1800, lat, lon, active=False))
        t += 3600
    top = state.top()
    assert [(c.n_vehicles, c.visits) for c in top] == [(3, 3), (2, 3)]
    assert all(s.rule == "vehicle.workshop" and s.subject.kind == "spot" for s in out)
    # C ties B on vehicles but has fewer visits: it never enters the top 2
    c_id = state.ranked()[2].id
    assert all(s.subject.id != c_id for s in out)
    entered = [s for s in out if s.evidence["change"] == "entered"]
    assert {s.subject.id for s in entered} == {c.id for c in top}
    assert all(s.lat is not None for s in out)
    assert all(s.lon is not None for s in out)
    a = state.ranked()[0]
    assert math.dist((a.lat, a.lon), spots["A"]) < 0.001
    assert a.dwell_s == 3 * 1800


def test_workshop_counts_a_visit_once_and_adds_only_extra_dwell() -> None:
    r = WorkshopRanker()
    for ts in (900, 1200, 1500):
        r.visit("V1", 0, ts * 1000, 32.3, 121.0, float(ts))
    r.visit("V1", 0, 1600_000, 32.3, 121.0, 1600.0, ended=True)
    (cand,) = r.candidates.values()
    assert (cand.visits, cand.n_vehicles, cand.dwell_s) == (1, 1, 1600.0)


def test_workshop_drops_out_of_the_top_with_a_clear() -> None:
    model = WorkshopModel(REG, top_k=1, min_vehicles=2)
    state = model.new_state("city")
    out = []
    for v in ("V1", "V2"):
        out += model.update(state, dwell(v, 0, 900, 32.3, 121.0))
    for v in ("V3", "V4", "V5"):
        out += model.update(state, dwell(v, 0, 900, 32.4, 121.0))
    kinds = [(s.evidence["change"], s.active) for s in out]
    assert ("left", False) in kinds
    assert out[-1].active or out[-2].active


def test_workshop_state_is_bounded_and_pickles() -> None:
    r = WorkshopRanker(max_candidates=100, top_k=5)
    rng = random.Random(0)
    for i in range(1000):
        r.visit(f"V{i}", i, i, 32 + rng.random() * 0.5, 121 + rng.random() * 0.5, 900.0, ended=True)
    assert len(r.candidates) <= 100
    twin = pickle.loads(pickle.dumps(r))  # noqa: S301 (our own bytes)
    a = r.visit("VX", 5, 5, 32.1, 121.1, 900.0)
    b = twin.visit("VX", 5, 5, 32.1, 121.1, 900.0)
    assert [(c.kind, c.candidate.id, c.rank) for c in a] == [
        (c.kind, c.candidate.id, c.rank) for c in b
    ]
    assert [c.id for c in r.ranked()] == [c.id for c in twin.ranked()]


# -- held stops: a slow approach anchors the stop off-centre ----------------------------------


def _approach_then_park(model: DwellModel, state: VehicleState, park_s: int) -> list[Signal]:
    """First fix 145 m short of the school's centre, then parked at it; at 200 and 210 s two
    fixes jitter 8 m past the centre: 153 m from the first fix (outside R, and two of them, so
    no outlier) but near the stop's centre. The confirmed stop ends there and is held."""
    out = model.update(state, gps(0, *offset(LAT0, LON0, -145, 0)))
    for i in range(1, park_s // 10 + 1):
        north_m = 8 if i in (20, 21) else 0
        out += model.update(state, gps(10 * i, *offset(LAT0, LON0, north_m, 0)))
    return out


def test_a_stop_anchored_off_centre_stays_one_dwell() -> None:
    model = DwellModel(REG, refresh_s=300)
    state = model.new_state("V1")
    out = _approach_then_park(model, state, park_s=1500)
    assert all(s.active for s in out)
    # one dwell from the first fix: the alert at 600 s is not postponed by the re-anchoring
    assert [(s.ts - T0) // 1000 for s in out] == [600, 900, 1200, 1500]
    assert {s.evidence["start_ms"] for s in out} == {T0}
    clear = []
    for k in range(1, 8):  # drive away north
        clear += model.update(state, gps(1500 + 10 * k, *offset(LAT0, LON0, 60.0 * k, 0)))
    assert [(s.active, s.evidence["start_ms"]) for s in clear] == [(False, T0)]
    assert clear[0].evidence["dwell_s"] >= 1500


def test_a_held_stop_is_cleared_when_the_truck_leaves_before_the_next_stop() -> None:
    model = DwellModel(REG)
    state = model.new_state("V1")
    out = model.update(state, gps(0, *offset(LAT0, LON0, -145, 0)))
    for i in range(1, 70):
        out += model.update(state, gps(10 * i, LAT0, LON0))
    assert [s.active for s in out] == [True]
    # 155 m from the first fix, twice (not an outlier): the stop ends, held
    out = model.update(state, gps(700, *offset(LAT0, LON0, 10, 0)))
    out += model.update(state, gps(710, *offset(LAT0, LON0, 10, 0)))
    assert out == []  # held: it may still be parked
    assert state.held_end_ms == T0 + 700_000
    left = []
    for k in range(1, 6):
        left += model.update(state, gps(710 + 10 * k, *offset(LAT0, LON0, 10 + 42.0 * k, 0)))
    assert [(s.active, s.evidence["end_ms"], s.evidence["closed_by"]) for s in left] == [
        (False, T0 + 700_000, "left")
    ]
    assert state.held_end_ms == 0


def test_a_held_stop_is_cleared_by_the_watermark_when_the_truck_goes_dark() -> None:
    model = DwellModel(REG, max_gap_s=600)
    state = model.new_state("V1")
    model.update(state, gps(0, *offset(LAT0, LON0, -145, 0)))
    for i in range(1, 70):
        model.update(state, gps(10 * i, LAT0, LON0))
    assert model.update(state, gps(700, *offset(LAT0, LON0, 10, 0))) == []
    assert model.update(state, gps(710, *offset(LAT0, LON0, 10, 0))) == []
    assert state.held_end_ms == T0 + 700_000
    assert model.on_watermark(state, T0 + 1_310_000) == []
    gone = model.on_watermark(state, T0 + 1_310_001)
    assert [(s.active, s.evidence["end_ms"]) for s in gone] == [(False, T0 + 700_000)]


def test_workshops_rank_above_hundreds_of_one_off_unregistered_stops() -> None:
    rng = random.Random(11)
    r = WorkshopRanker(top_k=20)
    shops = [(32.0 + 0.1 * k, 120.5 + 0.2 * k) for k in range(5)]
    visits = []
    for k, (lat, lon) in enumerate(shops):
        for j in range(3):
            visits.append((f"W{k}-{j}", lat, lon))
    for i in range(400):  # one-off stops anywhere, some by the same truck twice
        visits.append((f"D{i % 300}", 31.7 + rng.random(), 120.3 + rng.random() * 1.5))
    rng.shuffle(visits)
    for n, (vehicle, lat, lon) in enumerate(visits):
        la, lo = offset(lat, lon, rng.gauss(0, 20), rng.gauss(0, 20))
        r.visit(vehicle, n * 1000, n * 1000, la, lo, rng.uniform(900, 7200), ended=True)
    top = r.top(20)
    for lat, lon in shops:
        assert any(math.dist((c.lat, c.lon), (lat, lon)) < 0.002 for c in top[:5])


def test_workshop_top_is_re_reported_so_quiet_days_do_not_resolve_it() -> None:
    model = WorkshopModel(REG, refresh_s=6 * 3600)
    state = model.new_state("city")
    for v in ("V1", "V2"):
        model.update(state, dwell(v, 0, 900, 32.3, 121.0, active=False))
    assert model.on_watermark(state, T0) != []  # first watermark: the top as it stands
    assert model.on_watermark(state, T0 + 3 * 3600_000) == []
    again = model.on_watermark(state, T0 + 6 * 3600_000)
    assert [(s.active, s.evidence["rank"], s.evidence["vehicles"]) for s in again] == [(True, 1, 2)]
    with pytest.raises(ValueError, match="refresh_s"):
        WorkshopModel(REG, refresh_s=0)


# -- gates: queues outside a registered place -------------------------------------------------


def test_a_queue_at_an_enterprise_gate_is_not_an_unregistered_dwell() -> None:
    gate = offset(PLANT.lat, PLANT.lon, 0, 1.4 * PLANT.radius_m)  # 350 m east, outside
    reg = Registry(places={"P-ENT": PLANT})  # no residential zone here
    model = DwellModel(reg, refresh_s=3600)
    state = model.new_state("V1")
    assert park(model, state, *gate, minutes=30, jitter_m=6) == []  # a 30-min queue: normal
    out = park(model, state, *gate, minutes=50, start_s=1810, jitter_m=6)
    assert [(s.evidence["context"], s.evidence["ref"], s.level) for s in out] == [
        ("gate", "P-ENT", Level.BLUE)
    ]
    assert WorkshopModel(reg).route(out[0]) is None  # a gate is the place's business


def test_context_precedence_place_zone_gate_unregistered() -> None:
    school = Zone(id="Z", name="小学", lat=32.0, lon=121.0, category="school", radius_m=300)
    plant = Place(id="P", name="厂", lat=32.0, lon=121.005, category="enterprise", radius_m=250)
    idx = PlaceIndex([plant], [school], gate_factor=2.0)
    # 470 m west of the plant (its gate band) and 0 m from the school: the school wins
    assert context_key(idx.lookup(32.0, 121.0))[:2] == ("school", "Z")
    # east of the plant, 400 m out: its gate
    assert context_key(idx.lookup(*offset(32.0, 121.005, 0, 400)))[:2] == ("gate", "P")
    assert context_key(idx.lookup(*offset(32.0, 121.005, 0, 100)))[:2] == ("enterprise", "P")
    assert context_key(idx.lookup(*offset(32.0, 121.005, 0, 520)))[0] == "unregistered"
    with pytest.raises(ValueError, match="gate_factor"):
        PlaceIndex([], [], gate_factor=0.5)


def test_a_held_dwell_keeps_its_clock_and_ignores_an_outlier() -> None:
    model = DwellModel(REG, refresh_s=3600)
    state = model.new_state("V1")
    out = model.update(state, gps(0, *offset(LAT0, LON0, -145, 0)))
    for i in range(1, 90):
        north_m = {50: 8.0, 51: 8.0, 56: 230.0}.get(i, 0.0)  # held at 500 s; outlier at 560 s
        out += model.update(state, gps(10 * i, *offset(LAT0, LON0, north_m, 0)))
    # the school's 10-min threshold passes at 600 s while the stop is held: signalled on time
    assert [((s.ts - T0) // 1000, s.active, s.evidence["start_ms"]) for s in out] == [
        (600, True, T0)
    ]
    assert state.held_end_ms == 0  # the next stop (from 500 s) confirmed at the same spot
    assert state.start_ms == T0
    assert state.det.outliers == 1
