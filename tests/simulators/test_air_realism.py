"""Air stations as real networks send them (``air_stations="real"``): hourly national averages
beside minute micro stations and irregular low-cost sensors, missing hours, PM2.5 > PM10
within uncertainty, a flat line shared by several stations, late uploads."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from citywatch.events import Air
from simulators import Simulation, simulate
from simulators.air import INTERVAL_S, AirStream
from simulators.air_realism import AIR_STATIONS
from simulators.city import build_city
from simulators.clock import DEFAULT_START_MS, HOUR_MS, MINUTE_MS
from simulators.scenario import PROFILES
from tests.simulators.conftest import Decoded, decode_all


@pytest.fixture(scope="module")
def real() -> Decoded:
    """Three days of air at 100 stations (2 national, ~20 low-cost), one shared flat line."""
    return decode_all(
        simulate(
            "air-faults",
            seed=8,
            scale=0.05,
            duration_s=3 * 86_400,
            air_stations="real",
            air_shared_flat=1,
        )
    )


def kinds(d: Decoded) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for sid, st in d.sim.registry.stations.items():
        out[st.kind].append(sid)
    return out


def test_ideal_stations_report_every_minute_and_declare_nothing() -> None:
    sim = simulate("air-faults", seed=8, duration_s=2 * 3600)
    assert {st.kind for st in sim.registry.stations.values()} == {"national", "micro"}
    assert all(st.interval_s is None for st in sim.registry.stations.values())
    per: dict[str, list[int]] = defaultdict(list)
    for ev in sim.events():
        assert isinstance(ev, Air)
        per[ev.station].append(ev.ts)
    assert all(len(ts) == 120 for ts in per.values())


def test_the_registry_says_kind_and_for_half_of_them_the_interval(real: Decoded) -> None:
    by_kind = kinds(real)
    assert len(by_kind["national"]) == 2
    assert 10 <= len(by_kind["lowcost"]) <= 30  # a fifth of 98 micro stations
    stations = real.sim.registry.stations.values()
    declared = [st for st in stations if st.interval_s is not None]
    assert 0.35 < len(declared) / len(real.sim.registry.stations) < 0.65
    assert all(st.interval_s == INTERVAL_S[st.kind] for st in declared)


def test_national_stations_publish_one_hourly_average_per_clock_hour(real: Decoded) -> None:
    air = real.sim.air
    for sid in kinds(real)["national"]:
        rows = real.air[sid]
        ts = [r.ts for r in rows]
        assert all(t % HOUR_MS == 0 for t in ts)
        assert len(ts) == len(set(ts))
        assert 0.6 * 72 <= len(ts) < 72  # whole hours are missing, most are there
        s = air.ids.index(sid)
        for r in rows[:24]:
            _, meas = air.hour(r.ts)
            row = meas["pm25"][s]
            ok = ~np.isnan(row)
            assert ok.sum() >= 45
            assert r.pm25 == round(float(row[ok].mean()))


def test_micro_report_every_minute_and_low_cost_sensors_irregularly(real: Decoded) -> None:
    by_kind = kinds(real)
    for sid in by_kind["micro"][:10]:
        steps = np.diff(sorted(r.ts for r in real.air[sid]))
        assert np.median(steps) == MINUTE_MS
    for sid in by_kind["lowcost"][:10]:
        rows = real.air[sid]
        steps = np.diff(sorted(r.ts for r in rows))
        assert 130_000 <= np.median(steps) <= 170_000
        assert len(set(steps.tolist())) > 20  # jittered, not a fixed clock
        assert all(r.no2 is None and r.wind_ms is None for r in rows)  # optical PM only
        assert any(r.pm25 is not None for r in rows)


def test_stations_miss_whole_hours(real: Decoded) -> None:
    air = real.sim.air
    missing = 0
    for sid in kinds(real)["micro"]:
        hours = {r.ts - r.ts % HOUR_MS for r in real.air[sid]}
        missing += 72 - len(hours)
    assert missing > 0
    # a gap hour has no reading at all, and no exceedance label falls in it
    for lab in real.sim.labels:
        if lab.rule != "air.exceedance":
            continue
        s = air.ids.index(lab.subject_id)
        for h in range(lab.start_ms - lab.start_ms % HOUR_MS, lab.end_ms, HOUR_MS):
            assert air.gaps is not None
            assert not air.gaps.missing(h)[s]


def test_pm25_above_pm10_within_uncertainty_is_natural_at_reference_stations() -> None:
    """Five days of 20 reference stations (every station of a small city made one)."""
    city = build_city(8, PROFILES["nantong"], 0.01)
    city.station_national[:] = True
    start = DEFAULT_START_MS
    air = AirStream(city, 8, start, start + 5 * 86_400_000, realism=AIR_STATIONS["real"])
    pairs = []
    for h in range(5 * 24):
        vals = air.hourly_values(start + h * HOUR_MS)
        pairs += [(a, b) for a, b in zip(vals["pm25"], vals["pm10"], strict=True) if a and b]
    inverted = [(a, b) for a, b in pairs if a > b]
    assert 0.01 * len(pairs) < len(inverted) < 0.15 * len(pairs)
    # within the two analysers' uncertainty (10 % + 5 µg/m³), never a fault-like inversion
    assert all(a <= b * 1.1 + 5 for a, b in inverted)


def test_an_optical_counter_never_inverts(real: Decoded) -> None:
    faults = {"air.range", "air.stuck", "air.drift"}  # a frozen or drifting PM2.5 may invert
    labelled = {lab.subject_id for lab in real.sim.labels if lab.rule in faults}
    by_kind = kinds(real)
    for sid in by_kind["micro"][:20] + by_kind["lowcost"][:10]:
        if sid in labelled:
            continue
        assert all(
            r.pm25 <= r.pm10 for r in real.air[sid] if r.pm25 is not None and r.pm10 is not None
        )


def test_a_shared_flat_line_freezes_several_stations_from_the_same_hour(real: Decoded) -> None:
    shared = [lab for lab in real.sim.labels if "shared_with" in lab.params]
    assert 2 <= len(shared) <= 3
    assert len({(lab.start_ms, lab.end_ms) for lab in shared}) == 1
    start, end = shared[0].start_ms, shared[0].end_ms
    assert start % HOUR_MS == 0
    assert end - start >= 6 * HOUR_MS
    assert any(real.sim.registry.stations[lab.subject_id].kind == "national" for lab in shared)
    for lab in shared:
        assert set(lab.params["shared_with"]) == {x.subject_id for x in shared} - {lab.subject_id}
        inside = [
            r.pm25
            for r in real.air[lab.subject_id]
            if start + HOUR_MS <= r.ts < end and r.pm25 is not None
        ]
        assert len(inside) >= 3
        assert len(set(inside)) == 1
        before = [r.pm25 for r in real.air[lab.subject_id] if r.ts < start and r.pm25 is not None]
        assert len(set(before)) > 1  # it moved before


def test_buffered_uploads_arrive_late_and_nothing_is_lost_or_doubled(real: Decoded) -> None:
    newest = 0
    late = []
    for ev in real.events:
        assert isinstance(ev, Air)
        if ev.ts < newest - MINUTE_MS:
            late.append(newest - ev.ts)
        newest = max(newest, ev.ts)
    assert late, "no late upload in 3 days of 98 minute and low-cost stations"
    assert max(late) <= 5 * MINUTE_MS
    for sid, rows in real.air.items():
        ts = [r.ts for r in rows]
        assert len(ts) == len(set(ts)), sid


def test_windows_are_pure_and_runs_are_reproducible() -> None:
    def sim() -> Simulation:
        return simulate("air-faults", seed=3, duration_s=3 * 3600, air_stations="real")

    a = list(sim().records())
    assert a == list(sim().records())
    s = sim()
    windows = list(s.windows())
    backwards = [s.generators[0].chunk(w).lines for w in reversed(windows)][::-1]
    forwards = [sim().generators[0].chunk(w).lines for w in windows]
    assert backwards == forwards


def test_ideal_streams_are_unchanged_by_the_realism_code() -> None:
    """The ideal stream draws nothing new: its first hour is what the first simulator made."""
    sim = simulate("clean", seed=1, duration_s=3600, kinds=("air",))
    events = [ev for ev in sim.events() if isinstance(ev, Air)]
    assert len(events) == 20 * 60
    assert all(ev.pm10 is not None and ev.pm25 is not None for ev in events[:5])
