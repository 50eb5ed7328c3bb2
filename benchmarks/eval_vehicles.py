"""Evaluate ``vehicle.dwell`` and ``vehicle.workshop`` on the simulator, and the cost per fix.

    python benchmarks/eval_vehicles.py --seeds 301,302,303,304,305 [--scale 0.01]
        [--scenarios hazmat,workshops,clean] [--match-radius-m 300] [--top-k 20]

The simulated terminals are real ones by default (``--terminals real``: sleep mode, GPS jumps,
irregular sampling, missing speed, dead zones re-sent late; ``--terminals ideal``: a fix every
10 s, the stream the models were first tuned on). Records more than the flow's lateness
(600 s) behind the newest are skipped, as the flow dead-letters them.

For every seed and scenario it replays ``sim.events()`` through a stand-in of the flow:
``DwellModel.route`` -> per-vehicle state -> ``DwellModel.update``; ``on_watermark`` for every
vehicle once per minute of event time; every ``vehicle.dwell`` signal also goes to
``WorkshopModel`` (the flow's second stage, one city-wide key); all signals go through the real
alert engine (``models.alert_engine.AlertEngine``, default policies), whose alerts (latest
version of each id) are scored by ``simulators.scoring.score``. Figures are pooled over all
seeds and scenarios:

* ``dwell_f1``: F1 of ``vehicle.dwell`` from pooled true/false positives and misses
  (``score``'s counts; ``--tolerance-s`` 120 s, stricter than its 5-min default). The
  ``clean`` scenario has no dwell label: every dwell alert there is a false one.
* ``dwell_median_delay_s``: median over detected labels of (first alert - (label start +
  threshold)), where the threshold is the dwell policy's first threshold for the label's
  context (zone category for ``reason=sensitive``, ``unregistered`` otherwise): the delay
  after the dwell *passed its threshold*, not after arrival (the label start is when the truck
  halted; it is negative when the model's dwell clock started a few fixes earlier, on the
  approach). The delay after arrival and the maximum are printed too.
* ``workshop_recall_at_20``: share of the hidden workshops the simulation visited
  (``sim.workshops`` with ``visits > 0``) that have one of the final top-20 candidates within
  ``--match-radius-m`` (300 m, the radius of the simulator's ``vehicle.workshop`` labels).
  Unvisited workshops leave no trace in the data and are not counted (their number is printed).
* ``us_per_fix``: CPU microseconds (``time.process_time``: the machine is shared, and wall
  time counts other people's work) per GPS fix through ``route`` + state lookup + ``update`` of
  the dwell model (the per-fix hot path), best of ``--repeats`` passes over one run's fixes.
  The stay-point detector alone is printed too.

``--knob NAME=INT`` overrides scenario knobs of the labelled scenarios (a stress run, e.g.
``--knob dwell_sensitive=30 --knob workshops_visited=6 --knob visits_per_workshop=2``).

Tune on seeds you then do not report (the defaults were tuned on 101-108; see
``docs/models/vehicles.md`` on why 301-305 are the reported seeds). Last line: one JSON object
with exactly the keys ``dwell_f1``, ``dwell_median_delay_s``, ``workshop_recall_at_20`` and
``us_per_fix``.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from citywatch.alerts import Alert, Signal
from citywatch.cli_options import parse_seeds
from citywatch.events import Gps
from citywatch.geo import haversine_m
from citywatch.registry import Registry
from models.alert_engine import AlertEngine
from models.vehicles.dwell import DwellPolicy
from models.vehicles.model import DwellModel, VehicleState, WorkshopModel
from models.vehicles.stay_point import StayPointDetector
from simulators import Label, simulate
from simulators.scoring import matches, score, view

DWELL = "vehicle.dwell"
WORKSHOP = "vehicle.workshop"
MIN_MS = 60_000
DAY_MS = 86_400_000
#: The flow's default lateness (``Settings.lateness_s``): later records are dead letters.
LATENESS_MS = 600_000


@dataclass
class Run:
    """What one (scenario, seed) replay produced."""

    scenario: str
    seed: int
    alerts: list[Alert]
    labels: list[Label]
    top: list[tuple[float, float]]
    workshops: list[tuple[str, float, float, int]]
    fixes: list[Gps] = field(default_factory=list)
    registry: Registry = field(default_factory=Registry)
    vehicle_days: float = 0.0
    state_bytes: list[int] = field(default_factory=list)
    workshop_state_bytes: int = 0
    late: int = 0
    behind: int = 0
    sleepers: int = 0
    declared: int = 0


def replay(
    scenario: str, seed: int, scale: float, top_k: int, knobs: dict[str, Any] | None = None
) -> Run:
    sim = simulate(scenario, seed=seed, scale=scale, **(knobs or {}))
    reg = sim.registry
    dwell = DwellModel(reg)
    shops = WorkshopModel(reg, top_k=top_k)
    shop_state = shops.new_state("city")
    engine = AlertEngine()
    states: dict[str, VehicleState] = {}
    latest: dict[str, Alert] = {}
    fixes: list[Gps] = []

    def emit(signals: Iterable[Signal]) -> None:
        for sig in signals:
            for a in engine.on_signal(sig):
                latest[a.id] = a
            if shops.route(sig) is not None:
                emit(shops.update(shop_state, sig))

    next_tick = -1
    last_ts = newest = 0
    late = behind = 0
    newest_of: dict[str, int] = {}
    for ev in sim.events():
        if ev.ts < newest - LATENESS_MS:
            late += 1  # the flow dead-letters it (late: behind its partition's event time)
            continue
        newest = max(newest, ev.ts)
        if type(ev) is Gps:
            if ev.ts <= newest_of.get(ev.vehicle, 0):
                behind += 1  # out of order for its vehicle: a re-sent dead zone
            else:
                newest_of[ev.vehicle] = ev.ts
        if ev.ts >= next_tick:
            if next_tick >= 0:
                for st in states.values():
                    emit(dwell.on_watermark(st, ev.ts))
                emit(shops.on_watermark(shop_state, ev.ts))
                for a in engine.advance(ev.ts):
                    latest[a.id] = a
            next_tick = ev.ts - ev.ts % MIN_MS + MIN_MS
        key = dwell.route(ev)
        if key is None or type(ev) is not Gps:
            continue
        fixes.append(ev)
        last_ts = ev.ts
        st = states.get(key)
        if st is None:
            st = states[key] = dwell.new_state(key)
        emit(dwell.update(st, ev))
    end_ms = sim.scenario.end_ms
    return Run(
        scenario=scenario,
        seed=seed,
        alerts=list(latest.values()),
        labels=list(sim.labels),
        top=[(c.lat, c.lon) for c in shop_state.top(top_k)],
        workshops=[(w.id, w.lat, w.lon, w.visits) for w in sim.workshops],
        fixes=fixes,
        registry=reg,
        vehicle_days=len(reg.vehicles)
        * (min(end_ms, last_ts or end_ms) - sim.scenario.start_ms)
        / DAY_MS,
        state_bytes=[len(pickle.dumps(s)) for s in states.values()],
        workshop_state_bytes=len(pickle.dumps(shop_state)),
        late=late,
        behind=behind,
        sleepers=sum(1 for ms in sim.gps.traits.sleep_ms if ms),
        declared=sum(1 for v in reg.vehicles.values() if v.sleep_interval_s),
    )


def threshold_s(label: Label, policy: DwellPolicy) -> float:
    ctx = label.params.get("category") if label.params.get("reason") == "sensitive" else None
    th = policy.threshold_s(str(ctx or "unregistered"))
    return float(th or 0.0)


def first_alerts(alerts: list[Alert], labels: list[Label], tol_ms: int) -> dict[int, int]:
    """Label index -> first_ts of its earliest matching alert (``simulators.scoring.matches``)."""
    views = [view(a) for a in alerts]
    out: dict[int, int] = {}
    for i, lab in enumerate(labels):
        hits = [v.first_ts for v in views if matches(v, lab, tol_ms)]
        if hits:
            out[i] = min(hits)
    return out


def time_fixes(fixes: list[Gps], reg_model: DwellModel, repeats: int) -> tuple[float, float]:
    """(µs per fix through the dwell model's hot path, µs per fix of the detector alone)."""
    best_model = best_det = float("inf")
    for _ in range(repeats):
        states: dict[str, VehicleState] = {}
        route, new_state, update = reg_model.route, reg_model.new_state, reg_model.update
        t0 = time.process_time()
        for ev in fixes:
            key = route(ev)
            st = states.get(key)  # type: ignore[arg-type]
            if st is None:
                st = states[key] = new_state(key)  # type: ignore[index,arg-type]
            update(st, ev)
        best_model = min(best_model, time.process_time() - t0)
        dets: dict[str, StayPointDetector] = {}
        t0 = time.process_time()
        for ev in fixes:
            det = dets.get(ev.vehicle)
            if det is None:
                det = dets[ev.vehicle] = StayPointDetector()
            det.update(ev.ts, ev.lat, ev.lon)
        best_det = min(best_det, time.process_time() - t0)
    n = max(1, len(fixes))
    return best_model / n * 1e6, best_det / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--seeds", type=parse_seeds, default=[301, 302, 303, 304, 305], help="e.g. 301-305"
    )
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--scenarios", default="hazmat,workshops,clean")
    ap.add_argument("--match-radius-m", type=float, default=300.0)
    ap.add_argument("--top-k", type=int, default=20)
    ap.add_argument("--tolerance-s", type=float, default=120.0, help="label match tolerance")
    ap.add_argument(
        "--terminals",
        choices=("real", "ideal"),
        default="real",
        help="GPS terminals: real (sleep mode, jumps, late re-sends, ...) or ideal (10-s fixes)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="timing passes (best is kept)")
    ap.add_argument(
        "--knob",
        action="append",
        default=[],
        metavar="NAME=INT",
        help="scenario knob override for the labelled scenarios, e.g. dwell_sensitive=30",
    )
    args = ap.parse_args(argv)
    knobs: dict[str, Any] = {k: int(v) for k, _, v in (item.partition("=") for item in args.knob)}
    seeds = args.seeds
    scenarios = [s for s in args.scenarios.split(",") if s]
    policy = DwellPolicy()
    tol_ms = round(args.tolerance_s * 1000)

    tp = fp = fn = n_labels_total = shop_alerts = shop_true = 0
    delays_thr: list[float] = []
    delays_arrival: list[float] = []
    found = visited = unvisited = 0
    fp_clean = 0
    clean_days = 0.0
    timing_fixes: list[Gps] = []
    timing_registry = Registry()
    state_bytes: list[int] = []
    shop_bytes: list[int] = []
    for scenario in scenarios:
        for seed in seeds:
            t0 = time.perf_counter()
            run = replay(
                scenario,
                seed,
                args.scale,
                args.top_k,
                {**(knobs if scenario != "clean" else {}), "terminals": args.terminals},
            )
            dwell_alerts = [a for a in run.alerts if a.rule == DWELL]
            labels = [lab for lab in run.labels if lab.rule == DWELL]
            rep = score(
                run.alerts,
                run.labels,
                rules=[DWELL, WORKSHOP],
                tolerance_ms=tol_ms,
                entity_days=run.vehicle_days,
            ).rules
            d = rep[DWELL]
            a_tp, a_fp, a_fn = d.true_alerts, d.alerts - d.true_alerts, d.labels - d.detected
            tp, fp, fn = tp + a_tp, fp + a_fp, fn + a_fn
            n_labels_total += d.labels
            w = rep[WORKSHOP]
            shop_alerts += w.alerts
            shop_true += w.true_alerts
            firsts = first_alerts(dwell_alerts, labels, tol_ms)
            assert len(firsts) == d.detected
            for i, first in firsts.items():
                lab = labels[i]
                delays_arrival.append((first - lab.start_ms) / 1000)
                delays_thr.append((first - lab.start_ms) / 1000 - threshold_s(lab, policy))
                if delays_thr[-1] > tol_ms / 1000:
                    print(
                        f"    late by {delays_thr[-1]:.0f} s: {lab.subject_id} {lab.params}",
                        file=sys.stderr,
                    )
            if scenario == "clean":
                fp_clean += a_fp
                clean_days += run.vehicle_days
            n_found = 0
            for _, wlat, wlon, visits in run.workshops:
                if visits <= 0:
                    unvisited += 1
                    continue
                visited += 1
                if any(
                    haversine_m(wlat, wlon, la, lo) <= args.match_radius_m for la, lo in run.top
                ):
                    n_found += 1
            found += n_found
            if not timing_fixes:
                timing_fixes, timing_registry = run.fixes, run.registry
            state_bytes += run.state_bytes
            shop_bytes.append(run.workshop_state_bytes)
            print(
                f"{scenario:>10} seed {seed}: labels {len(labels)}, alerts {len(dwell_alerts)} "
                f"(tp {a_tp}, fp {a_fp}), missed {a_fn}, workshops found {n_found}/"
                f"{sum(1 for w in run.workshops if w[3] > 0)}, "
                f"workshop alerts {w.alerts} (true {w.true_alerts}), "
                f"{len(run.fixes)} fixes ({run.behind} out of order for their vehicle, {run.late} "
                f"records later than the lateness), {run.sleepers} sleeping terminals "
                f"({run.declared} declared), {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
            )
            for i, lab in enumerate(labels):
                if i not in firsts:
                    print(f"    missed {lab.subject_id} {lab.params}", file=sys.stderr)
            for a in dwell_alerts:
                if not any(matches(view(a), lab, tol_ms) for lab in labels):
                    print(f"    false {a.subject.id} {dict(a.evidence)}", file=sys.stderr)

    us_model, us_det = time_fixes(timing_fixes, DwellModel(timing_registry), args.repeats)
    precision = tp / (tp + fp) if tp + fp else 1.0
    n_labels = n_labels_total
    recall = (n_labels - fn) / n_labels if n_labels else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    result: dict[str, Any] = {
        "dwell_f1": round(f1, 4),
        "dwell_median_delay_s": round(statistics.median(delays_thr), 1) if delays_thr else None,
        "workshop_recall_at_20": round(found / visited, 4) if visited else None,
        "us_per_fix": round(us_model, 3),
    }
    print(
        f"dwell precision {precision:.4f} recall {recall:.4f} (alerts tp {tp} fp {fp}, "
        f"labels {n_labels} missed {fn}); delay after arrival: median "
        f"{statistics.median(delays_arrival) if delays_arrival else float('nan'):.0f} s; "
        f"delay after threshold: max {max(delays_thr) if delays_thr else float('nan'):.0f} s",
        file=sys.stderr,
    )
    print(
        f"clean: {fp_clean} false dwell alerts in {clean_days:.1f} vehicle-days; workshops "
        f"found {found}/{visited} visited ({unvisited} unvisited not counted); detector alone "
        f"{us_det:.3f} us/fix; state bytes per vehicle (pickled) median "
        f"{statistics.median(state_bytes) if state_bytes else 0:.0f} max "
        f"{max(state_bytes, default=0)}; workshop state {max(shop_bytes, default=0)} bytes; "
        f"vehicle.workshop alerts {shop_alerts}, {shop_true} within a workshop label's radius",
        file=sys.stderr,
    )
    print(orjson.dumps(result).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
