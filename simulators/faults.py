"""Seeded, labelled sensor faults added to recorded events: ``citywatch inject``.

Faults are placed in **time**, per station, and change whatever readings the station has in
the window, so they respect its cadence: a one-hour spike is one reading of an hourly station
and thirty of a two-minute one. Each fault becomes one :class:`simulators.labels.Label` in the
schema of ``docs/evaluation.md`` (``start_ms`` = the first changed reading, ``end_ms`` = the
last one plus the station's reporting interval), except where no rule should alert (see
below); every fault, labelled or not, is also listed in the manifest (:class:`Fault`).

========== ================ ================================================================
kind       label            what changes
========== ================ ================================================================
spike      ``air.spike``    1 h: PM2.5 (and PM10) x ``factor`` 3-6; placed where the hour's
                            PM2.5 averages >= 10 µg/m³, so it stands out by 20 µg/m³ or more
stuck      ``air.stuck``    6-24 h: every pollutant channel repeats the window's first reading
drift      ``air.drift``    3-6 days: PM2.5 x (1 + ``final_gain`` x elapsed share), gain
                            0.5-0.8 at the end; then the sensor is recalibrated (back to true)
range      ``air.range``    1-6 h: PM2.5 reads an impossible ``value`` (9999 or -99), the
                            ``check`` is ``gross_range``
dropout    none             2-24 h: the station's records are removed. No rule reports a
                            silent station, so a label would only count as a miss; it is in
                            the manifest, and the harness checks it raises nothing
gps_jump   none             one fix of a vehicle moves 5-30 km away (inside the region). A
                            jump is not a stop: ``vehicle.dwell`` must neither start nor end
                            a stay on it, so any alert it causes is a false alert
========== ================ ================================================================

Placement: a station (vehicle) and a start are drawn uniformly, after a lead-in of
``min(2 days, 10 % of the span)`` (models learn first), at least 12 h away from any other
fault of the same station; a window with too few readings (none for spike and range, under
half the expected ones for stuck and drift) is redrawn, up to 200 times, else the fault is
given up and counted. Counts per kind: ``count`` or ``round(rate x entity-weeks)``.

Deterministic: the same records, registry, seed and counts give the same bytes.

>>> from citywatch.registry import Registry, Station
>>> reg = Registry(stations={"A": Station(id="A", lat=30.6, lon=104.0, interval_s=3600)})
>>> recs = [b'{"kind":"air","ts":%d,"station":"A","pm25":40.0}' % (1388505600000 + h * 3600000)
...         for h in range(24 * 20)]
>>> out = inject(recs, reg, seed=7, counts={"spike": 1})
>>> lab = out.labels[0]
>>> lab.rule, lab.end_ms - lab.start_ms, 120.0 <= lab.params["factor"] * 40.0 <= 240.0
('air.spike', 3600000, True)
>>> inject(recs, reg, seed=7, counts={"spike": 1}).records == out.records
True
"""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import orjson

from citywatch.errors import InputError
from citywatch.geo import offset
from citywatch.registry import Registry
from simulators.labels import Label
from simulators.seeds import py_rng

__all__ = ["DEFAULT_RATES", "KINDS", "Fault", "Injected", "inject"]

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
WEEK_MS: Final = 7 * DAY_MS
KINDS: Final[tuple[str, ...]] = ("spike", "stuck", "drift", "range", "dropout", "gps_jump")
#: Faults per entity-week (station-weeks; vehicle-weeks for gps_jump) when no count is given.
DEFAULT_RATES: Final[Mapping[str, float]] = {
    "spike": 0.1,
    "stuck": 0.03,
    "drift": 0.01,
    "range": 0.03,
    "dropout": 0.03,
    "gps_jump": 0.5,
}
#: The rule a correct model alerts with, per labelled kind.
RULE: Final = {
    "spike": "air.spike",
    "stuck": "air.stuck",
    "drift": "air.drift",
    "range": "air.range",
}
POLLUTANTS: Final = ("pm25", "pm10", "no2", "so2", "o3", "co")
GUARD_MS: Final = 12 * HOUR_MS
TRIES: Final = 200
SPIKE_BASE: Final = 10.0


class Fault(msgspec.Struct, frozen=True, kw_only=True):
    """One injected fault, labelled or not (the manifest ``citywatch inject`` writes)."""

    kind: str
    subject_kind: str
    subject_id: str
    start_ms: int
    end_ms: int
    readings: int
    labelled: bool
    params: dict[str, Any] = msgspec.field(default_factory=dict)


@dataclass
class Injected:
    """The changed records (time order kept), the labels, the manifest and what was not
    placed (kind -> count)."""

    records: list[bytes]
    labels: list[Label]
    faults: list[Fault]
    unplaced: dict[str, int] = field(default_factory=dict)


class _Track:
    """One entity's records: times (sorted) and their indexes in the record list."""

    __slots__ = ("busy", "idx", "interval_ms", "ts")

    def __init__(self) -> None:
        self.ts: list[int] = []
        self.idx: list[int] = []
        self.busy: list[tuple[int, int]] = []
        self.interval_ms = HOUR_MS

    def window(self, t0: int, t1: int) -> range:
        return range(bisect.bisect_left(self.ts, t0), bisect.bisect_left(self.ts, t1))

    def free(self, t0: int, t1: int) -> bool:
        return all(t1 + GUARD_MS <= a or t0 >= b + GUARD_MS for a, b in self.busy)


def _tracks(docs: list[Any], kind: str, field_: str, registry: Registry) -> dict[str, _Track]:
    tracks: dict[str, _Track] = {}
    for i, d in enumerate(docs):
        if d is None or d.get("kind") != kind:
            continue
        key, ts = d.get(field_), d.get("ts")
        if isinstance(key, str) and isinstance(ts, int):
            t = tracks.setdefault(key, _Track())
            t.ts.append(ts)
            t.idx.append(i)
    for key, t in tracks.items():
        order = sorted(range(len(t.ts)), key=t.ts.__getitem__)
        t.ts = [t.ts[j] for j in order]
        t.idx = [t.idx[j] for j in order]
        st = registry.stations.get(key) if kind == "air" else None
        if st is not None and st.interval_s:
            t.interval_ms = int(st.interval_s * 1000)
        else:
            steps = [b - a for a, b in itertools.pairwise(t.ts) if b > a]
            t.interval_ms = int(statistics.median(steps)) if steps else HOUR_MS
    return dict(sorted(tracks.items()))


def _duration(kind: str, rng: Any) -> int:
    if kind == "spike":
        return HOUR_MS
    if kind == "stuck":
        return int(rng.uniform(6, 24) * HOUR_MS)
    if kind == "drift":
        return int(rng.uniform(3, 6) * DAY_MS)
    if kind == "range":
        return int(rng.uniform(1, 6) * HOUR_MS)
    return int(rng.uniform(2, 24) * HOUR_MS)  # dropout


def inject(
    records: Sequence[bytes],
    registry: Registry,
    *,
    seed: int,
    kinds: Sequence[str] = KINDS,
    counts: Mapping[str, int] | None = None,
    rates: Mapping[str, float] | None = None,
) -> Injected:
    """Add faults of ``kinds`` to time-ordered ``records`` (see the module doc).

    ``counts`` (kind -> number) wins over ``rates`` (kind -> faults per entity-week, default
    :data:`DEFAULT_RATES`); a kind in neither gets its default rate.
    """
    bad = sorted(set(kinds) - set(KINDS))
    if bad:
        msg = f"--kinds: unknown {', '.join(bad)} (one of {', '.join(KINDS)})"
        raise InputError(msg)
    docs: list[Any] = []
    for raw in records:
        try:
            d = orjson.loads(raw)
        except orjson.JSONDecodeError:
            d = None
        docs.append(d if isinstance(d, dict) else None)
    stations = _tracks(docs, "air", "station", registry)
    vehicles = _tracks(docs, "gps", "vehicle", registry)
    times = [d["ts"] for d in docs if d is not None and isinstance(d.get("ts"), int)]
    if not times:
        msg = "inject: no record with a ts"
        raise InputError(msg)
    start, end = min(times), max(times) + 1
    lead = min(2 * DAY_MS, (end - start) // 10)
    weeks = (end - start) / WEEK_MS
    out = Injected(records=[], labels=[], faults=[])
    removed: set[int] = set()
    changed: dict[int, dict[str, Any]] = {}
    for kind in KINDS:
        if kind not in kinds:
            continue
        tracks = vehicles if kind == "gps_jump" else stations
        if counts is not None and kind in counts:
            n = counts[kind]
        else:
            rate = (rates or {}).get(kind, DEFAULT_RATES[kind])
            n = round(rate * len(tracks) * weeks)
        rng = py_rng(seed, "inject", kind)
        keys = list(tracks)
        for _ in range(n):
            fault = None
            for _try in range(TRIES if keys else 0):
                key = rng.choice(keys)
                if kind == "gps_jump":
                    fault = _gps_jump(key, tracks[key], docs, registry, rng, changed)
                else:
                    fault = _air(kind, key, tracks[key], docs, start + lead, end, rng, changed)
                if fault is not None:
                    break
            if fault is None:
                out.unplaced[kind] = out.unplaced.get(kind, 0) + 1
                continue
            if kind == "dropout":
                t = tracks[fault.subject_id]
                removed.update(t.idx[j] for j in t.window(fault.start_ms, fault.end_ms))
            out.faults.append(fault)
            if fault.labelled:
                out.labels.append(_label(fault, registry))
    for i, raw in enumerate(records):
        if i in removed:
            continue
        out.records.append(orjson.dumps(changed[i]) if i in changed else raw)
    out.labels.sort(key=lambda x: (x.start_ms, x.rule, x.subject_id))
    out.faults.sort(key=lambda f: (f.start_ms, f.kind, f.subject_id))
    return out


def _air(
    kind: str,
    key: str,
    t: _Track,
    docs: list[Any],
    lo: int,
    hi: int,
    rng: Any,
    changed: dict[int, dict[str, Any]],
) -> Fault | None:
    dur = _duration(kind, rng)
    if hi - dur <= lo:
        return None
    t0 = int(rng.uniform(lo, hi - dur))
    t1 = t0 + dur
    if not t.free(t0, t1):
        return None
    js = t.window(t0, t1)
    rows = [docs[t.idx[j]] for j in js]
    pm = [r.get("pm25") for r in rows]
    pm_ok = [v for v in pm if isinstance(v, int | float)]
    expected = max(1, dur // max(t.interval_ms, 1))
    if kind in ("spike", "range") and not pm_ok:
        return None
    if kind in ("stuck", "drift") and len(pm_ok) < max(2, expected // 2):
        return None
    if kind == "spike" and statistics.fmean(pm_ok) < SPIKE_BASE:
        return None
    if kind == "dropout" and not js:
        return None
    first, last = t.ts[js[0]], t.ts[js[-1]]
    params: dict[str, Any] = {}
    if kind == "spike":
        factor = round(rng.uniform(3.0, 6.0), 2)
        params = {"pollutant": "pm25", "factor": factor}
        for j, r in zip(js, rows, strict=True):
            changed[t.idx[j]] = _scaled(r, ("pm25", "pm10"), factor)
    elif kind == "stuck":
        head = next(r for r in rows if isinstance(r.get("pm25"), int | float))
        frozen = {c: head[c] for c in POLLUTANTS if isinstance(head.get(c), int | float)}
        params = {"channels": sorted(frozen), "value": frozen.get("pm25")}
        for j, r in zip(js, rows, strict=True):
            changed[t.idx[j]] = {**r, **{c: v for c, v in frozen.items() if r.get(c) is not None}}
    elif kind == "drift":
        gain = round(rng.uniform(0.5, 0.8), 3)
        params = {
            "channel": "pm25",
            "final_gain": gain,
            "rate_per_h": round(gain / (dur / HOUR_MS), 6),
        }
        for j, r in zip(js, rows, strict=True):
            share = (t.ts[j] - t0) / dur
            changed[t.idx[j]] = _scaled(r, ("pm25",), 1.0 + gain * share)
    elif kind == "range":
        value = rng.choice((9999.0, -99.0))
        params = {"check": "gross_range", "channel": "pm25", "value": value}
        for j, r in zip(js, rows, strict=True):
            if r.get("pm25") is not None:
                changed[t.idx[j]] = {**r, "pm25": value}
    else:  # dropout: removed by the caller; the window is the records' own span
        params = {"records": len(js)}
        first, last = t0, t1 - t.interval_ms
    t.busy.append((t0, t1))
    return Fault(
        kind=kind,
        subject_kind="station",
        subject_id=key,
        start_ms=first,
        end_ms=last + t.interval_ms,
        readings=len(js),
        labelled=kind in RULE,
        params=params,
    )


def _scaled(doc: dict[str, Any], channels: Sequence[str], k: float) -> dict[str, Any]:
    out = dict(doc)
    for c in channels:
        v = doc.get(c)
        if isinstance(v, int | float):
            out[c] = round(v * k, 2)
    return out


def _gps_jump(
    key: str,
    t: _Track,
    docs: list[Any],
    registry: Registry,
    rng: Any,
    changed: dict[int, dict[str, Any]],
) -> Fault | None:
    if len(t.ts) < 3:
        return None
    j = rng.randrange(1, len(t.ts) - 1)
    i = t.idx[j]
    doc = docs[i]
    if i in changed or not isinstance(doc.get("lat"), int | float):
        return None
    dist = rng.uniform(5_000.0, 30_000.0)
    bearing = rng.uniform(0.0, 360.0)
    lat, lon = offset(
        doc["lat"],
        doc["lon"],
        dist * math.cos(math.radians(bearing)),
        dist * math.sin(math.radians(bearing)),
    )
    box = registry.derived_region()
    if box is not None and not (box[0] <= lat <= box[1] and box[2] <= lon <= box[3]):
        return None
    changed[i] = {**doc, "lat": round(lat, 6), "lon": round(lon, 6)}
    return Fault(
        kind="gps_jump",
        subject_kind="vehicle",
        subject_id=key,
        start_ms=t.ts[j],
        end_ms=t.ts[j],
        readings=1,
        labelled=False,
        params={
            "from": [doc["lat"], doc["lon"]],
            "to": [round(lat, 6), round(lon, 6)],
            "distance_m": round(dist),
        },
    )


def _label(f: Fault, registry: Registry) -> Label:
    st = registry.stations.get(f.subject_id)
    where = {"lat": st.lat, "lon": st.lon, "district": st.district} if st else {}
    return Label(
        rule=RULE[f.kind],
        subject_kind=f.subject_kind,
        subject_id=f.subject_id,
        start_ms=f.start_ms,
        end_ms=f.end_ms,
        params={**f.params, **where, "injected": f.kind},
    )
