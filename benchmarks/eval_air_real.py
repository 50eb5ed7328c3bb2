"""The air models on real recorded data, through the real city flow: clean and with faults.

Data (never copied into the repository; ``--data`` or ``$CITYWATCH_DATA``, see
``docs/evaluation.md``): the five-cities hourly PM2.5 files (Shanghai, Guangzhou, Chengdu,
Shenyang; 12 stations, 2013-2015, local time UTC+8; approximate station coordinates below) and
the six Aberdeen Sensor.Community SDS011 sensors (PM2.5 and PM10 every ~2.5 min, 83 days, UTC).
Each dataset is imported with ``simulators.importer`` (what ``citywatch import`` runs), then:

1. **clean**: the data as recorded runs through ``flows.evaluate.run_dataset`` (the same path as
   ``citywatch evaluate --events``: written to a gzip file, read back by
   ``simulators.recorded.Recorded``, every registered model, the alert engine, the Redis sink
   under a private prefix, alerts read back from the alert stream), in this process;
2. **faulted**, per seed: ``simulators.faults.inject`` (what ``citywatch inject`` runs) adds
   spikes, stuck runs, drifts, gross-range values and dropouts, and the faulted data runs the
   same way.

Every number (pooled over datasets and seeds: counts summed, then the ratios; alerts are alert
ids, all versions of one id counting once; "match" is ``simulators.scoring.matches`` with a
5-minute tolerance: same rule, same station, alert span overlapping the label window):

- ``fault_recall[kind]`` (spike, stuck, drift, range): injected labels of the kind's rule
  matched by an alert of the faulted run / injected labels. A drift counts only if its first
  matching alert starts within 72 h of the drift's start.
- ``fault_precision[kind]``: alerts of the rule in the faulted run that match an injected label
  / alerts of the rule in the faulted run that are not *explained by the data*. An alert is
  explained by the data when it matches no injected label but overlaps (same rule, same station,
  within the tolerance) an alert of the clean run: the clean run's alerts are measured by the
  clean figures below, not charged to the injection. ``null`` when the rule raised nothing.
- the table also shows F1 and the median delay (first matching alert's ``first_ts`` minus the
  label's ``start_ms``, seconds) per kind, and the alerts raised during dropouts (records
  removed: no rule should fire for them; counted when not explained by the data).
- ``clean_qc_alerts_per_station_week``: alerts of the quality-control rules (``air.stuck``,
  ``air.range``, ``air.drift``: the rules that claim a sensor fault) in the clean runs / station-
  weeks (registered stations x the data's span in weeks). The longest ones are listed with what
  the data shows there (the longest run of one repeated PM2.5 value, the maxima), so a reader
  can check they are real sensor problems (the data README names some: Chengdu Shahepu flat at
  292 for 57 h from 2014-01-27 04:00; PM10 >= 999 at Aberdeen 15462 and 17079 on 2019-03-06).
- ``exceedance_f1``: against labels derived from the clean data: per station, each run of
  consecutive clock hours whose hourly AQI (HJ 633, ``models.air.aqi.iaqi`` on the table in
  force: PM2.5 and, where measured, PM10, each on its 24-hour table as real-time releases do;
  the five-cities files have PM2.5 only) is above 100 is one ``air.exceedance`` label from the
  hour's start to its end. An hour's value: the hourly reading (five-cities), or the mean of
  the readings in the clock hour when they cover at least 45 minutes (count x the station's
  interval; Aberdeen). F1 of the clean run's ``air.exceedance`` alerts against them (precision
  over alerts, recall over labels).
- ``episode_recall``: per city (registry district), each run of >= 3 consecutive hours whose
  median over the stations' hourly AQI (at least 2 stations with a value) is above 150 is one
  ``air.episode`` label; detected when an ``air.episode`` alert of that district matches it
  and starts within 2 h of the label's start (one already on when the run starts counts).
  ``null`` without labels.
- ``records_per_s``: records through the flow / wall seconds of the flow runs (``run_main``
  only: not the import, injection, file writing or scoring), over every run, one process.

    .venv/bin/python benchmarks/eval_air_real.py --quick            # Chengdu 2014 + 14 days
    .venv/bin/python benchmarks/eval_air_real.py --seeds 1-3        # everything

The spread: the same figures per city-year of the five cities and for the Aberdeen network
(one parameter set for all), with the least and greatest of each.

Last line: ``{"fault_recall": {...}, "fault_precision": {...}, "episode_recall": ...,
"exceedance_f1": ..., "clean_qc_alerts_per_station_week": ..., "records_per_s": ...,
"spread": {figure: [least, greatest]}}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import orjson

from citywatch.cli_options import parse_seeds
from citywatch.redisconn import embedded_or_url
from citywatch.registry import Registry
from citywatch.settings import Settings
from flows.evaluate import run_dataset
from models.air.aqi import category_of, iaqi, table_for
from simulators.faults import Fault, inject
from simulators.importer import ImportSpec, import_files, parse_tz
from simulators.labels import Label
from simulators.recorded import Recorded, real_data_dir, write_records
from simulators.scoring import DEFAULT_TOLERANCE_MS, AlertView, collapse, matches, scores

HOUR = 3_600_000
WEEK = 7 * 24 * HOUR
CST = timezone(timedelta(hours=8))
CITIES = ("Shanghai", "Guangzhou", "Chengdu", "Shenyang")
#: Approximate positions (about +-3 km, from the data's README): enough for neighbour logic.
STATIONS = {
    "Shanghai/Jingan": (31.23, 121.44),
    "Shanghai/Xuhui": (31.17, 121.42),
    "Shanghai/US Post": (31.21, 121.44),
    "Guangzhou/City Station": (23.13, 113.26),
    "Guangzhou/5th Middle School": (23.11, 113.26),
    "Guangzhou/US Post": (23.12, 113.32),
    "Chengdu/Caotangsi": (30.66, 104.03),
    "Chengdu/Shahepu": (30.63, 104.11),
    "Chengdu/US Post": (30.63, 104.07),
    "Shenyang/Taiyuanjie": (41.80, 123.40),
    "Shenyang/Xiaoheyan": (41.80, 123.47),
    "Shenyang/US Post": (41.78, 123.43),
}
FAULTS = {"spike": "air.spike", "stuck": "air.stuck", "drift": "air.drift", "range": "air.range"}
QC_RULES = ("air.stuck", "air.range", "air.drift")
#: Injected faults per station-week, and at least this many per dataset and seed.
RATES = {"spike": 0.1, "stuck": 0.04, "drift": 0.02, "range": 0.04, "dropout": 0.03}
MIN_COUNTS = {"spike": 8, "stuck": 4, "drift": 3, "range": 4, "dropout": 2}
DRIFT_DEADLINE = 72 * HOUR
EPISODE_DEADLINE = 2 * HOUR
TOL = DEFAULT_TOLERANCE_MS


@dataclass
class Data:
    name: str
    records: list[bytes]
    registry: Registry
    tz: tzinfo

    @property
    def span(self) -> tuple[int, int]:
        return orjson.loads(self.records[0])["ts"], orjson.loads(self.records[-1])["ts"] + 1

    @property
    def station_weeks(self) -> float:
        a, b = self.span
        return len(self.registry.stations) * (b - a) / WEEK


@dataclass
class Tally:
    """Counts of one rule (or kind), summed over datasets and seeds."""

    labels: int = 0
    alerts: int = 0
    explained: int = 0
    true_alerts: int = 0
    detected: int = 0
    delays: list[int] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.labels += other.labels
        self.alerts += other.alerts
        self.explained += other.explained
        self.true_alerts += other.true_alerts
        self.detected += other.detected
        self.delays += other.delays

    def prf(self) -> tuple[float | None, float | None, float | None]:
        return scores(self.true_alerts, self.alerts - self.explained, self.detected, self.labels)

    def delay_s(self) -> float | None:
        return statistics.median(self.delays) / 1000 if self.delays else None


# -- data --------------------------------------------------------------------------------------


def _bounded(records: list[tuple[int, str, bytes]], lo: int, hi: int) -> list[bytes]:
    return [r for ts, _, r in records if lo <= ts < hi]


def load_five_cities(
    root: Path, cities: Sequence[str], years: Sequence[int] | None, max_hours: int | None
) -> Data:
    folder = root / "air" / "five-cities"
    sources = [(c, folder / f"{c}PM20130101_20151231.csv.gz") for c in cities]
    known = {k: {"lat": v[0], "lon": v[1]} for k, v in STATIONS.items()}
    imp = import_files(sources, ImportSpec(stations=known))
    lo, hi = imp.records[0][0], imp.records[-1][0] + 1
    if years:
        lo = int(datetime(min(years), 1, 1, tzinfo=CST).timestamp() * 1000)
        hi = int(datetime(max(years) + 1, 1, 1, tzinfo=CST).timestamp() * 1000)
    if max_hours:
        hi = min(hi, max(lo, imp.records[0][0]) + max_hours * HOUR)
    return Data("five-cities", _bounded(imp.records, lo, hi), imp.registry, CST)


def load_aberdeen(root: Path, max_hours: int | None) -> Data:
    folder = root / "air" / "sensor-community-aberdeen"
    files = sorted(folder.glob("sds011_sensor_*.csv.gz"))
    spec = ImportSpec(tz=parse_tz("UTC"), kind="lowcost")
    imp = import_files([("Aberdeen", f) for f in files], spec)
    lo = imp.records[0][0]
    hi = lo + max_hours * HOUR if max_hours else imp.records[-1][0] + 1
    return Data("aberdeen", _bounded(imp.records, lo, hi), imp.registry, UTC)


# -- labels from the data itself -------------------------------------------------------------


PM: tuple[str, ...] = ("pm25", "pm10")


def hourly_means(data: Data) -> dict[str, dict[int, dict[str, float]]]:
    """Station -> clock hour (ms) -> that hour's PM2.5 and PM10 (module doc: the hourly
    value; a channel without 45 minutes of readings has none)."""
    sums: dict[str, dict[int, dict[str, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for r in data.records:
        d = orjson.loads(r)
        for p in PM:
            v = d.get(p)
            if v is not None and v >= 0:
                sums[d["station"]][d["ts"] // HOUR * HOUR][p].append(v)
    out: dict[str, dict[int, dict[str, float]]] = {}
    for sid, hours in sums.items():
        st = data.registry.stations[sid]
        interval_s = st.interval_s or 3600.0
        out[sid] = {}
        for h, chans in hours.items():
            means = {
                p: sum(vs) / len(vs)
                for p, vs in chans.items()
                if interval_s >= 3600 or len(vs) * interval_s >= 45 * 60
            }
            if means:
                out[sid][h] = means
    return out


def hourly_aqi(data: Data) -> dict[str, dict[int, int]]:
    """Station -> clock hour (ms) -> that hour's AQI of PM2.5 and PM10 (HJ 633, the table in
    force at the hour: each on its 24-hour table, the real-time release practice)."""
    out: dict[str, dict[int, int]] = {}
    for sid, hours in hourly_means(data).items():
        out[sid] = {}
        for h, means in hours.items():
            t = table_for(h)
            a = max(
                iaqi(means.get("pm25"), t.pm25_24h) or 0, iaqi(means.get("pm10"), t.pm10_24h) or 0
            )
            out[sid][h] = a
    return out


def _runs(hours: Iterable[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for h in sorted(hours):
        if runs and h == runs[-1][-1] + HOUR:
            runs[-1].append(h)
        else:
            runs.append([h])
    return runs


def derived_labels(
    data: Data, hourly: dict[str, dict[int, int]]
) -> tuple[list[Label], list[Label]]:
    """(exceedance labels per station, episode labels per district) from each station-hour's
    AQI (``hourly_aqi``): module doc."""
    exceed = []
    for sid, hours in sorted(hourly.items()):
        over = {h: a for h, a in hours.items() if a > 100}
        for run in _runs(over):
            worst = max(over[h] for h in run)
            cat = category_of(worst)
            exceed.append(
                Label(
                    rule="air.exceedance",
                    subject_kind="station",
                    subject_id=sid,
                    start_ms=run[0],
                    end_ms=run[-1] + HOUR,
                    params={"aqi_max": worst, "category": cat.name_zh, "hours": len(run)},
                )
            )
    episodes = []
    by_district: dict[str, list[str]] = defaultdict(list)
    for sid, st in data.registry.stations.items():
        by_district[st.district].append(sid)
    for district, sids in sorted(by_district.items()):
        all_hours = sorted({h for s in sids for h in hourly.get(s, {})})
        high = {}
        for h in all_hours:
            vals = [hourly[s][h] for s in sids if h in hourly.get(s, {})]
            if len(vals) >= 2 and statistics.median(vals) > 150:
                high[h] = statistics.median(vals)
        for run in _runs(high):
            if len(run) >= 3:
                episodes.append(
                    Label(
                        rule="air.episode",
                        subject_kind="district",
                        subject_id=district,
                        start_ms=run[0],
                        end_ms=run[-1] + HOUR,
                        params={
                            "aqi_median_max": max(high[h] for h in run),
                            "hours": len(run),
                            "stations": sorted(sids),
                        },
                    )
                )
    return exceed, episodes


# -- running and scoring -----------------------------------------------------------------------


@dataclass
class Run:
    alerts: list[AlertView]
    records: int
    wall_s: float


def run_flow(data: Data, records: list[bytes], url: str, settings: Settings, tag: str) -> Run:
    """Through ``run_dataset`` exactly as ``citywatch evaluate --events`` (module doc)."""
    with tempfile.TemporaryDirectory(prefix="eval-air-real-") as tmp:
        path = Path(tmp) / "events.jsonl.gz"
        write_records(path, records)
        dataset = Recorded([path], data.registry, name=f"{data.name}-{tag}")
        r = run_dataset(dataset, f"{data.name}-{tag}", url=url, settings=settings)
    return Run(collapse(r.alerts), r.records, r.wall_s)


def _overlaps(a: AlertView, others: dict[tuple[str, str], list[AlertView]]) -> bool:
    return any(
        a.first_ts <= b.last_ts + TOL and b.first_ts <= a.last_ts + TOL
        for b in others.get((a.rule, a.subject_id), ())
    )


def fault_tally(
    rule: str,
    faulted: list[AlertView],
    clean: dict[tuple[str, str], list[AlertView]],
    labels: list[Label],
    deadline_ms: int | None = None,
) -> Tally:
    ra = [a for a in faulted if a.rule == rule]
    rl = [x for x in labels if x.rule == rule]
    t = Tally(labels=len(rl), alerts=len(ra))
    for a in ra:
        if any(matches(a, x, TOL) for x in rl):
            t.true_alerts += 1
        elif _overlaps(a, clean):
            t.explained += 1
    for x in rl:
        hits = [a.first_ts for a in ra if matches(a, x, TOL)]
        if hits and (deadline_ms is None or min(hits) <= x.start_ms + deadline_ms):
            t.detected += 1
            t.delays.append(min(hits) - x.start_ms)
    return t


def label_tally(
    rule: str, alerts: list[AlertView], labels: list[Label], deadline_ms: int | None = None
) -> Tally:
    return fault_tally(rule, alerts, {}, labels, deadline_ms)


def _index(alerts: list[AlertView]) -> dict[tuple[str, str], list[AlertView]]:
    out: dict[tuple[str, str], list[AlertView]] = defaultdict(list)
    for a in alerts:
        out[(a.rule, a.subject_id)].append(a)
    return out


def dropout_alerts(
    faulted: list[AlertView],
    clean: dict[tuple[str, str], list[AlertView]],
    labels: list[Label],
    faults: list[Fault],
) -> int:
    """Faulted-run QC or spike alerts overlapping a dropout of their station, matching no
    label and not explained by the data."""
    n = 0
    drops = [f for f in faults if f.kind == "dropout"]
    for a in faulted:
        if a.rule not in (*QC_RULES, "air.spike") or _overlaps(a, clean):
            continue
        if any(matches(a, x, TOL) for x in labels):
            continue
        if any(
            f.subject_id == a.subject_id
            and a.first_ts <= f.end_ms + TOL
            and f.start_ms <= a.last_ts + TOL
            for f in drops
        ):
            n += 1
    return n


# -- what the data shows where the clean QC alerts are ----------------------------------------


def series(data: Data) -> dict[str, tuple[list[int], list[float | None], list[float | None]]]:
    out: dict[str, tuple[list[int], list[float | None], list[float | None]]] = {}
    for r in data.records:
        d = orjson.loads(r)
        ts, p25, p10 = out.setdefault(d["station"], ([], [], []))
        ts.append(d["ts"])
        p25.append(d.get("pm25"))
        p10.append(d.get("pm10"))
    return out


def evidence(data_series: dict[str, Any], a: AlertView) -> str:
    ts, p25, p10 = data_series.get(a.subject_id, ([], [], []))
    lo = next((i for i, t in enumerate(ts) if t >= a.first_ts - 48 * HOUR), len(ts))
    hi = next((i for i, t in enumerate(ts) if t > a.last_ts), len(ts))
    best = (0, 0.0, 0)
    i = lo
    while i < hi:  # the longest run of one repeated PM2.5 value around the alert
        j = i
        while j + 1 < hi and p25[j + 1] is not None and p25[j + 1] == p25[i]:
            j += 1
        if p25[i] is not None and j - i + 1 > best[0] and ts[j] >= a.first_ts - HOUR:
            best = (j - i + 1, float(p25[i]), ts[j] - ts[i])
        i = j + 1
    inside = [k for k in range(lo, hi) if ts[k] >= a.first_ts - HOUR]
    m25 = max((p25[k] for k in inside if p25[k] is not None), default=None)
    m10 = max((p10[k] for k in inside if p10[k] is not None), default=None)
    inv = sum(1 for k in inside if p25[k] is not None and p10[k] is not None and p25[k] > p10[k])
    parts = [
        f"flat {best[0]} readings at {best[1]:g} ({best[2] / HOUR:.1f} h)"
        if best[0] > 2
        else "no flat run"
    ]
    parts.append(f"max PM2.5 {m25:g}" if m25 is not None else "no PM2.5")
    if m10 is not None:
        parts.append(f"max PM10 {m10:g}, {inv} readings PM2.5 > PM10")
    return "; ".join(parts)


def _when(ms: int, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%Y-%m-%d %H:%M")


def show_clean(data: Data, alerts: list[AlertView], top: int) -> int:
    qc = [a for a in alerts if a.rule in QC_RULES]
    zone = "UTC+8" if data.tz is CST else "UTC"
    per = Counter((a.subject_id, a.rule) for a in qc)
    print(
        f"\n{data.name}: clean data, {len(qc)} QC alerts over {data.station_weeks:.0f} "
        f"station-weeks ({len(qc) / max(data.station_weeks, 1e-9):.3f} per station-week)"
    )
    for (sid, rule), n in per.most_common(top):
        print(f"  {n:5d}  {rule:10s} {sid}")
    if qc:
        print(f"  longest {min(top, len(qc))} ({zone}), and what the data shows there:")
        data_series = series(data)
        for a in sorted(qc, key=lambda a: (a.first_ts - a.last_ts, a.first_ts))[:top]:
            span = (a.last_ts - a.first_ts) / HOUR
            print(
                f"  {a.rule:10s} {a.subject_id:28s} {_when(a.first_ts, data.tz)} +{span:6.1f} h: "
                f"{evidence(data_series, a)}"
            )
    return len(qc)


# -- the spread over cities, years and networks ------------------------------------------------


def group_of(data: Data, subject: str, ts: int) -> str:
    """A city-year of the five cities (``Chengdu 2014``), else the dataset's district."""
    st = data.registry.stations.get(subject)
    city = st.district if st is not None else subject.split("/")[0]
    if data.tz is CST:
        return f"{city} {datetime.fromtimestamp(ts / 1000, CST).year}"
    return city


@dataclass
class Group:
    """Tallies of one city-year (or network), pooled over seeds."""

    faults: dict[str, Tally] = field(default_factory=lambda: {k: Tally() for k in FAULTS})
    exceed: Tally = field(default_factory=Tally)
    episode: Tally = field(default_factory=Tally)
    qc: int = 0
    station_weeks: float = 0.0


def _split(
    data: Data, alerts: list[AlertView], labels: list[Label]
) -> dict[str, tuple[list[AlertView], list[Label]]]:
    out: dict[str, tuple[list[AlertView], list[Label]]] = defaultdict(lambda: ([], []))
    for a in alerts:
        out[group_of(data, a.subject_id, a.first_ts)][0].append(a)
    for x in labels:
        out[group_of(data, x.subject_id, x.start_ms)][1].append(x)
    return out


def station_weeks_by_group(data: Data) -> dict[str, float]:
    """Stations x weeks of data in each group (a station counts where it has records)."""
    span: dict[tuple[str, str], list[int]] = {}
    for r in data.records:
        d = orjson.loads(r)
        key = (group_of(data, d["station"], d["ts"]), d["station"])
        s = span.setdefault(key, [d["ts"], d["ts"]])
        s[1] = d["ts"]
    out: dict[str, float] = defaultdict(float)
    for (g, _), (a, b) in span.items():
        out[g] += (b - a + HOUR) / WEEK
    return out


def print_spread(groups: dict[str, Group]) -> dict[str, list[float]]:
    """Per group: recall (precision) per fault kind, exceedance F1, episode recall, clean QC
    alerts per station-week; returns [min, max] of each over the groups that have it."""
    print("\nspread over cities, years and networks (recall / precision; drift within 72 h)")
    head = "".join(f"{k:>12s}" for k in FAULTS)
    print(f"{'group':16s}{head}{'exceed F1':>10s}{'episode R':>10s}{'clean QC/wk':>12s}")
    cols: dict[str, list[float]] = defaultdict(list)
    for name, g in sorted(groups.items()):
        cells = []
        for k, t in g.faults.items():
            p, r, _ = t.prf()
            cells.append(f"{_f(r):>5s} {_f(p):>5s} ")
            if r is not None:
                cols[f"{k}_recall"].append(r)
            if p is not None:
                cols[f"{k}_precision"].append(p)
        f1 = g.exceed.prf()[2]
        er = g.episode.prf()[1]
        qc = g.qc / g.station_weeks if g.station_weeks else None
        for key, v in (("exceedance_f1", f1), ("episode_recall", er), ("clean_qc", qc)):
            if v is not None:
                cols[key].append(v)
        print(f"{name:16s}{''.join(cells)}{_f(f1):>10s}{_f(er):>10s}{_f(qc, '.3f'):>12s}")
    spread = {k: [round(min(v), 4), round(max(v), 4)] for k, v in sorted(cols.items())}
    for k, (lo, hi) in spread.items():
        print(f"  {k:20s} {lo:.3f} .. {hi:.3f}")
    return spread


def _f(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def print_table(title: str, rows: dict[str, Tally]) -> None:
    print(f"\n{title}")
    print(
        f"{'':10s} {'labels':>6s} {'alerts':>6s} {'expl.':>5s} {'prec':>5s} {'recall':>6s} "
        f"{'f1':>5s} {'delay p50':>10s}"
    )
    for name, t in rows.items():
        p, r, f = t.prf()
        d = t.delay_s()
        print(
            f"{name:10s} {t.labels:6d} {t.alerts:6d} {t.explained:5d} {_f(p):>5s} {_f(r):>6s} "
            f"{_f(f):>5s} {_f(d, '.0f') + ' s' if d is not None else '-':>10s}"
        )


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="folder holding air/five-cities (default $CITYWATCH_DATA)")
    ap.add_argument("--seeds", type=parse_seeds, default=[1], help="fault seeds: 1-3 or 1,3")
    ap.add_argument("--quick", action="store_true", help="Chengdu 2014, 14 Aberdeen days, 1 seed")
    ap.add_argument("--cities", default=",".join(CITIES), help="five-cities subset")
    ap.add_argument("--years", help="five-cities years, e.g. 2014 or 2013,2014")
    ap.add_argument("--max-hours", type=int, help="only the first N hours of each dataset")
    ap.add_argument("--aberdeen-days", type=float, help="only the first N days of Aberdeen")
    ap.add_argument("--no-aberdeen", action="store_true")
    ap.add_argument("--top", type=int, default=12, help="clean QC alerts listed per dataset")
    args = ap.parse_args(argv)
    root = real_data_dir(args.data)
    if root is None or not (root / "air" / "five-cities").is_dir():
        print(
            "eval_air_real: no data: set CITYWATCH_DATA or --data to the folder holding "
            "air/five-cities and air/sensor-community-aberdeen",
            file=sys.stderr,
        )
        return 2
    cities = [c.strip() for c in args.cities.split(",") if c.strip()]
    years = [int(y) for y in args.years.split(",")] if args.years else None
    seeds = args.seeds
    ab_hours = int(args.aberdeen_days * 24) if args.aberdeen_days else args.max_hours
    if args.quick:
        cities, years, seeds = ["Chengdu"], years or [2014], seeds[:1]
        ab_hours = ab_hours or 14 * 24
    datasets = [load_five_cities(root, cities, years, args.max_hours)]
    if not args.no_aberdeen:
        datasets.append(load_aberdeen(root, ab_hours))
    settings = Settings.load()
    faults_total = {k: Tally() for k in FAULTS}
    exceed_total, episode_total = Tally(), Tally()
    qc_alerts, station_weeks = 0, 0.0
    records, wall = 0, 0.0
    dropout_hits = 0
    groups: dict[str, Group] = defaultdict(Group)
    t_start = time.perf_counter()
    with embedded_or_url(settings.redis_url) as url:
        for data in datasets:
            print(
                f"{data.name}: {len(data.records):,} records, {len(data.registry.stations)} "
                f"stations, {data.station_weeks:.0f} station-weeks",
                file=sys.stderr,
                flush=True,
            )
            clean = run_flow(data, data.records, url, settings, "clean")
            records += clean.records
            wall += clean.wall_s
            print(
                f"  clean: {clean.records:,} records in {clean.wall_s:.1f} s, "
                f"{len(clean.alerts)} alerts",
                file=sys.stderr,
                flush=True,
            )
            exceed, episodes = derived_labels(data, hourly_aqi(data))
            ex = label_tally("air.exceedance", clean.alerts, exceed)
            ep = label_tally("air.episode", clean.alerts, episodes, EPISODE_DEADLINE)
            exceed_total.add(ex)
            episode_total.add(ep)
            qc_alerts += show_clean(data, clean.alerts, args.top)
            station_weeks += data.station_weeks
            for g, sw in station_weeks_by_group(data).items():
                groups[g].station_weeks += sw
            for g, (al, lab) in _split(data, clean.alerts, exceed).items():
                groups[g].exceed.add(label_tally("air.exceedance", al, lab))
            for g, (al, lab) in _split(data, clean.alerts, episodes).items():
                groups[g].episode.add(label_tally("air.episode", al, lab, EPISODE_DEADLINE))
            for a in clean.alerts:
                if a.rule in QC_RULES:
                    groups[group_of(data, a.subject_id, a.first_ts)].qc += 1
            print_table(
                f"{data.name}: labels derived from the data (clean run)",
                {"exceedance": ex, "episode": ep},
            )
            clean_index = _index(clean.alerts)
            counts = {k: max(MIN_COUNTS[k], round(RATES[k] * data.station_weeks)) for k in RATES}
            per_data = {k: Tally() for k in FAULTS}
            for seed in seeds:
                injected = inject(
                    data.records, data.registry, seed=seed, kinds=list(RATES), counts=counts
                )
                faulted = run_flow(data, injected.records, url, settings, f"seed{seed}")
                records += faulted.records
                wall += faulted.wall_s
                print(
                    f"  seed {seed}: {len(injected.labels)} labels "
                    f"({dict(Counter(f.kind for f in injected.faults))}), "
                    f"{faulted.records:,} records in {faulted.wall_s:.1f} s, "
                    f"{len(faulted.alerts)} alerts",
                    file=sys.stderr,
                    flush=True,
                )
                for kind, rule in FAULTS.items():
                    deadline = DRIFT_DEADLINE if kind == "drift" else None
                    t = fault_tally(rule, faulted.alerts, clean_index, injected.labels, deadline)
                    per_data[kind].add(t)
                    faults_total[kind].add(t)
                    for g, (al, lab) in _split(data, faulted.alerts, injected.labels).items():
                        groups[g].faults[kind].add(
                            fault_tally(rule, al, clean_index, lab, deadline)
                        )
                dropout_hits += dropout_alerts(
                    faulted.alerts, clean_index, injected.labels, injected.faults
                )
            print_table(
                f"{data.name}: injected faults, seeds {seeds} (drift: within 72 h)", per_data
            )
    print_table("all data: injected faults", faults_total)
    print_table(
        "all data: labels derived from the data",
        {"exceedance": exceed_total, "episode": episode_total},
    )
    spread = print_spread(groups)
    print(f"\nalerts during dropouts (records removed), not explained by the data: {dropout_hits}")
    print(
        f"flow: {records:,} records in {wall:.1f} s of flow runs; "
        f"whole benchmark {time.perf_counter() - t_start:.0f} s"
    )
    result = {
        "fault_recall": {k: _round(t.prf()[1]) for k, t in faults_total.items()},
        "fault_precision": {k: _round(t.prf()[0]) for k, t in faults_total.items()},
        "episode_recall": _round(episode_total.prf()[1]),
        "exceedance_f1": _round(exceed_total.prf()[2]),
        "clean_qc_alerts_per_station_week": round(qc_alerts / station_weeks, 4),
        "records_per_s": round(records / wall) if wall else None,
        "spread": spread,
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
