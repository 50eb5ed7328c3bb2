"""Fit the hotline pair model's starting weights and threshold on tuning families.

    .venv/bin/python benchmarks/fit_hotline.py --seeds 1-5

Runs ``HotlineModel`` over the ``hotline-month`` scenario of each seed (tuning seeds, below
``simulators.complaints.FIRST_EVAL_SEED``, never draw the held-out families), and after the
first ``--warmup-days`` (the model runs as it would in service: document frequencies and
routing have settled) collects every candidate pair the clusterer compares with its
features (``dedup.pair_features``) and whether the simulator's truth says it is a
duplicate, then fits ``pairs.PairModel``'s logistic
regression with its sign constraints (projected gradient descent on the mean log loss, a
little L2; unweighted, so its probabilities are calibrated).

The threshold is then chosen where it is used: the fitted model is replayed over the same
runs (clusters, average linkage, officers' decisions, exactly as in service) once per
threshold of ``--thresholds``, and the one with the best **pairwise F1 of the clusters**
(the pairs of tickets the model puts in one cluster against the simulator's, summed over the
tuning seeds) wins. Candidate-pair F1 would weigh every comparison alike; the clusters are
what officers see, and a wrong link between two lone tickets costs a pair there while a
missed caller of a big cluster costs several. Prints the weights as Python to paste into
``models/hotline/pairs.py`` and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval_hotline import _pairs, run_model, true_groups

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


def month(seed: int, scale: float, days: int) -> object:
    return simulate(
        "hotline-month",
        seed=seed,
        scale=scale,
        duration_s=days * 86_400,
        anomaly_scale=days / 30,
    )


def collect(sim: object, warmup_days: float) -> tuple[list[list[float]], list[int]]:
    truth = truth_pairs(sim)
    model = HotlineModel(sim.registry)  # type: ignore[attr-defined]
    st = model.new_state("city")
    xs: list[list[float]] = []
    ys: list[int] = []
    start = sim.start_ms + round(warmup_days * 86_400_000)  # type: ignore[attr-defined]
    for ev in sim.events():  # type: ignore[attr-defined]
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


def cluster_counts(sim: object, pairs: PairModel) -> tuple[int, int, int]:
    """(hits, predicted, true) ticket pairs of the clusters the model builds with ``pairs``."""
    run = run_model(sim, HotlineModel(sim.registry, pairs=pairs))  # type: ignore[attr-defined]
    pred = _pairs(run.dsu.groups())
    true = _pairs(true_groups(sim, run.tickets).groups())
    return len(pred & true), len(pred), len(true)


def f1(hit: int, pred: int, true: int) -> float:
    return 2 * hit / (pred + true) if pred + true else 0.0


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
    ap.add_argument(
        "--thresholds",
        type=lambda v: [float(x) for x in v.split(",")],
        default=[0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8],
        help="comma-separated probabilities to replay the clustering with",
    )
    args = ap.parse_args(argv)
    if any(s >= 100 for s in args.seeds):
        print("fit_hotline: use tuning seeds (below 100) only", file=sys.stderr)
        return 2
    sims = [month(seed, args.scale, args.days) for seed in args.seeds]
    xs: list[list[float]] = []
    ys: list[int] = []
    for seed, sim in zip(args.seeds, sims, strict=True):
        x, y = collect(sim, args.warmup_days)
        print(f"seed {seed}: {len(y)} candidate pairs, {sum(y)} duplicates", file=sys.stderr)
        xs += x
        ys += y
    x_arr, y_arr = np.array(xs), np.array(ys)
    w = fit(x_arr, y_arr)
    p = 1 / (1 + np.exp(-(np.hstack([x_arr, np.ones((len(x_arr), 1))]) @ w)))
    _, pair_f1 = best_threshold(p, y_arr)
    weights = {f: round(float(v), 3) for f, v in zip(FEATURES, w[:-1], strict=True)}
    bias = round(float(w[-1]), 3)
    by_threshold: dict[float, float] = {}
    for thr in args.thresholds:
        hit = pred = true = 0
        for sim in sims:
            h, pr, t = cluster_counts(sim, PairModel(weights, bias, thr))
            hit, pred, true = hit + h, pred + pr, true + t
        by_threshold[thr] = round(f1(hit, pred, true), 4)
        print(
            f"threshold {thr}: cluster pairs precision {hit / max(1, pred):.4f} recall "
            f"{hit / max(1, true):.4f} F1 {by_threshold[thr]}",
            file=sys.stderr,
        )
    thr = max(by_threshold, key=lambda t: (by_threshold[t], -abs(t - 0.5)))
    print("DEFAULT_WEIGHTS = {")
    for f, v in weights.items():
        print(f'    "{f}": {v},')
    print("}")
    print(f"DEFAULT_BIAS = {bias}")
    print(f"DEFAULT_THRESHOLD = {thr}")
    out = {
        "pairs": len(ys),
        "duplicates": int(sum(ys)),
        "candidate_pair_f1": round(pair_f1, 4),
        "cluster_pair_f1": by_threshold[thr],
        "threshold": thr,
        "weights": weights,
        "bias": bias,
    }
    print(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
