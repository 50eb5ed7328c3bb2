"""The simulator's public API: scenarios, determinism, decodable output, labels that exist."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from citywatch.events import DeadLetter, EventDecoder
from simulators import SCENARIOS, Label, Scenario, Simulation, Workshop, simulate

#: Labels about the background (not injected anomalies): pollution over a limit, tickets
#: nobody can place.
BACKGROUND_RULES = frozenset({"air.exceedance", "hotline.unplaced"})


@pytest.fixture(scope="module")
def demo() -> Simulation:
    return simulate("demo", seed=7, duration_s=1800)


def _digest(sim: Simulation) -> str:
    h = hashlib.blake2b()
    for line in sim.records():
        h.update(line + b"\n")
    return h.hexdigest()


def test_scenarios_are_frozen_and_named() -> None:
    assert {
        "clean",
        "air-faults",
        "air-episode",
        "hazmat",
        "workshops",
        "resumption",
        "hotline",
        "cross-source",
        "city-day",
        "demo",
    } <= set(SCENARIOS)
    sc = SCENARIOS["demo"]
    assert isinstance(sc, Scenario)
    with pytest.raises(AttributeError):
        sc.scale = 3.0  # type: ignore[misc]
    assert SCENARIOS["clean"].total_anomalies() == 0


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    a = simulate("demo", seed=3, duration_s=300)
    b = simulate("demo", seed=3, duration_s=300)
    c = simulate("demo", seed=4, duration_s=300)
    assert _digest(a) == _digest(b)
    assert a.labels == b.labels
    assert _digest(a) != _digest(c)


def test_records_decode_without_dead_letters(demo: Simulation) -> None:
    dec = EventDecoder()
    kinds: Counter[str] = Counter()
    for line in demo.records():
        ev = dec.decode(line)
        assert not isinstance(ev, DeadLetter), (ev, line)
        kinds[ev.kind] += 1
    assert set(kinds) == {"air", "gps", "video", "power", "hotline", "order"}


def test_events_are_time_ordered_and_inside_the_run(demo: Simulation) -> None:
    last = 0
    n = 0
    for ev in demo.events():
        assert demo.start_ms <= ev.ts < demo.end_ms
        assert ev.ts >= last
        last = ev.ts
        n += 1
    assert n > 0


def test_demo_anomalies_start_within_the_first_minute(demo: Simulation) -> None:
    # exceedances and unplaceable tickets are truth about the background, not planned
    planned = [lab for lab in demo.labels if lab.rule not in BACKGROUND_RULES]
    assert len(planned) >= 10
    assert {lab.rule for lab in planned} >= {
        "air.spike",
        "air.episode",
        "air.stuck",
        "air.drift",
        "air.range",
        "vehicle.dwell",
        "worksite.resumption",
        "hotline.duplicate",
        "hotline.surge",
        "incident.correlated",
    }
    for lab in planned:
        if lab.rule in {"vehicle.workshop", "hotline.duplicate", "incident.correlated"}:
            continue  # a second visit / second caller / the spike after the truck come later
        if "incident" in lab.params and lab.rule != "vehicle.dwell":
            continue  # the incident's spike follows its truck by a few minutes
        assert lab.start_ms - demo.start_ms <= 60_000, lab


def test_label_subjects_exist(demo: Simulation) -> None:
    reg = demo.registry
    tickets = {ev.key for ev in demo.events() if ev.kind == "hotline"}
    districts = {d.name for d in reg.districts}
    for lab in demo.labels:
        assert isinstance(lab, Label)
        assert lab.start_ms <= lab.end_ms
        kind, sid = lab.subject_kind, lab.subject_id
        if kind == "station":
            assert sid in reg.stations
        elif kind == "vehicle":
            assert sid in reg.vehicles
        elif kind == "site":
            assert sid in reg.sites
        elif kind == "ticket":
            assert set(lab.subject_ids) <= tickets
        elif kind == "district":
            assert sid.split("/")[0] in districts
        elif kind == "spot":
            assert sid in {w.id for w in demo.workshops}
        else:
            assert kind == "incident"
            assert {"lat", "lon", "radius_m"} <= set(lab.params)


def test_workshops_are_hidden_from_the_registry(demo: Simulation) -> None:
    assert demo.workshops
    assert all(isinstance(w, Workshop) for w in demo.workshops)
    place_ids = set(demo.registry.places)
    assert not {w.id for w in demo.workshops} & place_ids


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("duration_s", [900, 2400])
def test_every_scenario_runs_clean(name: str, duration_s: int) -> None:
    sim = simulate(name, seed=1, duration_s=duration_s, lead_s=60)
    dec = EventDecoder()
    n = 0
    tickets = set()
    for line in sim.records():
        ev = dec.decode(line)
        assert not isinstance(ev, DeadLetter), line
        if ev.kind == "hotline":
            tickets.add(ev.key)
        n += 1
    assert n > 0
    for lab in sim.labels:  # a run that ends early drops the tickets it never saw
        assert set(lab.params.get("tickets", ())) <= tickets, lab
        if lab.subject_kind == "ticket":
            assert set(lab.subject_ids) <= tickets
    planned = [lab for lab in sim.labels if lab.rule not in BACKGROUND_RULES]
    assert bool(planned) == (sim.scenario.total_anomalies() > 0), name
    for lab in sim.labels:
        assert sim.start_ms <= lab.start_ms <= lab.end_ms <= sim.end_ms, lab


def test_bad_knobs_fail_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="more air anomalies than stations"):
        simulate("air-faults", duration_s=600, air_spikes=50)
    with pytest.raises(KeyError, match="unknown"):
        simulate("no-such-scenario")
    with pytest.raises(ValueError, match="profile"):
        simulate("demo", profile="paris")
    with pytest.raises(ValueError, match="dirty"):
        simulate("demo", dirty=0.7)
    with pytest.raises(TypeError):
        simulate("demo", no_such_knob=1)
