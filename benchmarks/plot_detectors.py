"""Draw one figure per detector of models/detect on a real series (for docs/models/detectors.md).

    python benchmarks/plot_detectors.py [--data DIR] [--out docs/models/figures]

Each figure: the series (a stretch of a real dataset, with one anomaly injected where the
detector is meant to see it, shaded) and the detector's score drawn as ``-log10(1 - score)``
(3 = "1 in 1,000 readings under the series' normal behaviour"), with the default threshold
0.999. The data folder is ``--data``, else ``$CITYWATCH_DATA``, else a ``shared/data`` folder
beside the repository.
Deterministic: the same data gives the same PNGs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_series import Series, data_dir, load_all
from models.detect import (
    Ensemble,
    FlatLine,
    LevelShift,
    Mahalanobis,
    RobustZ,
    Seasonal,
    Trend,
    VarianceShift,
)

F64 = npt.NDArray[np.float64]
THRESHOLD = 0.999


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    series: str  # dataset/name
    start: int  # first reading drawn
    length: int  # readings drawn
    make: Callable[[], Any]
    inject: Callable[[F64, int], tuple[F64, int, int]]  # (x, at) -> (x', shade from, to)


def spike(size: float) -> Callable[[F64, int], tuple[F64, int, int]]:
    def f(x: F64, at: int) -> tuple[F64, int, int]:
        y = x.copy()
        y[at] += size
        return y, at, at + 1

    return f


def shift(size: float, n: int) -> Callable[[F64, int], tuple[F64, int, int]]:
    def f(x: F64, at: int) -> tuple[F64, int, int]:
        y = x.copy()
        y[at : at + n] += size
        return y, at, at + n

    return f


def noise(sd: float, n: int, q: float) -> Callable[[F64, int], tuple[F64, int, int]]:
    def f(x: F64, at: int) -> tuple[F64, int, int]:
        y = x.copy()
        rng = np.random.default_rng(7)
        y[at : at + n] = np.round((y[at : at + n] + rng.normal(0, sd, n)) / q) * q
        return y, at, at + n

    return f


def stuck(n: int) -> Callable[[F64, int], tuple[F64, int, int]]:
    def f(x: F64, at: int) -> tuple[F64, int, int]:
        y = x.copy()
        y[at : at + n] = y[at - 1]
        return y, at, at + n

    return f


def ramp(size: float, n: int, hold: int, q: float) -> Callable[[F64, int], tuple[F64, int, int]]:
    """A drift to ``size`` over ``n`` readings, held ``hold`` readings, on the grid ``q``."""

    def f(x: F64, at: int) -> tuple[F64, int, int]:
        y = x.copy()
        k = np.arange(n + hold, dtype=np.float64)
        seg = y[at : at + n + hold] + size * np.minimum(k / n, 1.0)
        y[at : at + n + hold] = np.round(seg / q) * q
        return y, at, at + n + hold

    return f


def none(x: F64, at: int) -> tuple[F64, int, int]:
    return x, at, at


FIGURES = (
    Figure(
        "robust_z",
        "RobustZ: a 40 ug/m3 spike on an Aberdeen PM2.5 sensor (2.5 min)",
        "air-aberdeen/5331/P2",
        14_000,
        1_500,
        RobustZ,
        spike(40.0),
    ),
    Figure(
        "level_shift",
        "LevelShift: Shanghai Jingan PM2.5 (hourly) + 60 ug/m3 for 12 days",
        "air-cities/Shanghai/Jingan",
        3_000,
        1_200,
        LevelShift,
        shift(60.0, 288),
    ),
    Figure(
        "variance_shift",
        "VarianceShift: water pH (1 min), noise of 0.05 pH for 4 hours",
        "water/ph",
        20_000,
        3_000,
        VarianceShift,
        noise(0.05, 240, 0.01),
    ),
    Figure(
        "seasonal",
        "Seasonal: steel plant energy use (15 min); +60 kWh for 6 hours",
        "power/usage_kwh",
        8_000,
        1_400,
        Seasonal,
        shift(60.0, 24),
    ),
    Figure(
        "flat_line",
        "FlatLine: water temperature (1 min, 0.1 degC grid) frozen for 3 hours",
        "water/temp_c",
        20_000,
        3_000,
        FlatLine,
        stuck(180),
    ),
    Figure(
        "trend",
        "Trend: steel plant energy use (15 min) drifting +20 kWh over 50 hours",
        "power/usage_kwh",
        8_000,
        3_000,
        Trend,
        ramp(20.0, 200, 100, 0.01),
    ),
    Figure(
        "ensemble",
        "Ensemble: the steel plant's reactive power (15 min) with a 1-day level shift",
        "power/lagging_kvarh",
        6_000,
        1_400,
        Ensemble,
        shift(25.0, 96),
    ),
)


def run(det: Any, x: F64, t: npt.NDArray[np.int64]) -> F64:
    return np.array([det.update(v, tt) for v, tt in zip(x.tolist(), t.tolist(), strict=True)])


def draw(fig: Figure, s: Series, out: Path) -> None:
    at = fig.start + fig.length * 2 // 3
    x, lo, hi = fig.inject(s.x, at)
    scores = run(fig.make(), x[: fig.start + fig.length], s.t[: fig.start + fig.length])
    sl = slice(fig.start, fig.start + fig.length)
    days = (s.t[sl] - s.t[fig.start]) / 86_400_000
    f, (a1, a2) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True, height_ratios=(3, 2))
    a1.plot(days, x[sl], lw=0.7, color="#2b6cb0")
    if hi > lo:
        d0 = (s.t[lo] - s.t[fig.start]) / 86_400_000
        d1 = (s.t[min(hi, len(s.t) - 1)] - s.t[fig.start]) / 86_400_000
        for a in (a1, a2):
            a.axvspan(d0, max(d1, d0 + 0.02), color="#f6ad55", alpha=0.35, lw=0)
    a1.set_title(fig.title, fontsize=10)
    a1.set_ylabel(s.name.split("/")[-1], fontsize=9)
    a2.plot(days, -np.log10(np.maximum(1.0 - scores[sl], 1e-12)), lw=0.8, color="#c53030")
    a2.axhline(3.0, color="k", lw=0.6, ls="--")
    a2.text(days[0], 3.1, "default threshold 0.999", fontsize=7)
    a2.set_ylabel("-log10(1 - score)", fontsize=9)
    a2.set_xlabel("days", fontsize=9)
    a2.set_ylim(0, 12)
    f.tight_layout()
    f.savefig(out / f"detect_{fig.name}.png", dpi=90)
    plt.close(f)


def draw_mahalanobis(series: dict[str, Series], out: Path) -> None:
    """pH and redox of the water network: a reading that breaks their relation."""
    ph, redox = series["water/ph"], series["water/redox_mv"]
    start, length = 20_000, 3_000
    n = start + length
    at = start + 2 * length // 3
    xs = np.stack([ph.x[:n], redox.x[:n]], axis=1).copy()
    xs[at : at + 30, 1] -= 15.0  # redox drops while pH holds: a probe fault or a dosing change
    m = Mahalanobis(("ph", "redox_mv"))
    scores = np.array([m.update(r) for r in xs.tolist()])
    sl = slice(start, n)
    days = (ph.t[sl] - ph.t[start]) / 86_400_000
    f, (a1, a2, a3) = plt.subplots(3, 1, figsize=(9, 5), sharex=True, height_ratios=(2, 2, 2))
    a1.plot(days, xs[sl, 0], lw=0.7, color="#2b6cb0")
    a1.set_ylabel("pH", fontsize=9)
    a2.plot(days, xs[sl, 1], lw=0.7, color="#2f855a")
    a2.set_ylabel("redox mV", fontsize=9)
    d0 = (ph.t[at] - ph.t[start]) / 86_400_000
    d1 = (ph.t[at + 30] - ph.t[start]) / 86_400_000
    for a in (a1, a2, a3):
        a.axvspan(d0, d1, color="#f6ad55", alpha=0.35, lw=0)
    a1.set_title("Mahalanobis: water pH and redox (1 min); redox -15 mV for 30 min", fontsize=10)
    a3.plot(days, -np.log10(np.maximum(1.0 - scores[sl], 1e-12)), lw=0.8, color="#c53030")
    a3.axhline(3.0, color="k", lw=0.6, ls="--")
    a3.set_ylabel("-log10(1 - score)", fontsize=9)
    a3.set_xlabel("days", fontsize=9)
    a3.set_ylim(0, 12)
    f.tight_layout()
    f.savefig(out / "detect_mahalanobis.png", dpi=90)
    plt.close(f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", default=None)
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--out", default=str(here / "docs" / "models" / "figures"))
    args = ap.parse_args(argv)
    try:
        loaded = load_all(data_dir(args.data))
    except FileNotFoundError as exc:
        print(f"plot_detectors: error: {exc}", file=sys.stderr)
        return 2
    series = {f"{s.dataset}/{s.name}": s for s in loaded}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for fig in FIGURES:
        draw(fig, series[fig.series], out)
        print(f"wrote {out / f'detect_{fig.name}.png'}")
    draw_mahalanobis(series, out)
    print(f"wrote {out / 'detect_mahalanobis.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
