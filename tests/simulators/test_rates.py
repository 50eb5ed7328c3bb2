"""Record rates match the ``nantong`` profile within 5 %, and the city looks like Nantong."""

from __future__ import annotations

from collections import Counter

import pytest

from simulators import PROFILES, simulate
from simulators.output import kind_of


def test_rates_within_five_percent_of_the_profile() -> None:
    scale, duration = 0.02, 1800
    sim = simulate(
        "clean",
        seed=9,
        scale=scale,
        duration_s=duration,
        start_ms=simulate("clean").start_ms + 9 * 3_600_000,
        terminals="ideal",  # the profile's rates; real terminals sleep when parked
    )
    counts: Counter[str] = Counter()
    for b in sim.batches():
        counts.update(kind_of(x) for x in b.lines)
    expected = PROFILES["nantong"].records_per_s(scale)
    for kind in ("air", "gps", "video", "power"):
        assert counts[kind] == pytest.approx(expected[kind] * duration, rel=0.05), kind
    # the Nantong mix: video about 65 %, power 23 %, gps 11 %, air 0.7 %
    total = sum(counts.values())
    assert counts["video"] / total == pytest.approx(0.648, abs=0.02)
    assert counts["power"] / total == pytest.approx(0.234, abs=0.02)


def test_entity_counts_scale_with_the_profile() -> None:
    p = PROFILES["nantong"]
    sim = simulate("clean", seed=1, scale=0.02, duration_s=60)
    reg = sim.registry
    assert len(reg.stations) == p.count("stations", 0.02, 12) == 40
    assert len(reg.vehicles) == 100
    assert len(sim.city.camera_ids) == 3600
    assert len(sim.city.meter_ids) == 1300
    assert len(reg.districts) == 10
    suspended = sum(1 for s in sim.city.sites if s.state == "suspended")
    assert 3 <= suspended <= 0.05 * len(reg.sites) + 3


def test_hotline_volume_follows_the_day() -> None:
    sim = simulate("hotline", seed=3, scale=0.05, hard_negatives=0, duplicate_clusters=0, surges=0)
    tickets = [e for e in sim.events() if e.kind == "hotline" and not e.is_decision]
    assert len(tickets) == pytest.approx(12_000 * 0.05, rel=0.1)
    night = sum(1 for t in tickets if (t.ts - sim.start_ms) % 86_400_000 < 5 * 3_600_000)
    assert night < 0.1 * len(tickets)


def test_every_entity_is_inside_its_district() -> None:
    sim = simulate("clean", seed=2, duration_s=60)
    reg = sim.registry
    for st in reg.stations.values():
        assert reg.district_of(st.lat, st.lon) == st.district
    for z in reg.zones.values():
        assert reg.district_of(z.lat, z.lon) == z.district
