"""Every label's anomaly is really in the data, where and when the label says."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from citywatch.geo import haversine_m
from simulators.aqi import aqi
from simulators.hotline import BACKGROUND_GAP_M, BACKGROUND_GAP_MS
from simulators.labels import Label
from tests.simulators.conftest import Decoded

MIN = 60_000


def _labels(d: Decoded, rule: str, **params: object) -> list[Label]:
    out = [
        lab
        for lab in d.sim.labels
        if lab.rule == rule and all(lab.params.get(k) == v for k, v in params.items())
    ]
    assert out, f"no {rule} label with {params}"
    return out


def _inside(ts: int, lab: Label, margin_ms: int = 0) -> bool:
    return lab.start_ms + margin_ms <= ts < lab.end_ms - margin_ms


@pytest.fixture(params=["demo", "day"])
def data(request: pytest.FixtureRequest, demo_data: Decoded, day_data: Decoded) -> Decoded:
    return demo_data if request.param == "demo" else day_data


def test_spike_is_a_plume_at_its_station(data: Decoded) -> None:
    for lab in _labels(data, "air.spike"):
        rows = data.air[lab.subject_id]
        during = [r.pm25 for r in rows if _inside(r.ts, lab) and r.pm25 is not None]
        others = [
            r.pm25
            for sid, rs in data.air.items()
            if sid != lab.subject_id
            for r in rs
            if _inside(r.ts, lab) and r.pm25 is not None
        ]
        assert max(during) > statistics.median(others) + 0.6 * lab.params["peak_ugm3"], lab


def test_stuck_station_repeats_every_pollutant_exactly(data: Decoded) -> None:
    for lab in _labels(data, "air.stuck"):
        rows = [r for r in data.air[lab.subject_id] if _inside(r.ts, lab)]
        assert len(rows) >= 5
        for ch in lab.params["channels"]:
            assert len({getattr(r, ch) for r in rows}) == 1, (ch, lab)
        assert {"pm25", "pm10"} <= set(lab.params["channels"])  # several channels freeze
        if len(lab.params["channels"]) == 2:  # the PM counter alone: the gases still move
            assert len({r.no2 for r in rows}) > 1
        before = [r.pm25 for r in data.air[lab.subject_id] if r.ts < lab.start_ms - 2 * MIN]
        after = [r.pm25 for r in data.air[lab.subject_id] if r.ts > lab.end_ms]
        assert len(set(before + after)) > 3 or not (before or after)


def test_gross_range_values_appear_only_during_the_fault(data: Decoded) -> None:
    for lab in _labels(data, "air.range", check="gross_range"):
        ch, value = lab.params["channel"], lab.params["value"]
        rows = data.air[lab.subject_id]
        hits = [r.ts for r in rows if getattr(r, ch) == value]
        assert hits, lab
        assert all(_inside(t, lab) for t in hits)
        assert hits[0] - lab.start_ms < MIN


def test_inversion_has_pm25_above_pm10_only_during_the_fault(data: Decoded) -> None:
    for lab in _labels(data, "air.range", check="pm25_gt_pm10"):
        for r in data.air[lab.subject_id]:
            if r.pm25 is None or r.pm10 is None:
                continue
            assert (r.pm25 > r.pm10) == _inside(r.ts, lab), (r, lab)


def test_no_unlabelled_inversion_anywhere(data: Decoded) -> None:
    inv = {(lab.subject_id) for lab in data.sim.labels if lab.params.get("check") == "pm25_gt_pm10"}
    for sid, rows in data.air.items():
        if sid in inv:
            continue
        stuck_or_range = any(
            lab.subject_id == sid
            for lab in data.sim.labels
            if lab.rule in {"air.stuck", "air.range", "air.drift"}
        )
        bad = [r for r in rows if r.pm25 is not None and r.pm10 is not None and r.pm25 > r.pm10]
        assert not bad or stuck_or_range, bad[:3]


def test_drift_grows_against_the_station_itself(data: Decoded) -> None:
    air = data.sim.air
    for lab in _labels(data, "air.drift"):
        s = data.sim.city.station_ids.index(lab.subject_id)
        t = lab.end_ms - 2 * MIN
        h0 = t - t % 3_600_000
        true, meas = air.hour(h0)
        m = (t - h0) // MIN
        ratio = meas["pm25"][s, m] / true["pm25"][s, m]
        hours = (t - lab.start_ms) / 3_600_000
        assert ratio == pytest.approx(1 + lab.params["rate_per_h"] * hours, rel=0.05, abs=0.05)
        assert ratio > 1.15


def test_episode_raises_its_districts_above_the_rest(data: Decoded) -> None:
    reg = data.sim.registry
    for lab in _labels(data, "air.episode"):
        covered = set(lab.subject_ids)
        mid = lab.start_ms + (lab.end_ms - lab.start_ms) // 2
        inside, outside = [], []
        for sid, rows in data.air.items():
            vals = [r.pm25 for r in rows if abs(r.ts - mid) < 10 * MIN and r.pm25 is not None]
            if vals and not any(
                x.subject_id == sid and x.rule != "air.exceedance" for x in data.sim.labels
            ):
                (inside if reg.stations[sid].district in covered else outside).append(
                    statistics.median(vals)
                )
        assert inside
        assert outside
        assert statistics.median(inside) > 1.8 * statistics.median(outside), (inside, outside)
        wind: dict[bool, list[float]] = {True: [], False: []}
        for sid, rows in data.air.items():
            wind[reg.stations[sid].district in covered] += [
                r.wind_ms for r in rows if abs(r.ts - mid) < 10 * MIN and r.wind_ms is not None
            ]
        assert statistics.mean(wind[True]) < 0.75 * statistics.mean(wind[False])  # stagnation


def test_exceedance_labels_match_hourly_aqi_of_the_readings(day_data: Decoded) -> None:
    labs = [x for x in day_data.sim.labels if x.rule == "air.exceedance"]
    faulty = {
        x.subject_id
        for x in day_data.sim.labels
        if x.rule in {"air.stuck", "air.range", "air.drift"}
    }
    assert labs
    for lab in labs:
        if lab.subject_id in faulty:
            continue
        rows = [r for r in day_data.air[lab.subject_id] if _inside(r.ts, lab)]
        by_hour = defaultdict(list)
        for r in rows:
            by_hour[r.ts // 3_600_000].append(r)
        for hour_rows in by_hour.values():
            means = {}
            for ch in ("pm25", "pm10", "no2", "so2", "o3", "co"):
                vals = [getattr(r, ch) for r in hour_rows if getattr(r, ch) is not None]
                means[ch] = sum(vals) / len(vals) if vals else None
            assert aqi(means)[0] > 100, (lab, means)


def test_dwell_is_a_stop_at_the_labelled_place(data: Decoded) -> None:
    reg = data.sim.registry
    for lab in _labels(data, "vehicle.dwell"):
        fixes = [f for f in data.gps[lab.subject_id] if _inside(f.ts, lab, MIN)]
        assert len(fixes) >= 10
        near = [
            f for f in fixes if haversine_m(f.lat, f.lon, lab.params["lat"], lab.params["lon"]) < 60
        ]
        assert len(near) >= 0.97 * len(fixes)  # the rest: multipath outliers
        assert all((f.speed_kmh or 0.0) < 5 for f in fixes)
        if lab.params["reason"] == "sensitive":
            z = reg.zones[lab.params["zone"]]
            assert haversine_m(z.lat, z.lon, lab.params["lat"], lab.params["lon"]) < z.radius_m
        for p in reg.places.values():
            assert haversine_m(p.lat, p.lon, lab.params["lat"], lab.params["lon"]) > p.radius_m


def test_workshop_spots_get_repeat_dwells_by_different_vehicles(data: Decoded) -> None:
    for lab in _labels(data, "vehicle.workshop"):
        dwells = [
            x
            for x in data.sim.labels
            if x.rule == "vehicle.dwell" and x.params.get("workshop") == lab.subject_id
        ]
        assert len({x.subject_id for x in dwells}) >= 2
        for x in dwells:
            assert (
                haversine_m(x.params["lat"], x.params["lon"], lab.params["lat"], lab.params["lon"])
                < lab.params["radius_m"]
            )


def test_resumption_shows_machinery_and_power_under_an_order(demo_data: Decoded) -> None:
    reg = demo_data.sim.registry
    for lab in _labels(demo_data, "worksite.resumption"):
        site = reg.sites[lab.subject_id]
        suspended = [o for o in demo_data.orders if o.site == site.id]
        assert suspended
        assert suspended[0].action == "suspend"
        assert suspended[0].ts <= lab.start_ms
        assert all(o.action == "suspend" for o in suspended)
        per_minute: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for c in site.cameras:
            for v in demo_data.video[c]:
                if _inside(v.ts, lab):
                    per_minute[(v.ts - lab.start_ms) // MIN][0] += v.persons
                    per_minute[(v.ts - lab.start_ms) // MIN][1] += v.machinery
        busy = sum(1 for p, m in per_minute.values() if m >= 1 or p >= 3)
        if lab.params["cameras_covered"]:
            assert busy <= 0.05 * len(per_minute)
        else:
            assert busy >= 0.4 * len(per_minute), (lab, per_minute)
        kw = [p.kw for m in site.meters for p in demo_data.power[m] if _inside(p.ts, lab, MIN)]
        before = [
            p.kw for m in site.meters for p in demo_data.power[m] if p.ts > lab.end_ms + 5 * MIN
        ]
        assert statistics.mean(kw) > (site.idle_kw or 0) * 2
        if before:
            assert statistics.mean(kw) > 2 * statistics.mean(before)
        for t in lab.params["tickets"]:
            assert t in demo_data.hotline


def test_duplicate_clusters_are_one_place_one_problem(data: Decoded) -> None:
    truth = {t.id: t for t in data.sim.tickets()}
    for lab in _labels(data, "hotline.duplicate"):
        tickets = [data.hotline[t] for t in lab.params["tickets"]]
        assert tickets[0].ticket == lab.subject_id
        assert set(lab.also) == {t.ticket for t in tickets[1:]}
        assert len({truth[t.ticket].family for t in tickets}) == 1
        assert {truth[t.ticket].category for t in tickets} == {lab.params["category"]}
        assert len({t.text for t in tickets}) == len(tickets)
        for t in tickets:
            assert lab.start_ms <= t.ts <= lab.end_ms
            tk = truth[t.ticket]
            d = haversine_m(tk.true_lat, tk.true_lon, lab.params["lat"], lab.params["lon"])
            assert d <= lab.params["radius_m"] + 1


def test_surge_is_many_tickets_of_one_category_in_one_district(data: Decoded) -> None:
    truth = {t.id: t for t in data.sim.tickets()}
    for lab in _labels(data, "hotline.surge"):
        district, cat = lab.subject_id.split("/")
        inside = [
            t
            for t in data.hotline.values()
            if _inside(t.ts, lab)
            and truth[t.ticket].category == cat
            and truth[t.ticket].district == district
        ]
        assert len(inside) >= 10
        assert set(lab.params["tickets"]) <= {t.ticket for t in inside}


def test_incident_pieces_line_up_in_space_and_time(data: Decoded) -> None:
    for lab in _labels(data, "incident.correlated"):
        p = lab.params
        spike = next(
            x
            for x in data.sim.labels
            if x.rule == "air.spike" and x.params.get("incident") == lab.subject_id
        )
        truck = next(
            x
            for x in data.sim.labels
            if x.rule == "vehicle.dwell" and x.params.get("incident") == lab.subject_id
        )
        assert spike.subject_id == p["station"]
        assert truck.subject_id == p["vehicle"]
        assert truck.start_ms < spike.start_ms < truck.end_ms
        d = haversine_m(p["lat"], p["lon"], truck.params["lat"], truck.params["lon"])
        assert 500 < d < p["radius_m"]
        truth = {t.id: t for t in data.sim.tickets()}
        for t in p["tickets"]:
            tk = data.hotline[t]
            assert truth[t].category == "odor"
            assert tk.lat is not None
            assert tk.lon is not None
            assert haversine_m(p["lat"], p["lon"], tk.lat, tk.lon) < p["radius_m"]
            assert spike.start_ms <= tk.ts <= spike.end_ms
        # the truck is upwind: the station's wind blows from the truck towards it
        from citywatch.geo import bearing_deg

        winds = [
            r.wind_deg
            for r in data.air[p["station"]]
            if _inside(r.ts, spike) and r.wind_deg is not None
        ]
        to_truck = bearing_deg(p["lat"], p["lon"], truck.params["lat"], truck.params["lon"])
        diff = abs((statistics.median(winds) - to_truck + 180) % 360 - 180)
        assert diff < 40


def test_background_tickets_never_duplicate_by_accident(day_data: Decoded) -> None:
    planned: set[str] = set()
    for lab in day_data.sim.labels:
        planned.update(lab.params.get("tickets", ()))
    for neg in day_data.sim.negatives:
        planned.update(neg.get("tickets", ()))
    tickets = sorted(day_data.hotline.values(), key=lambda t: t.ts)
    assert len(tickets) > 100
    truth = {t.id: t for t in day_data.sim.tickets()}
    for i, a in enumerate(tickets):
        ta = truth[a.ticket]
        for b in tickets[i + 1 :]:
            if b.ts - a.ts >= BACKGROUND_GAP_MS:
                break
            tb = truth[b.ticket]
            if ta.family != tb.family:
                continue
            if haversine_m(ta.true_lat, ta.true_lon, tb.true_lat, tb.true_lon) < BACKGROUND_GAP_M:
                assert a.ticket in planned or b.ticket in planned, (a, b)


def test_hard_negatives_are_in_the_stream_and_unlabelled(day_data: Decoded) -> None:
    labelled = {t for lab in day_data.sim.labels for t in lab.params.get("tickets", ())}
    kinds = {n["kind"] for n in day_data.sim.negatives}
    assert {"same_place_other_problem", "same_problem_other_place"} <= kinds
    for neg in day_data.sim.negatives:
        for t in neg.get("tickets", ()):
            assert t in day_data.hotline
            assert t not in labelled
