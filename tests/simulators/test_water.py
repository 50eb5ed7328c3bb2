"""The water scenario: stations in the registry, readings on the analysers' grids, labels the
water model finds."""

from __future__ import annotations

import itertools

from citywatch.events import Water
from models.alert_engine import AlertEngine
from models.water import WaterModel
from simulators import simulate
from simulators.scoring import score


def test_water_scenario_is_deterministic_and_registers_its_stations() -> None:
    a = simulate("water", seed=5, duration_s=3 * 3600)
    b = simulate("water", seed=5, duration_s=3 * 3600)
    assert list(itertools.islice(a.records(), 500)) == list(itertools.islice(b.records(), 500))
    reg = a.registry
    assert len(reg.water_stations) >= 12
    assert not set(reg.water_stations) & set(reg.stations)  # not air stations
    kinds = {w.kind for w in reg.water_stations.values()}
    assert kinds == {"plant", "network"}
    assert all(lab.subject_kind == "water_station" for lab in a.labels)


def test_readings_sit_on_the_analysers_grids() -> None:
    sim = simulate("water", seed=6, duration_s=2 * 3600)
    events = [e for e in sim.events() if isinstance(e, Water)]
    assert len(events) > 1000
    for e in events[:2000]:
        if e.ph is not None:
            assert round(e.ph, 2) == e.ph
        if e.conductivity_us_cm is not None:
            assert e.conductivity_us_cm == int(e.conductivity_us_cm)
        if e.turbidity_ntu is not None:
            assert round(e.turbidity_ntu, 3) == e.turbidity_ntu
    channels = ("temp_c", "ph", "conductivity_us_cm", "turbidity_ntu", "chlorine_mg_l")
    # single channels go missing now and then
    assert any(getattr(e, c) is None for e in events for c in channels)


def test_the_water_model_finds_the_labelled_anomalies() -> None:
    sim = simulate("water", seed=7, duration_s=30 * 3600)
    model = WaterModel(sim.registry)
    engine = AlertEngine()
    states: dict[str, object] = {}
    alerts = {}
    for ev in sim.events():
        key = model.route(ev)
        assert key is not None
        st = states.setdefault(key, model.new_state(key))
        for sig in model.update(st, ev):  # type: ignore[arg-type]
            for al in engine.on_signal(sig):
                alerts[al.id] = al
    for al in engine.advance(sim.end_ms + 3 * 3_600_000):
        alerts[al.id] = al
    report = score(alerts.values(), sim.labels, rules=("water.event", "water.range"))
    assert report.rules["water.event"].recall >= 0.75
    assert report.rules["water.event"].precision >= 0.75
    assert report.rules["water.range"].recall >= 0.75
