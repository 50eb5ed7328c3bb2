"""Fit the hotline pair model's starting weights and threshold on tuning families.

    .venv/bin/python benchmarks/fit_hotline.py --seeds 1-5

Runs ``HotlineModel`` over the ``hotline-month`` scenario of each seed (tuning seeds, below
``simulators.complaints.FIRST_EVAL_SEED``, never draw the held-out families), and after the
first ``--warmup-days`` (the model runs as it would in service: document frequencies and
routing have settled) collects every candidate pair the clusterer compares with its
features (``dedup.pair_features``) and whether the simulator's truth says it is a
duplicate, then fits ``pairs.PairModel``'s logistic
regression with its sign constraints (projected gradient descent on the mean log loss, a
little L2; unweighted, so its probabilities are calibrated) and picks the threshold that
maximises pairwise F1 over those pairs. Prints the weights as Python to paste into
``models/hotline/pairs.py`` and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from citywatch.cli_options import parse_seeds
from citywatch.events import Hotline
from models.hotline.dedup import pair_features
from models.hotline.model import HotlineModel
from models.hotline.pairs import FEATURES, SIGNS, PairModel
from simulators import simulate


def truth_pairs(sim: object) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for lab in sim.labels:  # type: ignore[attr-defined]
        if lab.rule == "hotline.duplicate":
            ids = sorted(str(t) for t in lab.params.get("tickets", ()))
            out.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1 :])
    return out


def collect(
    seed: int, scale: float, days: int, warmup_days: float
) -> tuple[list[list[float]], list[int]]:
    sim = simulate(
        "hotline-month",
        seed=seed,
        scale=scale,
        duration_s=days * 86_400,
        anomaly_scale=days / 30,
    )
    truth = truth_pairs(sim)
    model = HotlineModel(sim.registry)
    st = model.new_state("city")
    xs: list[list[float]] = []
    ys: list[int] = []
    start = sim.start_ms + round(warmup_days * 86_400_000)
    for ev in sim.events():
        if not isinstance(ev, Hotline):
            continue
        if ev.ts >= start and not ev.is_decision and st.dedup.get(ev.ticket) is None:
            f, _ = model.ticket_features(st, ev, learn_df=False)
            for c in st.dedup.candidates(f):
                if f.category and c.category and f.category != c.category:
                    continue  # never compared (dedup.py)
                key = (min(f.id, c.id), max(f.id, c.id))
                xs.append(PairModel.vector(pair_features(f, c)))
                ys.append(int(key in truth))
        model.update(st, ev)
    return xs, ys


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-4, steps: int = 6000) -> np.ndarray:
    """Sign-constrained logistic regression on the plain log loss (so probabilities are
    calibrated to the pairs' real balance); returns [weights..., bias]."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    signs = np.array([SIGNS[f] for f in FEATURES] + [0])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xb @ w)))
        g = xb.T @ (p - y) / n + l2 * np.r_[w[:-1], 0.0]
        w -= 2.0 * g
        w = np.where(signs > 0, np.maximum(w, 0), np.where(signs < 0, np.minimum(w, 0), w))
    return w


def best_threshold(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    best = (0.5, 0.0)
    for t in np.linspace(0.05, 0.95, 91):
        pred = p >= t
        tp = float((pred & (y == 1)).sum())
        prec = tp / max(1.0, float(pred.sum()))
        rec = tp / max(1.0, float((y == 1).sum()))
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        if f1 > best[1]:
            best = (round(float(t), 2), f1)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=parse_seeds, default=[1, 2, 3, 4, 5])
    ap.add_argument("--scale", type=float, default=0.01)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument(
        "--warmup-days",
        type=float,
        default=3.0,
        help="run but do not collect the first days: document frequencies and routing settle",
    )
    args = ap.parse_args(argv)
    if any(s >= 100 for s in args.seeds):
        print("fit_hotline: use tuning seeds (below 100) only", file=sys.stderr)
        return 2
    xs: list[list[float]] = []
    ys: list[int] = []
    for seed in args.seeds:
        x, y = collect(seed, args.scale, args.days, args.warmup_days)
        print(f"seed {seed}: {len(y)} candidate pairs, {sum(y)} duplicates", file=sys.stderr)
        xs += x
        ys += y
    x_arr, y_arr = np.array(xs), np.array(ys)
    w = fit(x_arr, y_arr)
    p = 1 / (1 + np.exp(-(np.hstack([x_arr, np.ones((len(x_arr), 1))]) @ w)))
    thr, f1 = best_threshold(p, y_arr)
    print("DEFAULT_WEIGHTS = {")
    for f, v in zip(FEATURES, w[:-1], strict=True):
        print(f'    "{f}": {v:.3f},')
    print("}")
    print(f"DEFAULT_BIAS = {w[-1]:.3f}")
    print(f"DEFAULT_THRESHOLD = {thr}")
    out = {
        "pairs": len(ys),
        "duplicates": int(sum(ys)),
        "candidate_pair_f1": round(f1, 4),
        "threshold": thr,
        "weights": {f: round(float(v), 3) for f, v in zip(FEATURES, w[:-1], strict=True)},
        "bias": round(float(w[-1]), 3),
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
