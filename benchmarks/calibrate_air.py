"""Calibrate the air generator on real hourly data: measure, simulate, compare, plot.

Measures on the five-cities hourly PM2.5 (11 station series; Guangzhou ``City Station``
duplicates ``US Post`` and is left out, see ``benchmarks/real_series.py``) and on what the
simulator's reference stations publish in ``air_stations="real"`` mode (every simulated
station made a national one, so 20 stations x ``--days`` give a sample as large as the real
one):

- the diurnal profile: mean by local hour of day of each reading over its day's mean (days with
  20+ valid hours), normalised to mean 1, and the log-harmonic fit
  ``A1 cos(2pi (h - P1)/24) + A2 cos(4pi (h - P2)/24)`` of each city's and of the cities' mean
  profile (the generator uses the latter);
- lag-1 and lag-24 autocorrelation of log PM2.5 after removing each calendar month's mean
  (the simulator runs days to weeks in one season; the real data spans three years);
- the spread of log PM2.5 within a month (``sd_log``);
- hour-to-hour log changes: sd, quantiles, excess kurtosis (heavy tails: fronts, bursts);
- missing hours: share, gaps per station-year, share of missing hours in gaps of 1, 2-5, 6-24
  and 25+ hours;
- flat lines: runs of one repeated value of 3+ and 6+ hours per station-year, the longest;
- PM2.5 / PM10: the five-cities data has no PM10; the hourly ratio of the Aberdeen sensors
  (optical, UK) is printed for reference, and the simulator's share of hours with PM2.5 above
  PM10 at reference stations.

Per statistic: each real city (mean of its stations), the spread over the 11 real series
(min..max), and the simulator. The figure (``--plot``, default
``docs/simulators-air-calibration.png``) shows real beside simulated.

    .venv/bin/python benchmarks/calibrate_air.py                 # 90 simulated days, seed 1
    .venv/bin/python benchmarks/calibrate_air.py --days 30 --seeds 1,2 --no-plot

Last line: one JSON object, ``{"real": {...}, "real_spread": {...}, "sim": {...},
"within_spread": {...}}`` (``within_spread``: whether the simulator's value lies inside the
real series' range, per statistic).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.real_series import data_dir, load_aberdeen, load_five_cities
from citywatch.cli_options import parse_seeds
from simulators.air import AirStream
from simulators.air_realism import AIR_STATIONS, DIURNAL_PM
from simulators.city import build_city
from simulators.clock import DEFAULT_START_MS, HOUR_MS
from simulators.scenario import PROFILES

F64 = npt.NDArray[np.float64]
TZ_H = 8
GAP_CLASSES = ((1, 1), (2, 5), (6, 24), (25, 10**9))
STATS = (
    "sd_log",
    "acf1",
    "acf24",
    "dlog_sd",
    "dlog_p01",
    "dlog_p99",
    "dlog_kurtosis",
    "diurnal_amplitude",
    "missing_share",
    "gaps_per_year",
    "runs3_per_year",
    "runs6_per_year",
)


def acf(y: F64, lag: int) -> float:
    a, b = y[:-lag], y[lag:]
    ok = ~np.isnan(a) & ~np.isnan(b)
    if ok.sum() < 10:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def demonth(t_h: npt.NDArray[np.int64], y: F64) -> F64:
    """``y`` minus the mean of its 30-day block (season removed)."""
    block = (t_h // (24 * 30)).astype(np.int64)
    out = y.copy()
    for b in np.unique(block):
        k = block == b
        if np.isfinite(y[k]).sum():
            out[k] -= np.nanmean(y[k])
    return out


def diurnal(t_h: npt.NDArray[np.int64], x: F64) -> F64:
    """Mean of reading / its local day's mean by local hour, normalised to mean 1."""
    local = t_h + TZ_H
    day = local // 24
    hod = local % 24
    ok = np.isfinite(x)
    d0 = day.min()
    sums = np.bincount(day[ok] - d0, weights=x[ok], minlength=int(day.max() - d0 + 1))
    cnt = np.bincount(day[ok] - d0, minlength=len(sums))
    dmean = np.where(cnt >= 20, sums / np.maximum(cnt, 1), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = x / dmean[day - d0]
    prof = np.array([np.nanmean(rel[hod == h]) for h in range(24)])
    return prof / prof.mean()  # type: ignore[no-any-return]


def harmonic_fit(prof: F64) -> tuple[float, float, float, float]:
    """(A1, P1, A2, P2) of ``log prof`` by least squares on two harmonics."""
    h = np.arange(24.0)
    y = np.log(prof) - np.log(prof).mean()
    cols = [np.cos(2 * np.pi * h / 24), np.sin(2 * np.pi * h / 24)]
    cols += [np.cos(4 * np.pi * h / 24), np.sin(4 * np.pi * h / 24)]
    c = np.linalg.lstsq(np.array(cols).T, y, rcond=None)[0]
    a1, a2 = math.hypot(c[0], c[1]), math.hypot(c[2], c[3])
    p1 = (math.atan2(c[1], c[0]) * 24 / (2 * np.pi)) % 24
    p2 = (math.atan2(c[3], c[2]) * 24 / (4 * np.pi)) % 12
    return a1, p1, a2, p2


def runs(mask_or_vals: F64, *, missing: bool) -> list[int]:
    """Lengths of runs of missing hours (``missing``) or of one repeated valid value."""
    out: list[int] = []
    r = 0
    prev = float("nan")
    for v in mask_or_vals.tolist():
        if missing:
            if v != v:
                r += 1
            elif r:
                out.append(r)
                r = 0
        else:
            if v == v and v == prev:
                r += 1
            else:
                if r > 1:
                    out.append(r)
                r = 1
            prev = v
    if missing and r:
        out.append(r)
    if not missing and r > 1:
        out.append(r)
    return out


def series_stats(t_h: npt.NDArray[np.int64], x: F64) -> dict[str, Any]:
    """Every statistic of one hourly series (``t_h`` epoch hours, ``x`` with NaN missing)."""
    y = np.log(np.maximum(x, 1.0))
    yd = demonth(t_h, y)
    d = np.diff(y)
    d = d[np.isfinite(d)]
    years = len(x) / 8766.0
    gaps = runs(x, missing=True)
    flats = runs(x, missing=False)
    n_miss = max(1, int(np.isnan(x).sum()))
    prof = diurnal(t_h, x)
    return {
        "sd_log": float(np.nanstd(yd)),
        "acf": [acf(yd, k) for k in range(1, 73)],
        "acf1": acf(yd, 1),
        "acf24": acf(yd, 24),
        "dlog": d,
        "dlog_sd": float(d.std()),
        "dlog_p01": float(np.percentile(d, 1)),
        "dlog_p99": float(np.percentile(d, 99)),
        "dlog_kurtosis": float(((d - d.mean()) ** 4).mean() / d.var() ** 2 - 3),
        "diurnal": prof,
        "diurnal_fit": harmonic_fit(prof),
        "diurnal_amplitude": float(prof.max() - prof.min()),
        "missing_share": float(np.isnan(x).mean()),
        "gaps_per_year": len(gaps) / years,
        "gap_shares": [sum(g for g in gaps if lo <= g <= hi) / n_miss for lo, hi in GAP_CLASSES],
        "gap_lengths": gaps,
        "runs3_per_year": sum(1 for r in flats if r >= 3) / years,
        "runs6_per_year": sum(1 for r in flats if r >= 6) / years,
        "run_lengths": flats,
        "longest_flat": max(flats, default=0),
        "x": x,
        "t_h": t_h,
    }


def real_series(root: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for s in load_five_cities(root):
        out[s.name] = series_stats(s.t // HOUR_MS, s.x)
    return out


def sim_series(seed: int, days: int) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Hourly PM2.5 (and the PM2.5 > PM10 shares) of 20 simulated reference stations."""
    city = build_city(seed, PROFILES["nantong"], 0.01)
    city.station_national[:] = True  # every station a reference station: a larger sample
    start = DEFAULT_START_MS
    end = start + days * 86_400_000
    air = AirStream(city, seed, start, end, realism=AIR_STATIONS["real"])
    hours = days * 24
    n = len(city.station_ids)
    pm25 = np.full((n, hours), np.nan)
    pm10 = np.full((n, hours), np.nan)
    for i in range(hours):
        h0 = start + i * HOUR_MS
        vals = air.hourly_values(h0)
        gone = air.gaps.missing(h0) if air.gaps is not None else np.zeros(n, dtype=bool)
        for s in range(n):
            if not gone[s]:
                a, b = vals["pm25"][s], vals["pm10"][s]
                pm25[s, i] = np.nan if a is None else a
                pm10[s, i] = np.nan if b is None else b
    t_h = start // HOUR_MS + np.arange(hours, dtype=np.int64)
    out = {f"sim{seed}/{sid}": series_stats(t_h, pm25[s]) for s, sid in enumerate(city.station_ids)}
    ok = np.isfinite(pm25) & np.isfinite(pm10) & (pm10 > 0)
    inverted = pm25[ok] > pm10[ok]
    beyond = pm25[ok] > pm10[ok] * 1.1 + 5.0  # beyond the two analysers' uncertainty
    ratio = pm25[ok] / pm10[ok]
    extra = {
        "pm_inverted_share": float(inverted.mean()),
        "pm_inverted_beyond_uncertainty_share": float(beyond.mean()),
        "pm25_pm10_ratio_median": float(np.median(ratio)),
        "pm25_pm10_ratio_p05": float(np.percentile(ratio, 5)),
        "pm25_pm10_ratio_p95": float(np.percentile(ratio, 95)),
    }
    return out, extra


def aberdeen_ratio(root: Path) -> dict[str, float]:
    """Hourly PM2.5 / PM10 of the Aberdeen optical sensors (hours with PM10 >= 3 µg/m³)."""
    series = load_aberdeen(root)
    ratios = []
    for i in range(0, len(series), 2):
        p1, p2 = series[i], series[i + 1]
        h = p1.t // HOUR_MS
        _, inv = np.unique(h, return_inverse=True)
        cnt = np.bincount(inv)
        m1 = np.bincount(inv, p1.x) / cnt
        m2 = np.bincount(inv, p2.x) / cnt
        ok = m1 >= 3
        ratios.append(m2[ok] / m1[ok])
    r = np.concatenate(ratios)
    return {
        "median": float(np.median(r)),
        "p05": float(np.percentile(r, 5)),
        "p95": float(np.percentile(r, 95)),
        "inverted_share": float((r > 1).mean()),
    }


def pooled(stats: dict[str, dict[str, Any]], key: str) -> float:
    vals = [s[key] for s in stats.values() if np.isfinite(s[key])]
    return float(np.mean(vals)) if vals else float("nan")


def plot(real: dict[str, dict[str, Any]], sim: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    by_city: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, s in real.items():
        by_city[name.split("/")[0]].append(s)
    colours = {"Chengdu": "#1b9e77", "Guangzhou": "#d95f02", "Shanghai": "#7570b3",
               "Shenyang": "#e7298a"}  # fmt: skip
    sim_c = "black"
    h = np.arange(24)
    a = ax[0, 0]
    for city, ss in by_city.items():
        a.plot(h, np.mean([s["diurnal"] for s in ss], axis=0), color=colours[city], label=city)
    a.plot(h, np.mean([s["diurnal"] for s in sim.values()], axis=0), color=sim_c, lw=2.5,
           ls="--", label="simulated")  # fmt: skip
    a.set(title="Diurnal profile of PM2.5 (reading / day mean)", xlabel="local hour",
          xticks=range(0, 24, 3))  # fmt: skip
    a.legend(fontsize=8)
    a = ax[0, 1]
    lags = np.arange(1, 73)
    for i, s in enumerate(real.values()):
        a.plot(lags, s["acf"], color="0.6", lw=0.8, label="real stations" if i == 0 else None)
    a.plot(lags, np.nanmean([s["acf"] for s in sim.values()], axis=0), color=sim_c, lw=2.5,
           ls="--", label="simulated (mean)")  # fmt: skip
    a.set(title="Autocorrelation of log PM2.5 (month mean removed)", xlabel="lag (h)",
          xticks=range(0, 73, 12), ylim=(0, 1))  # fmt: skip
    a.legend(fontsize=8)
    a = ax[0, 2]
    bins = np.linspace(-1.5, 1.5, 61)
    dr = np.concatenate([s["dlog"] for s in real.values()])
    ds = np.concatenate([s["dlog"] for s in sim.values()])
    a.hist(dr, bins=bins, density=True, histtype="step", color="0.3", lw=1.5, label="real")
    a.hist(ds, bins=bins, density=True, histtype="step", color=sim_c, ls="--", lw=2,
           label="simulated")  # fmt: skip
    a.set(yscale="log", title="Hour-to-hour change of log PM2.5", xlabel="log(x[t+1] / x[t])")
    a.legend(fontsize=8)
    a = ax[1, 0]
    rs = real["Shanghai/Jingan"]
    t0 = np.searchsorted(rs["t_h"], 1415548800000 // HOUR_MS)  # 2014-11-10 00:00 +08:00
    week = slice(t0, t0 + 14 * 24)
    a.plot(np.arange(14 * 24) / 24, rs["x"][week], color=colours["Shanghai"],
           label="real: Shanghai Jingan, 10-23 Nov 2014")  # fmt: skip
    first = next(iter(sim.values()))
    a.plot(np.arange(14 * 24) / 24, first["x"][: 14 * 24], color=sim_c, ls="--",
           label="simulated: a reference station, 2-15 Nov")  # fmt: skip
    a.set(title="Two weeks of hourly PM2.5", xlabel="day", ylabel="µg/m³")
    a.legend(fontsize=8)
    a = ax[1, 1]
    x = np.arange(len(GAP_CLASSES))
    w = 0.38
    a.bar(x - w / 2, np.mean([s["gap_shares"] for s in real.values()], axis=0), w, color="0.5",
          label=f"real ({pooled(real, 'missing_share'):.1%} of hours missing)")  # fmt: skip
    a.bar(x + w / 2, np.mean([s["gap_shares"] for s in sim.values()], axis=0), w, color=sim_c,
          label=f"simulated ({pooled(sim, 'missing_share'):.1%})")  # fmt: skip
    a.set(title="Missing hours by the length of their gap", xticks=x,
          xticklabels=["1 h", "2-5 h", "6-24 h", "25+ h"],
          ylabel="share of missing hours")  # fmt: skip
    a.legend(fontsize=8)
    a = ax[1, 2]
    lens = np.arange(2, 25)
    for label, st, c, ls in (("real", real, "0.3", "-"), ("simulated", sim, sim_c, "--")):
        rl = np.concatenate([np.array(s["run_lengths"], dtype=float) for s in st.values()])
        years = sum(len(s["x"]) for s in st.values()) / 8766.0
        ccdf = [(rl >= k).sum() / years for k in lens]
        a.plot(lens, np.maximum(ccdf, 1e-2), color=c, ls=ls, lw=2, label=label)
    a.set(yscale="log", title="Flat runs (one value repeated) per station-year (none: 0.01)",
          xlabel="run of at least ... hours", ylabel="runs per station-year")  # fmt: skip
    a.legend(fontsize=8)
    fig.suptitle("Air generator (air_stations='real') beside the five-cities hourly PM2.5")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="folder holding air/five-cities (default: env)")
    ap.add_argument("--seeds", type=parse_seeds, default=[1], help="simulator seeds: 1 or 1-3")
    ap.add_argument("--days", type=int, default=90, help="simulated days per seed")
    ap.add_argument("--plot", default="docs/simulators-air-calibration.png")
    ap.add_argument("--no-plot", action="store_true")
    args = ap.parse_args(argv)
    root = data_dir(args.data)
    if not (root / "air" / "five-cities").is_dir():
        print(
            f"calibrate_air: {root / 'air' / 'five-cities'} not found: set --data or "
            "CITYWATCH_DATA to the folder holding air/five-cities",
            file=sys.stderr,
        )
        return 2
    real = real_series(root)
    sim: dict[str, dict[str, Any]] = {}
    extra: dict[str, list[float]] = defaultdict(list)
    for seed in args.seeds:
        s, e = sim_series(seed, args.days)
        sim.update(s)
        for k, v in e.items():
            extra[k].append(v)
    cities = sorted({n.split("/")[0] for n in real})
    print(f"{'statistic':22s} " + " ".join(f"{c:>9s}" for c in cities) + "  real min..max   sim")
    out_real, spread, out_sim, inside = {}, {}, {}, {}
    for k in STATS:
        per_city = [
            float(np.mean([s[k] for n, s in real.items() if n.startswith(c + "/")])) for c in cities
        ]
        vals = [s[k] for s in real.values()]
        lo, hi = float(np.min(vals)), float(np.max(vals))
        sv = pooled(sim, k)
        out_real[k] = round(pooled(real, k), 4)
        spread[k] = [round(lo, 4), round(hi, 4)]
        out_sim[k] = round(sv, 4)
        inside[k] = bool(lo <= sv <= hi)
        cells = " ".join(f"{v:9.3f}" for v in per_city)
        print(
            f"{k:22s} {cells}  {lo:7.3f}..{hi:<7.3f} {sv:7.3f}{'' if inside[k] else '  (outside)'}"
        )
    print("diurnal log-harmonic fit (A1, P1 h, A2, P2 h) per city's mean profile:")
    profiles = []
    for c in cities:
        prof = np.mean([s["diurnal"] for n, s in real.items() if n.startswith(c + "/")], axis=0)
        profiles.append(prof)
        f = harmonic_fit(prof)
        print(f"  {c:12s} {f[0]:.3f} {f[1]:5.1f} {f[2]:.3f} {f[3]:5.1f}")
    med = np.array(harmonic_fit(np.mean(profiles, axis=0)))
    print(f"  cities' mean {med[0]:.3f} {med[1]:5.1f} {med[2]:.3f} {med[3]:5.1f} "
          f"(the generator's DIURNAL_PM {DIURNAL_PM})")  # fmt: skip
    print("  simulated    " + " ".join(f"{v:.3f}" for v in harmonic_fit(
        np.mean([s["diurnal"] for s in sim.values()], axis=0))))  # fmt: skip
    gap_real = np.mean([s["gap_shares"] for s in real.values()], axis=0)
    gap_sim = np.mean([s["gap_shares"] for s in sim.values()], axis=0)
    print(f"missing hours in gaps of 1 / 2-5 / 6-24 / 25+ h: real {np.round(gap_real, 2).tolist()} "
          f"sim {np.round(gap_sim, 2).tolist()}")  # fmt: skip
    longest = {n: s["longest_flat"] for n, s in real.items()}
    print(
        f"longest flat run (h): real {longest}; "
        f"sim max {max(s['longest_flat'] for s in sim.values())}"
    )
    ab = aberdeen_ratio(root)
    sim_pm = {k: round(float(np.mean(v)), 4) for k, v in extra.items()}
    print(
        f"PM2.5/PM10 hourly: Aberdeen optical sensors {ab}; simulated reference stations {sim_pm}"
    )
    if not args.no_plot:
        plot(real, sim, Path(args.plot))
        print(f"figure: {args.plot}")
    result_real: dict[str, Any] = {**out_real, "diurnal_fit": [round(float(v), 3) for v in med]}
    out_sim.update(sim_pm)
    print(
        json.dumps(
            {
                "real": result_real,
                "real_spread": spread,
                "sim": out_sim,
                "within_spread": inside,
                "aberdeen_pm_ratio": {k: round(v, 4) for k, v in ab.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
