"""Evaluate the air-quality models on the simulator's labelled air scenarios.

For every scenario x seed: simulate, run every ``air`` reading through :class:`AirModel`
(timed alone, with its ``on_watermark`` once a minute of event time as the flow's ticks do),
feed its signals to the real alert engine (``models.alert_engine.AlertEngine``
with its default per-rule policies: quiet-period auto-resolve, dedup, inhibition), advance the
engine's event time once a minute, and score the alerts against the labels with
``simulators.scoring.score`` (default tolerance: 5 minutes either side of a label).

Counts are summed over all runs before precision / recall / F1 are computed (micro average).
``false_alerts_per_station_day`` = alerts of any air rule matching no label, over all runs,
divided by station-days over all runs; the ``clean`` scenario's own figure is printed too.
``us_per_reading`` = CPU time spent in ``AirModel.update`` per reading (the engine is not
counted; process CPU time, since wall time on a shared machine measures the other tenants).

The simulator computes its exceedance labels with HJ 633-2012, so ``--table`` defaults to that;
``--table auto`` uses the table in force at the event time (HJ 633-2026 for the default
November 2026 start) and shows how many more exceedances the stricter table reports.

    .venv/bin/python benchmarks/eval_air.py --seeds 21,22,23
    .venv/bin/python benchmarks/eval_air.py --seeds 21 --scenarios clean --scale 0.05
    .venv/bin/python benchmarks/eval_air.py --seeds 21-23 --set air_stations=real   # harder streams

``--set KNOB=VALUE`` overrides a scenario knob in every scenario (``air_stations=real``: hourly
national stations, low-cost sensors, missing hours, ...; ``air_shared_flat=1``).

Last line: ``{"f1": {rule: ...}, "false_alerts_per_station_day": ..., "us_per_reading": ...}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from typing import Any

from citywatch.alerts import Alert, Observation, Signal
from citywatch.cli_options import parse_seeds
from citywatch.events import Air
from models.air.model import AirConfig, AirModel
from models.alert_engine import AlertEngine
from simulators import simulate
from simulators.scoring import score

RULES = ("air.spike", "air.stuck", "air.range", "air.episode", "air.drift", "air.exceedance")
MINUTE_MS = 60_000


def run_one(
    scenario: str, seed: int, scale: float, cfg: AirConfig, knobs: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[Alert], float, int, float]:
    """(scores by rule, alerts, model seconds, readings, station-days) of one run."""
    sim = simulate(scenario, seed=seed, scale=scale, **(knobs or {}))
    events = [ev for ev in sim.events() if type(ev) is Air]
    model = AirModel(sim.registry, cfg)
    state = model.new_state("air")
    update = model.update
    batches: list[tuple[int, list[Signal | Observation]]] = []
    # CPU time of this process: on a shared machine wall time mostly measures the neighbours
    t0 = time.process_time()
    tick = sim.start_ms
    for ev in events:
        if ev.ts >= tick:  # the flow's one-minute ticks: on_watermark before the next events
            sigs = model.on_watermark(state, tick)
            if sigs:
                batches.append((tick, sigs))
            tick = ev.ts - ev.ts % MINUTE_MS + MINUTE_MS
        sigs = update(state, ev)
        if sigs:
            batches.append((ev.ts, sigs))
    sigs = model.on_watermark(state, sim.end_ms + 5 * MINUTE_MS)
    if sigs:
        batches.append((sim.end_ms, sigs))
    model_s = time.process_time() - t0

    engine = AlertEngine()
    alerts: list[Alert] = []
    next_tick = sim.start_ms
    # interleave signals with one-minute watermarks, as the flow's ticks do
    for ts, sigs in [*batches, (sim.end_ms, [])]:
        while next_tick <= ts:
            alerts += engine.advance(next_tick)
            next_tick += MINUTE_MS
        # observations (the hourly AQI) go to the sink, not to the engine
        alerts += engine.on_signals([s for s in sigs if type(s) is Signal])
    alerts += engine.advance(sim.end_ms + 24 * 3_600_000)

    days = (sim.end_ms - sim.start_ms) / 86_400_000
    n_st = len(sim.registry.stations)
    n_districts = len({s.district for s in sim.registry.stations.values()})
    entity_days = {r: n_st * days for r in RULES}
    entity_days["air.episode"] = n_districts * days
    report = score(alerts, sim.labels, rules=RULES, entity_days=entity_days)
    return report.rules, alerts, model_s, len(events), n_st * days


def _value(text: str) -> Any:
    """A knob value from the command line: int, float, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=parse_seeds, default=[21, 22, 23], help="e.g. 21-23 or 21,23")
    ap.add_argument("--scale", type=float, default=0.01, help="city scale (0.01 = 20 stations)")
    ap.add_argument(
        "--scenarios",
        default="air-faults,air-episode,clean",
        help="comma-separated scenario names (default air-faults,air-episode,clean)",
    )
    ap.add_argument(
        "--table", default="HJ 633-2012", help="AQI table: 'auto', 'HJ 633-2012', 'HJ 633-2026'"
    )
    ap.add_argument("--partition", choices=("city", "district"), default="city")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KNOB=VALUE", help="scenario knob override"
    )
    args = ap.parse_args(argv)
    knobs: dict[str, Any] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        knobs[name.strip()] = _value(value.strip())
    seeds = args.seeds
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    cfg = AirConfig(table=args.table, partition=args.partition)

    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    delays: dict[str, list[int]] = defaultdict(list)
    false_total = 0
    station_days = 0.0
    clean_false = 0
    clean_days = 0.0
    model_s = 0.0
    readings = 0
    for scenario in scenarios:
        for seed in seeds:
            rules, _alerts, secs, n, sd = run_one(scenario, seed, args.scale, cfg, knobs)
            model_s += secs
            readings += n
            station_days += sd
            run_false = 0
            for r in RULES:
                rs = rules[r]
                for k in ("labels", "alerts", "detected", "true_alerts", "false_alerts"):
                    sums[r][k] += getattr(rs, k)
                delays[r] += list(rs.delays_ms)
                run_false += rs.false_alerts
                if rs.missed:
                    print(f"  {scenario}/{seed} {r}: missed {', '.join(rs.missed)}")
                if rs.false_alerts:
                    print(f"  {scenario}/{seed} {r}: {rs.false_alerts} false alert(s)")
            false_total += run_false
            if scenario == "clean":
                clean_false += run_false
                clean_days += sd
            print(f"{scenario}/{seed}: {n} readings, {run_false} false alerts", flush=True)

    f1: dict[str, float] = {}
    print(f"\n{'rule':16s} {'labels':>6s} {'alerts':>6s} {'P':>5s} {'R':>5s} {'F1':>5s} delay_min")
    for r in RULES:
        s = sums[r]
        p = s["true_alerts"] / s["alerts"] if s["alerts"] else 1.0
        rc = s["detected"] / s["labels"] if s["labels"] else 1.0
        f = 2 * p * rc / (p + rc) if p + rc > 0 else 0.0
        f1[r] = round(f, 3)
        d = f"{statistics.median(delays[r]) / MINUTE_MS:.1f}" if delays[r] else "-"
        print(f"{r:16s} {s['labels']:6d} {s['alerts']:6d} {p:5.2f} {rc:5.2f} {f:5.2f} {d}")
    per_day = false_total / station_days if station_days else 0.0
    us = model_s / readings * 1e6 if readings else 0.0
    if clean_days:
        print(f"clean scenario: {clean_false / clean_days:.3f} false alerts per station-day")
    print(
        f"all runs: {false_total} false alerts over {station_days:.0f} station-days; "
        f"{readings} readings, {us:.2f} us per reading (AirModel.update only)"
    )
    print(
        json.dumps(
            {
                "f1": f1,
                "false_alerts_per_station_day": round(per_day, 4),
                "us_per_reading": round(us, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
