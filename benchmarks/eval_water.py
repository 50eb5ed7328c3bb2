"""Evaluate the water model on the real GECCO 2018 network data and on the simulator.

    python benchmarks/eval_water.py [--data DIR] [--seeds 101-103] [--scale 0.01]
        [--sim-hours 48] [--no-sim]

**Real data** (``water/gecco2018`` in ``--data``, else ``$CITYWATCH_DATA``, else a
``shared/data`` folder beside the repository): one minute of a German drinking-water network
per reading, 139,566 readings, 51 labelled events. Strictly online, the way the flow runs it:
every reading goes through ``WaterModel.update`` in time order and its signals through the
real ``AlertEngine`` with its default policies (``models.alert_engine.DEFAULT_POLICIES``),
event time advancing once a minute. The model learns from the first reading; the first half
calibrates (its labels chose the defaults of ``WaterConfig``: see docs/models/water.md) and
only the second half is scored. The station's standard is the EU's (pH 6.5-9.5; the plant's
normal pH runs above China's 8.5 limit); every other parameter is the default.

Channels: ``Tp`` -> ``temp_c``, ``pH`` -> ``ph``, ``Leit`` -> ``conductivity_us_cm``, ``Trueb``
-> ``turbidity_ntu``, ``Cl`` -> ``chlorine_mg_l``, ``Redox`` -> ``redox_mv``, ``Fm`` ->
``flow_m3_h``; the second chlorine probe and the second flow line are not in the ``water`` event
kind and are left out. Values are read as numbers (the copy's event rows were rounded: their
formatting carries no signal, and nothing here looks at it).

Scores (second half; ``water.event`` and ``water.range`` alerts: both say "the water is
wrong"; ``water.stuck`` alerts are sensor faults, counted apart):

* ``event_recall``: labelled events an alert overlaps (alert [first, last] meets the event's
  [start, end + 10 min]), over all events;
* ``alert_precision``: alerts overlapping an event, over all alerts;
* ``event_f1``: their harmonic mean;
* ``median_delay_min``: minutes from an event's start to the first alert overlapping it (0
  when it was already on);
* ``false_alerts_per_day``: alerts overlapping no event, per day of the scored half;
* ``us_per_reading``: process CPU µs per ``WaterModel.update`` (best of three passes over
  the first 20,000 readings).

**Simulator**: scenario ``water`` for each ``--seeds`` (``--scale`` stations as a share of
the city's), run the same way and scored against its labels by ``simulators.scoring.score``
(per rule: precision, recall, F1). Printed to stderr and under ``sim`` in the JSON.

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_series import data_dir, load_gecco
from citywatch.alerts import Alert, Signal
from citywatch.cli_options import parse_seeds
from citywatch.events import Event, Water
from models.alert_engine import AlertEngine
from models.water import WaterConfig, WaterModel

MIN_MS = 60_000
STATION = "GECCO"
RULES = ("water.event", "water.range")
#: An alert up to this long after an event's end still counts as overlapping it.
TAIL_MS = 10 * MIN_MS
GECCO_CONFIG = WaterConfig(limits={"ph": (6.5, 9.5)})
#: our channel <- GECCO column (our load_gecco names)
GECCO_MAP = {
    "temp_c": "temp_c",
    "ph": "ph",
    "conductivity_us_cm": "conductivity_us_cm",
    "turbidity_ntu": "turbidity_ntu",
    "chlorine_mg_l": "chlorine_mg_l",
    "redox_mv": "redox_mv",
    "flow_m3_h": "flow_m3_h",
}


def gecco_events(root: Path) -> tuple[list[Water], np.ndarray]:
    t, ch, label = load_gecco(root)
    cols = {ours: ch[theirs].tolist() for ours, theirs in GECCO_MAP.items()}
    events = []
    for i, ts in enumerate(t.tolist()):
        kw = {k: (None if v[i] != v[i] else float(v[i])) for k, v in cols.items()}
        events.append(Water(ts=int(ts), station=STATION, **kw))
    return events, label


def run(model: WaterModel, events: Iterable[Event]) -> tuple[dict[str, Alert], int]:
    """Every event through the model and the engine; the latest version of every alert."""
    engine = AlertEngine()
    states: dict[str, Any] = {}
    alerts: dict[str, Alert] = {}
    next_wm = 0
    last = 0
    n = 0

    def emit(sigs: list[Signal]) -> None:
        for sig in sigs:
            for a in engine.on_signal(sig):
                alerts[a.id] = a

    for ev in events:
        n += 1
        last = max(last, ev.ts)
        if ev.ts >= next_wm:
            if next_wm:
                for a in engine.advance(ev.ts - MIN_MS):
                    alerts[a.id] = a
            next_wm = ev.ts - ev.ts % MIN_MS + MIN_MS
        key = model.route(ev)
        if key is None:
            continue
        st = states.get(key)
        if st is None:
            st = states[key] = model.new_state(key)
        emit(model.update(st, ev))
    for a in engine.advance(last + 6 * 3_600_000):
        alerts[a.id] = a
    return alerts, n


def episodes(label: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.r_[0, label.astype(np.int8), 0])
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def score_gecco(
    alerts: Iterable[Alert], ts: list[int], label: np.ndarray, half: int
) -> dict[str, Any]:
    t_half = ts[half]
    days = (ts[-1] - t_half) / 86_400_000
    evs = [(ts[s], ts[e - 1]) for s, e in episodes(label) if s >= half]
    scored = [a for a in alerts if a.rule in RULES and a.first_ts >= t_half]
    hit_alerts = 0
    for a in scored:
        if any(a.first_ts <= e + TAIL_MS and a.last_ts >= s for s, e in evs):
            hit_alerts += 1
    delays = []
    detected = 0
    for s, e in evs:
        firsts = [a.first_ts for a in scored if a.first_ts <= e + TAIL_MS and a.last_ts >= s]
        if firsts:
            detected += 1
            delays.append(max(0, min(firsts) - s) / MIN_MS)
    recall = detected / len(evs) if evs else 1.0
    precision = hit_alerts / len(scored) if scored else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    stuck = [a for a in alerts if a.rule == "water.stuck" and a.first_ts >= t_half]
    return {
        "event_f1": round(f1, 4),
        "event_recall": round(recall, 4),
        "alert_precision": round(precision, 4),
        "median_delay_min": round(statistics.median(delays), 1) if delays else None,
        "false_alerts_per_day": round((len(scored) - hit_alerts) / days, 3),
        "events": len(evs),
        "detected": detected,
        "alerts": len(scored),
        "stuck_alerts": len(stuck),
        "days": round(days, 1),
    }


def time_model(events: list[Water], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        model = WaterModel(config=GECCO_CONFIG)
        st = model.new_state(STATION)
        upd = model.update
        t0 = time.process_time()
        for ev in events:
            upd(st, ev)
        best = min(best, time.process_time() - t0)
    return best / len(events) * 1e6


def simulated(seeds: list[int], scale: float, hours: int, log: Any) -> dict[str, Any]:
    from simulators import simulate
    from simulators.scoring import score

    per_rule: dict[str, list[int]] = {}
    for seed in seeds:
        sim = simulate("water", seed=seed, scale=scale, duration_s=hours * 3600)
        model = WaterModel(sim.registry)
        alerts, n = run(model, sim.events())
        rules = ("water.event", "water.range", "water.stuck")
        report = score(alerts.values(), sim.labels, rules=rules)
        for rule, rs in report.rules.items():
            acc = per_rule.setdefault(rule, [0, 0, 0, 0])
            acc[0] += rs.true_alerts
            acc[1] += rs.alerts
            acc[2] += rs.detected
            acc[3] += rs.labels
        log(
            f"sim seed {seed}: {n} readings, {len(sim.registry.water_stations)} stations, "
            + ", ".join(
                f"{r} {rs.detected}/{rs.labels} found, {rs.alerts - rs.true_alerts} false"
                for r, rs in report.rules.items()
            )
        )
    out: dict[str, Any] = {}
    for rule, (tp, na, det, nl) in sorted(per_rule.items()):
        p = tp / na if na else 1.0
        r = det / nl if nl else 1.0
        out[rule] = {
            "precision": round(p, 3),
            "recall": round(r, 3),
            "f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
            "labels": nl,
            "alerts": na,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--data",
        default=None,
        help="data folder (default: $CITYWATCH_DATA, else shared/data beside the repository)",
    )
    ap.add_argument("--seeds", type=parse_seeds, default=[101, 102, 103], help="e.g. 101-103")
    ap.add_argument("--scale", type=float, default=0.01, help="simulated city scale")
    ap.add_argument("--sim-hours", type=int, default=48, help="hours simulated per seed")
    ap.add_argument("--no-sim", action="store_true", help="real data only")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        events, label = gecco_events(data_dir(args.data))
    except FileNotFoundError as exc:
        print(f"eval_water: error: {exc}", file=sys.stderr)
        return 2
    half = len(events) // 2
    alerts, _ = run(WaterModel(config=GECCO_CONFIG), events)
    res = score_gecco(alerts.values(), [e.ts for e in events], label, half)
    log(
        f"GECCO second half: {res['detected']}/{res['events']} events, {res['alerts']} alerts "
        f"over {res['days']} days, {res['stuck_alerts']} stuck alerts"
    )
    res["us_per_reading"] = round(time_model(events[:20_000]), 2)
    if not args.no_sim:
        res["sim"] = simulated(args.seeds, args.scale, args.sim_hours, log)
    keys = (
        "event_f1",
        "event_recall",
        "alert_precision",
        "median_delay_min",
        "false_alerts_per_day",
        "us_per_reading",
    )
    out = {k: res[k] for k in keys}
    out["gecco"] = {k: v for k, v in res.items() if k not in keys and k != "sim"}
    if "sim" in res:
        out["sim"] = res["sim"]
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
