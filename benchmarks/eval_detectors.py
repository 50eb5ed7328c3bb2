"""Score the generic detectors (models/detect) on every real series, with injected anomalies.

    python benchmarks/eval_detectors.py [--seeds 101-103] [--data DIR] [--max-points N]
        [--datasets air-cities,water,...] [--slot N] [--combine RULE]

Series (read from ``--data``, else ``$CITYWATCH_DATA``, else a ``shared/data`` folder beside
the repository): the hourly
PM2.5 of the four Chinese cities (11 stations; Guangzhou's duplicated column left out), the six
Aberdeen sensors' PM10 and PM2.5 (~2.5 min, irregular), the nine GECCO water channels (1 min)
and the steel plant's energy use and two reactive powers (15 min). ``--max-points`` keeps the
first N readings of each series (0: all).

For every seed, anomalies are injected into a copy of each series, one every ``--slot``
readings (600) after a lead-in (the first ``LEAD`` readings, at least three days), the kinds
in a seeded random order. Each is sized against what the series itself does over the
anomaly's span: ``s_h`` is the largest 95th percentile of ``|x[t + lag] - x[t]|`` over lags
1, 2, 4, ... up to ``h`` readings (at least the series' quantum), and injected values are put
on the series' grid, as a sensor would report them:

=========  ================================================================  =============
kind       injected                                                          window scored
=========  ================================================================  =============
spike      one reading +-U(1.5, 3) s_1                                       that reading
level      +-U(1.5, 3) s_48 for 288 readings                                 first 48
variance   N(0, (U(1, 2) s_1)^2) noise added for 96 readings                 the 96
stuck      the reading before repeated for 96 readings (gaps filled too)     the 96
trend      a ramp to +-U(1.5, 3) s_192 over 192 readings, held 96, removed   the ramp
=========  ================================================================  =============

No anomaly is placed where GECCO labels a real event, nor where fewer than half of its
readings exist (a gap in the source: nothing there to find). An injected window counts as
detected at threshold ``h`` when its highest score reaches ``h``. Negatives are windows of the
same length of the same run away from every anomaly (from one reading before it starts to
``GUARD`` readings after it ends; GECCO event readings left out; at least half of their
readings present), so ROC AUC is P(a window with an anomaly scores above a clean one), and F1
is the best over thresholds with one anomaly per slot (each kind one per five slots).
The multivariate detector (``mahalanobis``) runs on each station's channels together
(a city's three stations, an Aberdeen sensor's PM10 and PM2.5, the nine water channels, the
plant's three meters), with each anomaly injected into one channel at random.

``fpr_at_default``: share of the clean readings (after warm-up, GECCO events left out)
scoring at or above the default threshold 0.999 (the calibrated meaning: 1 in 1,000).
``us_per_update``: process CPU microseconds per ``update`` (score then learn one reading; for
``mahalanobis`` one reading of all nine water channels), best of three passes over the same
real readings, so the figures compare within one run on a shared, noisy machine.

Density: at one anomaly per 600 readings a quarter of every injected series is inside an
anomaly (levels and trends last 288 readings). Every detector here calibrates itself on the
series it watches, so a fault that recurs that often partly becomes its normal; ``--slot
1500`` shows the same detectors on sparser faults (docs/models/detectors.md).

Spread: the per-dataset AUCs go to stderr and into ``by_dataset`` of the JSON; the top-level
figures pool every series. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_series import Series, data_dir, load_all
from citywatch.cli_options import parse_seeds
from models.detect import Ensemble, LevelShift, Mahalanobis
from models.detect.ensemble import COMBINE_RULES, Combine, default_members

F64 = npt.NDArray[np.float64]
KINDS = ("spike", "level", "variance", "stuck", "trend")
#: readings of an anomaly, and of its scored window
DURATION = {"spike": 1, "level": 288, "variance": 96, "stuck": 96, "trend": 288}
WINDOW = {"spike": 1, "level": 48, "variance": 96, "stuck": 96, "trend": 192}
SLOT = 600
#: readings after an anomaly ends before a window counts as clean again (detectors settle)
GUARD = 150
LEAD = 1000
THRESHOLD = 0.999
UNIVARIATE = ("robust_z", "level_shift", "variance_shift", "seasonal", "flat_line", "trend")
#: a window counts (as an anomaly or as a clean window) when at least this share of it exists
MIN_PRESENT = 0.5


# -- injection --------------------------------------------------------------------------------


@dataclass(slots=True)
class Injected:
    kind: str
    start: int
    window: int
    channel: int = 0


@dataclass(slots=True)
class Spread:
    """How much the series naturally changes over 1, 48 and 192 readings (see the docstring)."""

    s1: float
    s48: float
    s192: float
    #: the series' grid (0: continuous); injected values are put on it, as a sensor would
    q: float


def quantum(xf: F64) -> float:
    """The series' grid: the largest step of which every common step is a multiple (0: none)."""
    d = np.abs(np.diff(xf))
    d = d[d > 1e-7 * np.maximum(np.abs(xf[1:]), 1e-300)]
    if len(d) == 0:
        return 0.0
    steps, counts = np.unique(np.round(d, 9), return_counts=True)
    common = steps[counts >= 0.001 * len(d)]
    if len(common) == 0:
        return 0.0
    for k in range(1, 11):
        q = float(common.min()) / k
        frac = np.abs(common / q - np.round(common / q))
        if float(frac.max()) < 1e-3:
            return q
    return 0.0


def natural_change(x: F64, horizon: int) -> float:
    """The largest natural change within ``horizon`` readings: the highest, over lags 1, 2, 4,
    ... up to ``horizon``, of the 95th percentile of ``|x[t + lag] - x[t]|``."""
    best = 0.0
    lag = 1
    while True:
        d = np.abs(x[lag:] - x[:-lag])
        d = d[np.isfinite(d)]
        if len(d):
            best = max(best, float(np.percentile(d, 95)))
        if lag >= horizon:
            return best
        lag = min(2 * lag, horizon)


def spread(x: F64) -> Spread:
    xf = x[np.isfinite(x)]
    q = quantum(xf)
    s1, s48, s192 = (max(natural_change(x, h), q, 1e-9) for h in (1, 48, 192))
    return Spread(s1, s48, s192, q)


def lead_in(t: npt.NDArray[np.int64]) -> int:
    """Readings before the first anomaly: LEAD, and at least three days of event time."""
    three_days = int(np.searchsorted(t, t[0] + 3 * 86_400_000))
    return max(LEAD, three_days)


def plan(
    n: int,
    t: npt.NDArray[np.int64],
    label: npt.NDArray[np.bool_] | None,
    present: npt.NDArray[np.bool_],
    rng: np.random.Generator,
    slot: int = SLOT,
) -> list[Injected]:
    """Where each anomaly goes: one per ``slot`` readings, none on a labelled event or in a
    gap of the source (fewer than half of the anomaly's readings present)."""
    out: list[Injected] = []
    start = lead_in(t)
    order: list[str] = []
    while start + slot <= n:
        if not order:
            order = list(rng.permutation(KINDS))
        kind = order.pop()
        s = start + int(rng.integers(0, 50))
        clear = label is None or not label[max(0, s - 50) : s + DURATION[kind] + 100].any()
        if clear and present[s : s + DURATION[kind]].mean() >= MIN_PRESENT:
            out.append(Injected(kind, s, WINDOW[kind]))
        start += slot
    return out


def inject(x: F64, inj: list[Injected], sp: Spread, rng: np.random.Generator) -> F64:
    y = x.copy()
    for a in inj:
        s, d = a.start, DURATION[a.kind]
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if a.kind == "spike":
            # on the first present reading from s
            while s < len(y) - 1 and not np.isfinite(y[s]):
                s += 1
            a.start = s
            y[s] += sign * rng.uniform(1.5, 3.0) * sp.s1
        elif a.kind == "level":
            y[s : s + d] += sign * rng.uniform(1.5, 3.0) * sp.s48
        elif a.kind == "variance":
            y[s : s + d] += rng.normal(0.0, rng.uniform(1.0, 2.0) * sp.s1, size=len(y[s : s + d]))
        elif a.kind == "stuck":
            before = y[:s][np.isfinite(y[:s])]
            y[s : s + d] = before[-1] if len(before) else 0.0
        elif a.kind == "trend":
            ramp = WINDOW["trend"]
            delta = sign * rng.uniform(1.5, 3.0) * sp.s192
            seg = y[s : s + d]
            k = np.arange(len(seg), dtype=np.float64)
            seg += delta * np.minimum(k / ramp, 1.0)
        if sp.q > 0.0 and a.kind != "stuck":
            seg = y[s : s + d]
            seg[:] = np.round(seg / sp.q) * sp.q
    return y


# -- running the detectors --------------------------------------------------------------------


def run_univariate(s: Series, x: F64, combine: Combine = "hmp_fisher") -> dict[str, F64]:
    """Scores of the ensemble and of each of its members (one pass: the ensemble's), and of
    the univariate detectors outside it (each alone)."""
    e = Ensemble(combine=combine)
    n = len(x)
    out = {name: np.zeros(n) for name in (*UNIVARIATE, "ensemble")}
    cols = [out[name] for name in e.names]
    ens = out["ensemble"]
    ts = s.t.tolist()
    xs = x.tolist()
    upd = e.update_all
    for i in range(n):
        p, ps = upd(xs[i], ts[i])
        ens[i] = 1.0 - p
        for c, q in zip(cols, ps, strict=True):
            c[i] = 1.0 - q
    for name in UNIVARIATE:
        if name not in e.names:
            d = member(name)
            out[name] = 1.0 - np.array([d.update_p(v, tt) for v, tt in zip(xs, ts, strict=True)])
    return out


def run_multivariate(t: npt.NDArray[np.int64], xs: F64) -> F64:
    """Scores of the multivariate detector over a (readings, channels) array."""
    m = Mahalanobis(xs.shape[1])
    rows = xs.tolist()
    ts = t.tolist()
    return np.array([m.update(r, tt) for r, tt in zip(rows, ts, strict=True)])


# -- metrics ----------------------------------------------------------------------------------


def window_max(scores: F64, starts: Sequence[int], w: int) -> list[float]:
    return [float(scores[s : s + w].max()) for s in starts if s + w <= len(scores)]


def negatives(
    scores: F64,
    begin: int,
    w: int,
    exclude: npt.NDArray[np.bool_] | None,
    present: npt.NDArray[np.bool_] | None = None,
) -> list[float]:
    """Highest score of each clean window of ``w`` readings (not excluded, at least
    ``MIN_PRESENT`` of it present)."""
    out = []
    n = len(scores)
    for s in range(begin, n - w + 1, w):
        if exclude is not None and exclude[s : s + w].any():
            continue
        if present is not None and present[s : s + w].mean() < MIN_PRESENT:
            continue
        out.append(float(scores[s : s + w].max()))
    return out


def auc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    if not pos or not neg:
        return None
    p = np.asarray(pos)
    q = np.sort(np.asarray(neg))
    below = np.searchsorted(q, p, side="left")
    equal = np.searchsorted(q, p, side="right") - below
    return float((below + 0.5 * equal).sum() / (len(p) * len(q)))


def best_f1(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    if not pos:
        return None
    p = np.sort(np.asarray(pos))[::-1]
    q = np.sort(np.asarray(neg))
    best = 0.0
    for h in np.unique(p):
        tp = int((p >= h).sum())
        fp = len(q) - int(np.searchsorted(q, h, side="left"))
        f1 = 2 * tp / (2 * tp + fp + (len(p) - tp))
        best = max(best, f1)
    return best


@dataclass(slots=True)
class Pool:
    pos: dict[tuple[str, str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    neg: dict[tuple[str, str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    fp: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    clean_n: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))


def add_clean(pool: Pool, dataset: str, scores: dict[str, F64], begin: int, label: Any) -> None:
    """False positives at the default threshold on the clean series."""
    keep = np.ones(len(next(iter(scores.values()))), dtype=bool)
    keep[:begin] = False
    if label is not None:
        keep &= ~label
    for det, sc in scores.items():
        pool.fp[(dataset, det)] += int((sc[keep] >= THRESHOLD).sum())
        pool.clean_n[(dataset, det)] += int(keep.sum())


def add_injected(
    pool: Pool,
    dataset: str,
    scores: dict[str, F64],
    inj: list[Injected],
    begin: int,
    label: npt.NDArray[np.bool_] | None,
    present: npt.NDArray[np.bool_],
) -> None:
    """Positive windows, and negative windows from the same run away from every anomaly."""
    n = len(next(iter(scores.values())))
    away = np.zeros(n, dtype=bool) if label is None else label.copy()
    for a in inj:
        away[max(0, a.start - 1) : a.start + DURATION[a.kind] + GUARD] = True
    for det, sc in scores.items():
        for a in inj:
            pool.pos[(dataset, det, a.kind)] += window_max(sc, [a.start], a.window)
        for kind in KINDS:
            pool.neg[(dataset, det, kind)] += negatives(sc, begin, WINDOW[kind], away, present)


# -- timing -----------------------------------------------------------------------------------


def member(name: str) -> Any:
    """A fresh univariate detector: an ensemble member configured as the ensemble configures
    it, or a library detector outside the ensemble with its defaults."""
    members = default_members()
    if name in members:
        return members[name]
    return {"level_shift": LevelShift}[name]()


def time_detectors(series: list[Series], points: int = 20_000) -> dict[str, float]:
    """µs per update of each detector on the first series of each dataset (best of 3): the
    ensemble's members as the ensemble configures them, then the ensemble itself."""
    firsts: dict[str, Series] = {}
    for s in series:
        firsts.setdefault(s.dataset, s)
    sample = [s.head(points // max(1, len(firsts))) for s in firsts.values()]
    makers: dict[str, Callable[[], Any]] = {name: partial(member, name) for name in UNIVARIATE}
    makers["ensemble"] = Ensemble
    out: dict[str, float] = {}
    total = sum(len(s) for s in sample)
    for name, make in makers.items():
        best = math.inf
        for _ in range(3):
            dets = [make() for _ in sample]
            t0 = time.process_time()
            for d, s in zip(dets, sample, strict=True):
                upd = d.update
                for x, t in zip(s.x.tolist(), s.t.tolist(), strict=True):
                    upd(x, t)
            best = min(best, time.process_time() - t0)
        out[name] = best / total * 1e6
    groups = multivariate_groups(series)
    g = groups[0]
    rows = g[1][: min(points, len(g[1]))]
    best = math.inf
    for _ in range(3):
        m = Mahalanobis(rows.shape[1])
        lst = rows.tolist()
        t0 = time.process_time()
        for r in lst:
            m.update(r)
        best = min(best, time.process_time() - t0)
    out["mahalanobis"] = best / len(rows) * 1e6
    return out


def multivariate_groups(series: list[Series]) -> list[tuple[str, F64, Series]]:
    """(dataset, readings x channels, first channel's series) per station group."""
    groups: dict[tuple[str, str], list[Series]] = defaultdict(list)
    for s in series:
        if s.dataset == "air-cities":
            key = s.name.split("/")[0]
        elif s.dataset == "air-aberdeen":
            key = s.name.split("/")[0]
        else:
            key = s.dataset
        groups[(s.dataset, key)].append(s)
    out = []
    for (dataset, _), members in groups.items():
        if len(members) < 2:
            continue
        n = min(len(m) for m in members)
        xs = np.stack([m.x[:n] for m in members], axis=1)
        out.append((dataset, xs, members[0].head(n)))
    return out


# -- main -------------------------------------------------------------------------------------


def evaluate(
    series: list[Series],
    seeds: list[int],
    log: Callable[[str], None],
    slot: int = SLOT,
    combine: Combine = "hmp_fisher",
) -> Pool:
    pool = Pool()
    for s in series:
        t0 = time.perf_counter()
        begin = lead_in(s.t)
        sp = spread(s.x)
        present = np.isfinite(s.x)
        clean = run_univariate(s, s.x, combine)
        add_clean(pool, s.dataset, clean, begin, s.label)
        for seed in seeds:
            rng = np.random.default_rng([seed, len(s), sum(map(ord, s.name))])
            inj = plan(len(s), s.t, s.label, present, rng, slot)
            y = inject(s.x, inj, sp, rng)
            scores = run_univariate(s, y, combine)
            add_injected(pool, s.dataset, scores, inj, begin, s.label, present)
        log(f"  {s.dataset}/{s.name}: {len(s)} readings, {time.perf_counter() - t0:.1f} s")
    for dataset, xs, first in multivariate_groups(series):
        begin = lead_in(first.t)
        clean_m = {"mahalanobis": run_multivariate(first.t, xs)}
        add_clean(pool, dataset, clean_m, begin, first.label)
        sps = [spread(xs[:, j]) for j in range(xs.shape[1])]
        present_all = np.asarray(np.isfinite(xs).all(axis=1), dtype=np.bool_)
        for seed in seeds:
            rng = np.random.default_rng([seed, xs.shape[0], xs.shape[1], 7])
            inj = plan(xs.shape[0], first.t, first.label, present_all, rng, slot)
            ys = xs.copy()
            for a in inj:
                a.channel = int(rng.integers(0, xs.shape[1]))
                ys[:, a.channel] = inject(ys[:, a.channel], [a], sps[a.channel], rng)
            scores = {"mahalanobis": run_multivariate(first.t, ys)}
            add_injected(pool, dataset, scores, inj, begin, first.label, present_all)
        log(f"  {dataset} group of {xs.shape[1]} channels: {xs.shape[0]} readings")
    return pool


def summarize(pool: Pool) -> dict[str, Any]:
    datasets = sorted({k[0] for k in pool.pos} | {k[0] for k in pool.neg})
    dets = sorted({k[1] for k in pool.neg})
    res: dict[str, Any] = {"auc": {}, "f1": {}, "fpr_at_default": {}, "by_dataset": {}}
    for det in dets:
        res["auc"][det] = {}
        res["f1"][det] = {}
        for kind in KINDS:
            pos = [v for d in datasets for v in pool.pos.get((d, det, kind), [])]
            neg = [v for d in datasets for v in pool.neg.get((d, det, kind), [])]
            a, f = auc(pos, neg), best_f1(pos, neg)
            res["auc"][det][kind] = None if a is None else round(a, 4)
            res["f1"][det][kind] = None if f is None else round(f, 4)
        fp = sum(pool.fp.get((d, det), 0) for d in datasets)
        n = sum(pool.clean_n.get((d, det), 0) for d in datasets)
        res["fpr_at_default"][det] = round(fp / n, 5) if n else None
    for d in datasets:
        res["by_dataset"][d] = {}
        for det in dets:
            row: dict[str, Any] = {}
            for kind in KINDS:
                a = auc(pool.pos.get((d, det, kind), []), pool.neg.get((d, det, kind), []))
                row[kind] = None if a is None else round(a, 3)
            n = pool.clean_n.get((d, det), 0)
            row["fpr"] = round(pool.fp.get((d, det), 0) / n, 5) if n else None
            res["by_dataset"][d][det] = row
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--seeds", type=parse_seeds, default=[101, 102, 103], help="e.g. 101-103")
    ap.add_argument(
        "--data",
        default=None,
        help="data folder (default: $CITYWATCH_DATA, else shared/data beside the repository)",
    )
    ap.add_argument(
        "--max-points", type=int, default=20_000, help="first N readings per series (0: all)"
    )
    ap.add_argument("--datasets", default="", help="comma-separated subset (default all)")
    ap.add_argument(
        "--slot", type=int, default=SLOT, help=f"readings per injected anomaly (default {SLOT})"
    )
    ap.add_argument(
        "--combine",
        choices=COMBINE_RULES,
        default="hmp_fisher",
        help="the ensemble's rule (default hmp_fisher)",
    )
    args = ap.parse_args(argv)
    if args.slot < max(DURATION.values()) + GUARD:
        ap.error(f"--slot: must be at least {max(DURATION.values()) + GUARD}, got {args.slot}")
    try:
        series = load_all(data_dir(args.data))
    except FileNotFoundError as exc:
        print(f"eval_detectors: error: {exc}", file=sys.stderr)
        return 2
    if args.datasets:
        keep = set(args.datasets.split(","))
        series = [s for s in series if s.dataset in keep]
    if args.max_points:
        series = [s.head(args.max_points) for s in series]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    pool = evaluate(series, args.seeds, log, args.slot, args.combine)
    res = summarize(pool)
    res["us_per_update"] = {k: round(v, 2) for k, v in time_detectors(series).items()}
    log(f"evaluated in {time.perf_counter() - t0:.0f} s")
    for d, rows in res["by_dataset"].items():
        log(f"== {d}")
        for det, row in rows.items():
            cells = " ".join(f"{k}={v}" for k, v in row.items())
            log(f"  {det:12s} {cells}")
    out = {k: res[k] for k in ("auc", "f1", "us_per_update", "fpr_at_default", "by_dataset")}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
