"""How many alerts the alert engine makes of real conditions, at each source's cadence.

    .venv/bin/python benchmarks/engine_cadence.py [--data DIR] [--quantile 0.9]
        [--missed 1.5,2.5,3.5] [--skip-water]

Each real series (``benchmarks/real_series.py``: the four cities' hourly PM2.5, the Aberdeen
sensors' PM10/PM2.5 every ~2.5 min, the GECCO water channels every minute, the steel plant
every 15 min) is turned into one condition: "the value is above the series' own ``--quantile``"
(the same rule everywhere: nothing tuned to a dataset). Every valid reading is one signal
through the real :class:`models.alert_engine.AlertEngine` (default ``RulePolicy``: 30 quiet
minutes), one engine per series, event time advanced to each reading, in two ways a model may
speak:

* ``clears``: an active signal above, an explicit clear (``active=False``) at or below;
* ``active_only``: only the active signals (the engine must tell the end by the silence).

A **run** is a maximal stretch of consecutive readings above the quantile, broken by a reading
at or below it or by a missing one (a step longer than 1.5 of the series' median step). The
figures, per dataset and pooled:

* ``runs``; ``alerts``: alert ids with the source's interval known (``Signal.interval_ms`` = the
  series' median step), the engine's default ``missed_intervals`` (2.5) and reopen window;
  ``alerts_before``: the same signals as the engine took them until 2026-12-02: no interval
  (a fixed 30-minute quiet period) and no reopening (``reopen_ms=0``);
* ``alerts_per_run`` (``alerts / runs``; below 1 where a run returns within the reopen window
  after a short dip or gap and reopens the same alert), ``versions_per_alert``, and the same
  for ``active_only`` (``active_only_alerts_per_run``, ``..._before``);
* ``missed_spread``: ``alerts / runs`` of ``active_only`` for each ``--missed`` value.

Last line: ``{"datasets": {...}, "alerts_per_run": {"min", "median", "max"},
"alerts_per_run_before": {...}, "active_only_alerts_per_run": {...},
"active_only_alerts_per_run_before": {...}, "missed_spread": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_series import (
    Series,
    data_dir,
    load_aberdeen,
    load_five_cities,
    load_steel,
    load_water,
)
from citywatch.alerts import Alert, Level, Signal, Subject
from models.alert_engine import AlertEngine, RulePolicy

RULE = "cadence.high"


def median_step(t: np.ndarray[Any, Any]) -> int:
    steps = np.diff(t)
    steps = steps[steps > 0]
    return int(np.median(steps)) if len(steps) else 0


def runs_of(s: Series, thr: float, step: int) -> int:
    """Stretches of consecutive readings above ``thr`` (a missing reading breaks one)."""
    runs, inside, last_t = 0, False, None
    for ts, x in zip(s.t.tolist(), s.x.tolist(), strict=True):
        if x != x:  # NaN: a missing reading
            inside = False
            continue
        if last_t is not None and ts - last_t > 1.5 * step:
            inside = False
        last_t = ts
        if x > thr:
            runs += not inside
            inside = True
        else:
            inside = False
    return runs


def play(
    s: Series, thr: float, *, interval: int | None, clears: bool, policy: RulePolicy
) -> list[Alert]:
    eng = AlertEngine({RULE: policy})
    subject = Subject("series", s.name)
    out: list[Alert] = []
    for ts, x in zip(s.t.tolist(), s.x.tolist(), strict=True):
        if x != x:
            continue
        above = x > thr
        if above or clears:
            sig = Signal(RULE, subject, ts, active=above, level=Level.YELLOW, interval_ms=interval)
            out += eng.on_signal(sig)
        out += eng.advance(ts)
    out += eng.advance(int(s.t[-1]) + 10**11)
    return out


def ids(alerts: Iterable[Alert]) -> int:
    return len({a.id for a in alerts})


def spread(xs: list[float]) -> dict[str, float]:
    return {
        "min": round(min(xs), 3),
        "median": round(statistics.median(xs), 3),
        "max": round(max(xs), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="the data folder (else $CITYWATCH_DATA, else shared/data)")
    ap.add_argument("--quantile", type=float, default=0.9, help="condition: above it [0.9]")
    ap.add_argument("--missed", default="1.5,2.5,3.5", help="missed_intervals to compare")
    ap.add_argument("--skip-water", action="store_true", help="leave out GECCO (1.2M readings)")
    args = ap.parse_args(argv)
    root = data_dir(args.data)
    if not (0.0 < args.quantile < 1.0):
        print("engine_cadence: --quantile must be in (0, 1)", file=sys.stderr)
        return 2
    try:
        missed = [float(x) for x in args.missed.split(",") if x.strip()]
        if not missed or any(m <= 0 for m in missed):
            raise ValueError(args.missed)
    except ValueError:
        print(
            f"engine_cadence: --missed: expected numbers > 0, got {args.missed!r}", file=sys.stderr
        )
        return 2
    try:
        series = load_five_cities(root) + load_aberdeen(root) + load_steel(root)
        if not args.skip_water:
            series += load_water(root)
    except FileNotFoundError as exc:
        print(f"engine_cadence: {exc}", file=sys.stderr)
        return 1
    if not series:
        print(f"engine_cadence: no series under {root}", file=sys.stderr)
        return 1

    t0 = time.perf_counter()
    pooled: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for s in series:
        valid = s.x[~np.isnan(s.x)]
        if len(valid) < 10:
            continue
        thr = float(np.quantile(valid, args.quantile))
        step = median_step(s.t)
        d = pooled[s.dataset]
        d["series"] += 1
        d["interval_ms"] = step
        d["runs"] += runs_of(s, thr, step)
        base, before = RulePolicy(), RulePolicy(reopen_ms=0)
        new = play(s, thr, interval=step, clears=True, policy=base)
        d["alerts"] += ids(new)
        d["versions"] += len(new)
        d["alerts_before"] += ids(play(s, thr, interval=None, clears=True, policy=before))
        d["active_only_alerts"] += ids(play(s, thr, interval=step, clears=False, policy=base))
        d["active_only_before"] += ids(play(s, thr, interval=None, clears=False, policy=before))
        for m in missed:
            pol = RulePolicy(missed_intervals=m)
            d[f"active_only_missed_{m:g}"] += ids(
                play(s, thr, interval=step, clears=False, policy=pol)
            )
    wall = time.perf_counter() - t0

    datasets: dict[str, Any] = {}
    for name, d in pooled.items():
        runs = d["runs"] or 1
        datasets[name] = {
            "series": int(d["series"]),
            "interval_ms": int(d["interval_ms"]),
            "runs": int(d["runs"]),
            "alerts": int(d["alerts"]),
            "alerts_before": int(d["alerts_before"]),
            "alerts_per_run": round(d["alerts"] / runs, 3),
            "alerts_per_run_before": round(d["alerts_before"] / runs, 3),
            "versions_per_alert": round(d["versions"] / max(d["alerts"], 1), 2),
            "active_only_alerts_per_run": round(d["active_only_alerts"] / runs, 3),
            "active_only_alerts_per_run_before": round(d["active_only_before"] / runs, 3),
            "missed_spread": {
                f"{m:g}": round(d[f"active_only_missed_{m:g}"] / runs, 3) for m in missed
            },
        }
    print(
        f"{'dataset':14} {'step':>8} {'runs':>7} {'alerts':>7} {'before':>7} "
        f"{'per run':>8} {'active-only per run':>20} {'before':>7}"
    )
    for name, r in datasets.items():
        print(
            f"{name:14} {r['interval_ms'] / 1000:>7.0f}s {r['runs']:>7} {r['alerts']:>7} "
            f"{r['alerts_before']:>7} {r['alerts_per_run']:>8} "
            f"{r['active_only_alerts_per_run']:>20} {r['active_only_alerts_per_run_before']:>7}"
        )
    print(f"({len(series)} series, quantile {args.quantile}, {wall:.1f} s)")
    result = {
        "datasets": datasets,
        "alerts_per_run": spread([r["alerts_per_run"] for r in datasets.values()]),
        **{
            key: spread([r[key] for r in datasets.values()])
            for key in (
                "alerts_per_run_before",
                "active_only_alerts_per_run",
                "active_only_alerts_per_run_before",
            )
        },
        "missed_spread": {
            f"{m:g}": spread([r["missed_spread"][f"{m:g}"] for r in datasets.values()])
            for m in missed
        },
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
