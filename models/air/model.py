"""The air-quality model the flow registers: QC, AQI, faults, local sources, drift, episodes.

One :class:`AirModel` consumes ``air`` events and emits the six air rules:

============== =============== ===========================================================
rule           subject         fires when
============== =============== ===========================================================
air.range      station         ``range_m`` of the last ``range_n`` readings fail the gross
                               range test (the analyser reports impossible values)
air.stuck      station         a channel is flat for an improbable run (quantization-aware),
                               or several channels freeze together
air.exceedance station         the station's hourly AQI is above 100 (轻度 yellow, 中度 orange,
                               重度/严重 red) for ``exceed_hours`` clock hours
air.spike      station         a local source: the station's PM2.5 stands above the median
                               of its neighbours far more than usual, while the neighbours
                               (upwind ones first) do not rise with it
air.drift      station         the station's level, or its PM2.5/PM10 ratio, walks away from
                               the neighbours' over hours (fast-minus-slow EWMAs)
air.episode    district        most healthy stations of the district rise together
============== =============== ===========================================================

A station with an active ``air.range`` or ``air.stuck`` fault is *muted*: its readings leave
the AQI and the neighbour medians, and its spike/exceedance/drift alerts are cleared and
stay quiet until the fault clears (the alert engine inhibits too; the signals are right on
their own).

Routing. Cross-station logic needs many stations at once, so the model keys its state by
*area*, not by station: ``partition="city"`` (default) puts every station under one key
``"air"`` (2,000 stations at one reading a minute are 33 readings/s: one worker is plenty);
``partition="district"`` keys by ``"air:{district}"`` and restricts neighbours to the same
district, for a flow that wants to spread air over workers. Per-station state is a small
slotted object inside the area state (about 1.75 KiB pickled, see :meth:`station_state_bytes`).

Signals are emitted on every change and then re-sent every ``refresh_ms`` of event time
while a condition holds, so the engine's quiet-period auto-resolve never ends a live alert;
a clear (``active=False``) is sent when it ends.

Score meanings: range/stuck 1.0 (a fault is certain once flagged); spike and drift
``z**2/(z**2+z_half**2)``-style scores of the residual (0.5 at the alarm threshold); exceedance
``min(1, AQI/500)``; episode the share of stations elevated.

>>> from citywatch.events import Air
>>> from citywatch.registry import Registry, Station
>>> reg = Registry(stations={"S1": Station(id="S1", lat=32.0, lon=120.9, district="崇川区")})
>>> m = AirModel(reg)
>>> key = m.route(Air(ts=1_793_548_800_000, station="S1"))
>>> state = m.new_state(key)
>>> sigs = []
>>> for i in range(5):
...     sigs += m.update(state, Air(ts=1_793_548_800_000 + i * 60_000, station="S1",
...                                 pm25=30.0 + i, pm10=9999.0))
>>> [(s.rule, s.active, s.subject.id) for s in sigs]
[('air.range', True, 'S1')]
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass
from typing import Any, Final, Literal

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Air, Event
from citywatch.geo import grid_id
from citywatch.registry import Registry, Station
from models.air.aqi import (
    HOUR_MS,
    AqiAccumulator,
    AqiResult,
    BreakpointTable,
    category_of,
    hourly_aqi,
    table_for,
)
from models.air.drift import DriftTracker
from models.air.episode import DEFAULT_EPISODE, EpisodeConfig, EpisodeDetector
from models.air.neighbours import NeighbourIndex, median
from models.air.qc import CHANNELS, DEFAULT_QC, Flag, QcConfig, StationQC
from models.base import Model
from models.robust_z import RobustZ

__all__ = ["AirConfig", "AirModel", "AirState", "StationState"]

MINUTE_MS: Final = 60_000
_FAIL: Final = int(Flag.FAIL)
_MISSING: Final = int(Flag.MISSING)

Partition = Literal["city", "district"]


@dataclass(frozen=True, slots=True)
class AirConfig:
    """Every parameter of the air model (documented in ``docs/models/air.md``)."""

    qc: QcConfig = DEFAULT_QC
    episode: EpisodeConfig = DEFAULT_EPISODE
    #: "auto" picks the table in force at each hour's event time
    table: str = "auto"
    # faults
    range_m: int = 3
    range_n: int = 5
    range_clear: int = 10
    #: PM2.5 above PM10 in ``inversion_m`` of the last ``inversion_n`` readings is a fault
    #: (``air.range``, check pm25_gt_pm10); a single inverted reading is only SUSPECT
    inversion_m: int = 15
    inversion_n: int = 30
    inversion_clear: int = 15
    stuck_clear: int = 3
    # neighbours
    k_neighbours: int = 6
    radius_m: float = 40_000.0
    min_neighbours: int = 2
    max_age_ms: int = 5 * MINUTE_MS
    # exceedance
    exceed_hours: int = 1
    #: ``on_watermark`` closes an hour this long after its end if no reading did
    hour_grace_ms: int = 2 * MINUTE_MS
    clear_hours: int = 1
    # local source (spike)
    spike_z: float = 3.5
    spike_z_off: float = 2.0
    spike_min_excess: float = 40.0
    spike_m: int = 3
    spike_n: int = 4
    spike_clear: int = 5
    #: an isolated station's rise is not a local source while this share of the city is up
    isolated_regional_share: float = 0.2
    #: the local-source baseline follows the last hour or so: a plume rises within minutes,
    #: a drifting gain over hours (and is the drift tracker's job)
    spike_half_life: float = 60.0
    # drift
    drift_fast_half_life: float = 120.0
    drift_slow_half_life: float = 2880.0
    drift_warmup: int = 90
    drift_clip: float = 1.0
    #: alarm on |fast - slow| of the log ratio to same-district neighbours ...
    drift_threshold: float = 0.25
    #: ... or, for a station with no neighbour in its district, to the nearest ones (the
    #: districts' own weather differs, so the ratio wanders more)
    drift_threshold_far: float = 0.45
    #: the slow reference learns only while the fast mean is within this of it
    drift_band: float = 0.2
    #: channel-ratio drift: log(PM2.5/PM10) against the neighbours' (one channel drifting;
    #: the station's own weather and the city's cancel in the ratio)
    ratio_drift_threshold: float = 0.12
    ratio_half_life: float = 10.0
    drift_for: int = 60
    drift_clear: int = 60
    # station anomaly for episodes and the regional check: the short-term log level relative
    # to the city reference (median of all stations), minus its own slow baseline
    level_half_life: float = 5.0
    anomaly_half_life: float = 720.0
    anomaly_clip: float = 0.1
    level_warmup: int = 60
    #: the city reference is this quantile of the stations' levels: a low one stays with the
    #: clean part of the city even when an episode covers most of it
    reference_quantile: float = 0.3
    # signals
    refresh_ms: int = 5 * MINUTE_MS
    partition: Partition = "city"


DEFAULT_AIR: Final = AirConfig()


class StationState:
    """Everything the model keeps about one station (flat, slotted, picklable)."""

    __slots__ = (
        "acc",
        "drift",
        "drift_on",
        "drift_streak",
        "exc_aqi",
        "exc_level",
        "exc_streak",
        "fast",
        "inv_hist",
        "inv_on",
        "last_sent",
        "level_n",
        "muted",
        "q",
        "q_n",
        "q_ts",
        "qc",
        "range_hist",
        "range_on",
        "ratio_drift",
        "rel",
        "rel_base",
        "rel_r",
        "resid",
        "spike_hist",
        "spike_on",
        "spike_quiet",
        "stuck_ok",
        "stuck_on",
        "ts",
        "v",
        "v_ts",
    )

    def __init__(self, cfg: AirConfig = DEFAULT_AIR) -> None:
        self.ts = -1
        self.qc = StationQC(cfg.qc)
        self.acc = AqiAccumulator()
        self.range_hist = 0
        self.range_on = False
        self.inv_hist = 0
        self.inv_on = False
        self.stuck_on = False
        self.stuck_ok = 0
        self.muted = False
        self.exc_level = 0  # 0 = off, else the alert level value
        self.exc_aqi = 0  # the last hourly AQI (for refreshed signals)
        self.exc_streak = 0
        # latest usable log1p(PM2.5) and its time, for neighbours
        self.v = 0.0
        self.v_ts = -(10**15)
        # short-term log level, its offset to the city reference and that offset's baseline
        self.fast = 0.0
        self.rel = 0.0
        self.rel_base = 0.0
        #: the last anomaly relative to the neighbours' (local source and drift input)
        self.rel_r = 0.0
        self.level_n = 0
        # residual to the neighbour median: robust baseline and scale
        self.resid = RobustZ(cfg.spike_half_life, warmup=60, clip=2.0, min_scale=0.08)
        self.spike_hist = 0
        self.spike_on = False
        self.spike_quiet = 0
        self.drift = DriftTracker(
            cfg.drift_fast_half_life,
            cfg.drift_slow_half_life,
            warmup=cfg.drift_warmup,
            clip=cfg.drift_clip,
            band=cfg.drift_band,
            threshold=cfg.drift_threshold,
        )
        # short-term log(PM2.5/PM10) and its drift against the neighbours'
        self.q = 0.0
        self.q_n = 0
        self.q_ts = -(10**15)
        self.ratio_drift = DriftTracker(
            cfg.drift_fast_half_life,
            cfg.drift_slow_half_life,
            warmup=cfg.drift_warmup,
            clip=cfg.drift_clip,
            threshold=cfg.ratio_drift_threshold,
            band=cfg.ratio_drift_threshold * 0.5,
        )
        self.drift_on = False
        self.drift_streak = 0
        # rule -> event time of the last active signal sent (for refresh)
        self.last_sent: dict[str, int] = {}

    @property
    def anomaly(self) -> float:
        """How far the station's level relative to the city stands above its usual (log units).

        ``(fast - city reference) - baseline``: near 0 on an ordinary day whatever the weather
        (the weather moves every station), 0.69 when the station reads twice its usual share.
        0.0 during warm-up.
        """
        return self.rel - self.rel_base if self.level_n >= 60 else 0.0


class AirState:
    """State of one area key: its stations and its districts' episode detectors."""

    __slots__ = ("city_up", "episodes", "ref", "ref_next_ms", "stations")

    def __init__(self) -> None:
        self.stations: dict[str, StationState] = {}
        self.episodes: dict[str, EpisodeDetector] = {}
        #: city reference: a low quantile of healthy stations' short-term log levels
        self.ref: float | None = None
        self.ref_next_ms = 0
        #: share of the city's stations whose anomaly is up (regional context for isolated ones)
        self.city_up = 0.0


_LEVEL_OF_CATEGORY: Final = {3: Level.YELLOW, 4: Level.ORANGE, 5: Level.RED, 6: Level.RED}


class AirModel(Model):
    """Air-quality detection for every station of the registry (see the module docstring)."""

    name = "air"
    version = "1"
    kinds = frozenset({"air"})

    def __init__(self, registry: Registry, config: AirConfig | None = None) -> None:
        cfg = config or DEFAULT_AIR
        self.cfg = cfg
        #: One state for the city (``partition="city"``): one shard is all the flow needs.
        self.shards = 1 if cfg.partition == "city" else 0
        self.stations: dict[str, Station] = dict(registry.stations)
        group = (lambda s: s.district) if cfg.partition == "district" else None
        self.index = NeighbourIndex.build(
            self.stations.values(), k=cfg.k_neighbours, radius_m=cfg.radius_m, same_group=group
        )
        self._grid = {s.id: grid_id(s.lat, s.lon) for s in self.stations.values()}
        # per district: the other districts' stations next to its own (the episode's ring)
        ring: dict[str, set[str]] = {}
        for sid, nbs in self.index.neighbours.items():
            d = self.stations[sid].district
            ring.setdefault(d, set()).update(n for n, _, _ in nbs if self.stations[n].district != d)
        self._ring = {d: tuple(sorted(ids)) for d, ids in ring.items()}
        # per station: (neighbour id, bearing to it, whether it is in the same district)
        self._nbs = {
            sid: tuple(
                (nid, bearing, self.stations[nid].district == self.stations[sid].district)
                for nid, _dist, bearing in self.index.of(sid)
            )
            for sid in self.stations
        }
        self._by_district: dict[str, list[str]] = {}
        for s in self.stations.values():
            self._by_district.setdefault(s.district, []).append(s.id)
        self._decay = (
            1.0 - 0.5 ** (1.0 / cfg.level_half_life),
            1.0 - 0.5 ** (1.0 / cfg.anomaly_half_life),
        )
        self._range_window = (1 << cfg.range_n) - 1
        self._range_clear = (1 << cfg.range_clear) - 1
        self._range_keep = (1 << max(cfg.range_n, cfg.range_clear)) - 1
        self._inv_window = (1 << cfg.inversion_n) - 1
        self._inv_clear = (1 << cfg.inversion_clear) - 1
        self._inv_keep = (1 << max(cfg.inversion_n, cfg.inversion_clear)) - 1
        self._a_ratio = 1.0 - 0.5 ** (1.0 / cfg.ratio_half_life)
        self._fixed_table: BreakpointTable | None = None
        if cfg.table != "auto":
            from models.air.aqi import TABLES

            names = {t.name: t for t in TABLES}
            if cfg.table not in names:
                msg = f"table: {cfg.table!r} is not 'auto' or one of {sorted(names)}"
                raise ValueError(msg)
            self._fixed_table = names[cfg.table]

    # -- Model API -------------------------------------------------------------------------

    def route(self, event: Event) -> str | None:
        if type(event) is not Air:
            return None
        if self.cfg.partition == "city":
            return "air"
        st = self.stations.get(event.station)
        return f"air:{st.district if st is not None else '?'}"

    def new_state(self, key: str) -> AirState:
        return AirState()

    def update(self, state: AirState, event: Event) -> list[Signal]:
        if type(event) is not Air:
            return []
        cfg = self.cfg
        sid = event.station
        st = state.stations.get(sid)
        if st is None:
            st = state.stations[sid] = StationState(cfg)
        ts = event.ts
        if ts <= st.ts:
            return []  # duplicate or out of order for this station: ignore
        st.ts = ts
        out: list[Signal] = []
        values = (event.pm25, event.pm10, event.no2, event.so2, event.o3, event.co)
        res = st.qc.check(ts, values, cfg.qc)
        flags = res.flags

        # -- faults ---------------------------------------------------------------------------
        was_range = "air.range" in st.last_sent
        hist = ((st.range_hist << 1) | (1 if res.range_fail else 0)) & self._range_keep
        st.range_hist = hist
        if not st.range_on:
            st.range_on = (hist & self._range_window).bit_count() >= cfg.range_m
        elif hist & self._range_clear == 0:
            st.range_on = False
        hist = ((st.inv_hist << 1) | (1 if res.inverted else 0)) & self._inv_keep
        st.inv_hist = hist
        if not st.inv_on:
            st.inv_on = (hist & self._inv_window).bit_count() >= cfg.inversion_m
        elif hist & self._inv_clear == 0:
            st.inv_on = False
        # PM2.5 > PM10 means one of the two channels is wrong. When PM2.5 itself stands well
        # above the neighbours' (or drifts), the PM2.5 channel reads high: that is the drift
        # tracker's finding, not a PM10 fault; otherwise report the inversion.
        inv_alarm = st.inv_on and (
            was_range or (res.inverted and not st.drift_on and st.rel_r < cfg.drift_threshold)
        )
        if st.range_on or inv_alarm:
            if not was_range or ts - st.last_sent.get("air.range", ts) >= cfg.refresh_ms:
                out.append(self._range_signal(st, sid, ts, values, res.range_fail, not was_range))
        elif was_range:
            out.append(self._clear(st, sid, "air.range", ts))
        if res.stuck:
            st.stuck_ok = 0
            if not st.stuck_on:
                st.stuck_on = True
                out.append(
                    self._signal(
                        st,
                        sid,
                        "air.stuck",
                        ts,
                        True,
                        Level.BLUE,
                        1.0,
                        "空气站数据恒定不变",
                        {"channels": list(res.stuck), "values": _vals(values, res.stuck)},
                    )
                )
            else:
                out.extend(
                    self._refresh(
                        st,
                        sid,
                        "air.stuck",
                        ts,
                        Level.BLUE,
                        1.0,
                        "空气站数据恒定不变",
                        {"channels": list(res.stuck)},
                    )
                )
        elif st.stuck_on and any(f != _MISSING for f in flags):
            st.stuck_ok += 1
            if st.stuck_ok >= cfg.stuck_clear:
                st.stuck_on = False
                out.append(self._clear(st, sid, "air.stuck", ts))
        # a persistent inversion is reported but does not mute: PM2.5 > PM10 is SUSPECT, the
        # readings stay usable (most often the PM10 channel is the faulty one)
        muted = st.range_on or st.stuck_on
        if muted and not st.muted:
            out.extend(self._mute(st, sid, ts))
        st.muted = muted

        # -- AQI and exceedance ---------------------------------------------------------------
        clean = (
            values
            if _FAIL not in flags
            else tuple(None if f >= _FAIL else v for v, f in zip(values, flags, strict=True))
        )
        for hour in st.acc.add(ts, clean):
            table = self._fixed_table or table_for(hour.start_ms)
            out.extend(self._exceedance(st, sid, ts, hourly_aqi(hour.means, table)))
        if st.exc_level and not muted and not st.drift_on:
            aqi = st.exc_aqi
            out.extend(
                self._refresh(
                    st,
                    sid,
                    "air.exceedance",
                    ts,
                    Level(st.exc_level),
                    min(1.0, aqi / 500),
                    f"空气质量{category_of(aqi).name_zh}(AQI {aqi})",
                    {"aqi": aqi, "category": category_of(aqi).name_zh},
                )
            )

        # -- cross-station ----------------------------------------------------------------------
        pm25 = clean[0]
        if pm25 is None or muted:
            return out
        v = math.log1p(pm25) if pm25 > 0.0 else 0.0
        st.v, st.v_ts = v, ts
        stations = state.stations
        if ts >= state.ref_next_ms:
            self._update_reference(state, ts)
        a_fast, a_base = self._decay
        n = st.level_n + 1
        st.level_n = n
        st.fast = v if n == 1 else st.fast + (a_fast if n > 5 else 1.0 / n) * (v - st.fast)
        ref = state.ref
        if ref is not None:
            st.rel = rel = st.fast - ref
            e = rel - st.rel_base
            if n <= cfg.level_warmup:
                st.rel_base += e / n
            else:
                c = cfg.anomaly_clip
                st.rel_base += a_base * (c if e > c else -c if e < -c else e)
        pm10 = clean[1]
        if pm10 is not None and pm10 > 0.0 and not st.inv_on and not res.inverted:
            q = v - math.log1p(pm10)
            qn = st.q_n + 1
            st.q_n = qn
            st.q = q if qn == 1 else st.q + (self._a_ratio if qn > 10 else 1.0 / qn) * (q - st.q)
            st.q_ts = ts
        vals: list[float] = []
        qs: list[float] = []
        mates: list[float] = []
        others: list[float] = []
        station = self.stations.get(sid)
        district = station.district if station is not None else None
        max_age = cfg.max_age_ms
        warm = cfg.level_warmup
        for nid, _bearing, same in self._nbs.get(sid, ()):
            o = stations.get(nid)
            if o is None or o.muted or ts - o.v_ts > max_age:
                continue
            vals.append(o.v)
            if o.level_n >= warm:
                (mates if same else others).append(o.rel - o.rel_base)
                if ts - o.q_ts <= max_age and not o.drift_on:
                    qs.append(o.q)
        if not self._nbs.get(sid) and st.level_n >= warm and state.ref is not None:
            # an isolated station (no neighbour within reach) can only be compared with the
            # city: a local source is its anomaly, unless much of the city is up as well
            if state.city_up < cfg.isolated_regional_share:
                rel_r = st.rel_r = st.rel - st.rel_base
                if st.spike_on or st.spike_hist or st.resid.z_of(rel_r) > cfg.spike_z:
                    usual = [state.ref + st.rel_base]
                    out.extend(self._local_source(state, st, sid, ts, pm25, rel_r, usual, event))
                else:
                    st.resid.learn_value(rel_r)
        elif len(vals) >= cfg.min_neighbours and st.level_n >= warm:
            # this station's anomaly against its neighbours' (district mates first: they share
            # the district's weather). Both are net of each station's usual offset, so which
            # neighbours happen to report does not shift it. A regional episode lifts them all;
            # a local source lifts this station alone; a drifting gain walks it away slowly.
            comp = mates or others
            ep = state.episodes.get(district) if district is not None else None
            # with no district mate to compare with, a rise while the district's episode is
            # building or on is the episode's, not a local source nor a drift
            vetoed = not mates and ep is not None and (ep.active or ep.streak > 0)
            if comp and not vetoed:
                comp_level = median(comp)
                rel_r = st.rel_r = st.rel - st.rel_base - comp_level
                if st.spike_on or st.spike_hist or st.resid.z_of(rel_r) > cfg.spike_z:
                    out.extend(self._local_source(state, st, sid, ts, pm25, rel_r, vals, event))
                else:
                    st.resid.learn_value(rel_r)
                    limit = cfg.drift_threshold if mates else cfg.drift_threshold_far
                    rq = (
                        st.q - median(qs)
                        if len(qs) >= cfg.min_neighbours and ts - st.q_ts <= max_age
                        else None
                    )
                    # neighbours of other districts caught in an episode of their own would
                    # make this station look as if it drifted down: the level view waits
                    level_ok = bool(mates) or abs(comp_level) < cfg.episode.elevated * 0.5
                    out.extend(self._drift(st, sid, ts, rel_r, limit, rq, level_ok))
        if station is not None:
            ep = state.episodes.get(station.district)
            if ep is None or ts >= ep.last_step_ms + cfg.episode.step_ms:
                out.extend(self._episode(state, st, station.district, ts))
        return out

    def _update_reference(self, state: AirState, ts: int) -> None:
        cfg = self.cfg
        fresh = [
            o
            for o in state.stations.values()
            if not o.muted and ts - o.v_ts <= cfg.max_age_ms and o.level_n >= 5
        ]
        if len(fresh) >= 3:
            levels = sorted(o.fast for o in fresh)
            state.ref = levels[int(cfg.reference_quantile * (len(levels) - 1))]
            thr = cfg.episode.elevated
            warm = [o for o in fresh if o.level_n >= cfg.level_warmup]
            up = sum(1 for o in warm if o.rel - o.rel_base > thr)
            state.city_up = up / len(warm) if warm else 0.0
        state.ref_next_ms = ts - ts % MINUTE_MS + MINUTE_MS

    def on_watermark(self, state: AirState, watermark_ms: int) -> list[Signal]:
        """Close hours nobody's next reading closed: the hour of a station gone quiet, the last
        hour of a replay. ``hour_grace_ms`` after an hour's end, its mean is final."""
        out: list[Signal] = []
        cutoff = watermark_ms - self.cfg.hour_grace_ms
        for sid, st in state.stations.items():
            if st.acc.hour >= 0 and cutoff // HOUR_MS > st.acc.hour:
                for hour in st.acc.flush(cutoff):
                    table = self._fixed_table or table_for(hour.start_ms)
                    out.extend(
                        self._exceedance(st, sid, watermark_ms, hourly_aqi(hour.means, table))
                    )
        return out

    # -- parts -----------------------------------------------------------------------------

    def _exceedance(self, st: StationState, sid: str, ts: int, aqi: AqiResult) -> list[Signal]:
        cfg = self.cfg
        if aqi.aqi is None:
            return []
        cat = aqi.category
        level = _LEVEL_OF_CATEGORY.get(cat.level)
        if level is None:
            st.exc_streak = st.exc_streak + 1 if st.exc_level else 0
            if st.exc_level and st.exc_streak >= cfg.clear_hours:
                st.exc_level, st.exc_streak = 0, 0
                return [self._clear(st, sid, "air.exceedance", ts)]
            return []
        if not st.exc_level:
            st.exc_streak += 1
            if st.exc_streak < cfg.exceed_hours:
                return []
        st.exc_streak = 0
        st.exc_level = int(level)
        st.exc_aqi = aqi.aqi
        if st.muted or st.drift_on:
            return []
        evidence = {
            "aqi": aqi.aqi,
            "category": cat.name_zh,
            "primary": list(aqi.primary),
            "iaqi": dict(aqi.iaqi),
            "table": aqi.table,
        }
        st.last_sent["air.exceedance"] = ts
        return [
            self._signal(
                st,
                sid,
                "air.exceedance",
                ts,
                True,
                level,
                min(1.0, aqi.aqi / 500),
                f"空气质量{cat.name_zh}(AQI {aqi.aqi})",
                evidence,
            )
        ]

    def _local_source(
        self,
        state: AirState,
        st: StationState,
        sid: str,
        ts: int,
        pm25: float,
        r: float,
        vals: list[float],
        event: Air,
    ) -> list[Signal]:
        """The local-source tracker; called only while it has something to do (else the
        caller just lets the baseline learn)."""
        cfg = self.cfg
        det = st.resid
        z = det.z_of(r)
        excess = pm25 - math.expm1(median(vals))
        hit = z > cfg.spike_z and excess > cfg.spike_min_excess
        st.spike_hist = ((st.spike_hist << 1) | (1 if hit else 0)) & ((1 << cfg.spike_n) - 1)
        out: list[Signal] = []
        if not st.spike_on:
            if hit and not st.drift_on and st.spike_hist.bit_count() >= cfg.spike_m:
                st.spike_on = True
                st.spike_quiet = 0
                share = self._neighbours_elevated(state, sid, ts, event)
                out.append(self._spike_signal(st, sid, ts, z, excess, pm25, share, event, True))
            elif not hit:
                det.learn_value(r)
        else:
            if z < cfg.spike_z_off or excess < cfg.spike_min_excess * 0.5:
                st.spike_quiet += 1
                if st.spike_quiet >= cfg.spike_clear:
                    st.spike_on = False
                    st.spike_hist = 0
                    out.append(self._clear(st, sid, "air.spike", ts))
            else:
                st.spike_quiet = 0
                if ts - st.last_sent.get("air.spike", 0) >= cfg.refresh_ms:
                    share = self._neighbours_elevated(state, sid, ts, event)
                    out.append(
                        self._spike_signal(st, sid, ts, z, excess, pm25, share, event, False)
                    )
        return out

    def _neighbours_elevated(self, state: AirState, sid: str, ts: int, event: Air) -> float:
        """Share of fresh neighbours whose anomaly is up too, upwind ones counting double."""
        cfg = self.cfg
        wind = event.wind_deg if event.wind_ms is not None and event.wind_ms >= 1.0 else None
        up = tot = 0.0
        for nid, bearing, _same in self._nbs.get(sid, ()):
            o = state.stations.get(nid)
            if o is None or o.muted or ts - o.v_ts > cfg.max_age_ms:
                continue
            w = 1.0
            if wind is not None and abs((bearing - wind + 180.0) % 360.0 - 180.0) <= 45.0:
                w = 2.0  # the neighbour lies upwind: what it breathes reaches us next
            tot += w
            if o.rel - o.rel_base > cfg.episode.elevated:
                up += w
        return up / tot if tot else 0.0

    def _spike_signal(
        self,
        st: StationState,
        sid: str,
        ts: int,
        z: float,
        excess: float,
        pm25: float,
        share: float,
        event: Air,
        first: bool,
    ) -> Signal:
        level = Level.YELLOW if excess < 75 else Level.ORANGE if excess < 150 else Level.RED
        score = z * z / (z * z + self.cfg.spike_z * self.cfg.spike_z)
        evidence: dict[str, Any] = {
            "pm25": round(pm25, 1),
            "excess_ugm3": round(excess, 1),
            "z": round(z, 2),
            "neighbours_elevated": round(share, 2),
            "wind_deg": event.wind_deg,
            "wind_ms": event.wind_ms,
            "first": first,
        }
        st.last_sent["air.spike"] = ts
        return self._signal(
            st, sid, "air.spike", ts, True, level, score, "疑似局地污染源", evidence
        )

    def _range_signal(
        self,
        st: StationState,
        sid: str,
        ts: int,
        values: tuple[float | None, ...],
        failing: tuple[str, ...],
        first: bool,
    ) -> Signal:
        if st.range_on:
            check, title = "gross_range", "空气站数据超出量程"
            channels = list(failing)
            evidence: dict[str, Any] = {"values": _vals(values, failing)}
        else:
            check, title = "pm25_gt_pm10", "空气站PM2.5持续高于PM10"
            channels = ["pm25", "pm10"]
            evidence = {"inverted_of_last": [st.inv_hist.bit_count(), self.cfg.inversion_n]}
        evidence.update(check=check, channels=channels, first=first)
        return self._signal(st, sid, "air.range", ts, True, Level.YELLOW, 1.0, title, evidence)

    def _drift(
        self,
        st: StationState,
        sid: str,
        ts: int,
        r: float,
        threshold: float,
        rq: float | None,
        level_ok: bool = True,
    ) -> list[Signal]:
        """Two views of a drifting gain: the level against the neighbours' (``r``) and the
        PM2.5/PM10 ratio against theirs (``rq``: one channel drifting); either alarms."""
        cfg = self.cfg
        hold = st.drift_on or st.spike_on
        d = st.drift.update(r, hold_slow=hold) if level_ok else st.drift.deviation
        dq = st.ratio_drift.update(rq, hold_slow=hold) if rq is not None else 0.0
        rthr = cfg.ratio_drift_threshold
        out: list[Signal] = []
        if not st.drift_on:
            beyond = abs(d) > threshold or abs(dq) > rthr
            st.drift_streak = st.drift_streak + 1 if beyond else 0
            if st.drift_streak >= cfg.drift_for:
                st.drift_on, st.drift_streak = True, 0
                # a drifting PM2.5 reading no longer supports pollution alerts
                out.extend(self._mute(st, sid, ts, drift=False))
                out.append(self._drift_signal(st, sid, ts, d, dq))
        else:
            within = abs(d) < threshold * 0.6 and abs(dq) < rthr * 0.6
            st.drift_streak = st.drift_streak + 1 if within else 0
            if st.drift_streak >= cfg.drift_clear:
                st.drift_on, st.drift_streak = False, 0
                out.append(self._clear(st, sid, "air.drift", ts))
            elif ts - st.last_sent.get("air.drift", 0) >= cfg.refresh_ms:
                out.append(self._drift_signal(st, sid, ts, d, dq))
        return out

    def _drift_signal(self, st: StationState, sid: str, ts: int, d: float, dq: float) -> Signal:
        st.last_sent["air.drift"] = ts
        cfg = self.cfg
        by_ratio = abs(dq) / cfg.ratio_drift_threshold > abs(d) / cfg.drift_threshold
        shift = dq if by_ratio else d
        evidence = {
            "basis": "pm25/pm10 ratio vs neighbours" if by_ratio else "level vs neighbours",
            "log_ratio_shift": round(d, 3),
            "pm_ratio_shift": round(dq, 3),
            "ratio": round(math.exp(shift), 3),
            "direction": "up" if shift > 0 else "down",
        }
        return self._signal(
            st,
            sid,
            "air.drift",
            ts,
            True,
            Level.BLUE,
            max(st.drift.score(), st.ratio_drift.score()),
            "空气站读数相对周边站点漂移",
            evidence,
        )

    def _episode(self, state: AirState, st: StationState, district: str, ts: int) -> list[Signal]:
        ep = state.episodes.get(district)
        if ep is None:
            ep = state.episodes[district] = EpisodeDetector()
        cfg = self.cfg
        elevations = self._anomalies(state, self._by_district.get(district, ()), ts)
        ring = (
            self._anomalies(state, self._ring.get(district, ()), ts)
            if len(elevations) < cfg.episode.min_stations
            else None
        )
        change = ep.step(ts, elevations, cfg.episode, ring=ring)
        subject_id = district
        if change is False:
            return [
                Signal(
                    "air.episode",
                    Subject("district", subject_id),
                    ts,
                    active=False,
                    model=self.model_id,
                    district=district,
                )
            ]
        if change is True or (ep.active and ts - st.last_sent.get("ep", 0) >= cfg.refresh_ms):
            st.last_sent["ep"] = ts
            ratio = math.exp(ep.median)
            level = Level.YELLOW if ratio < 2.0 else Level.ORANGE if ratio < 3.0 else Level.RED
            evidence = {
                "stations": len(elevations),
                "share_elevated": round(ep.share, 3),
                "median_ratio": round(ratio, 2),
            }
            return [
                Signal(
                    "air.episode",
                    Subject("district", subject_id),
                    ts,
                    active=True,
                    level=level,
                    score=round(ep.share, 4),
                    title="区域性污染过程",
                    evidence=evidence,
                    model=self.model_id,
                    district=district,
                )
            ]
        return []

    def _anomalies(self, state: AirState, ids: tuple[str, ...] | list[str], ts: int) -> list[float]:
        cfg = self.cfg
        out = []
        for oid in ids:
            o = state.stations.get(oid)
            if o is None or o.muted or ts - o.v_ts > cfg.max_age_ms:
                continue
            if o.level_n >= cfg.level_warmup:
                out.append(o.rel - o.rel_base)
        return out

    # -- helpers -----------------------------------------------------------------------------

    def _mute(self, st: StationState, sid: str, ts: int, *, drift: bool = True) -> list[Signal]:
        """Clear the station's pollution alerts (and its drift alert if ``drift``)."""
        out = []
        if st.spike_on:
            st.spike_on = False
            st.spike_hist = 0
            out.append(self._clear(st, sid, "air.spike", ts))
        if drift and st.drift_on:
            st.drift_on = False
            st.drift_streak = 0
            out.append(self._clear(st, sid, "air.drift", ts))
        if st.exc_level:
            st.exc_level = 0
            st.exc_streak = 0
            out.append(self._clear(st, sid, "air.exceedance", ts))
        return out

    def _refresh(
        self,
        st: StationState,
        sid: str,
        rule: str,
        ts: int,
        level: Level,
        score: float | None,
        title: str | None,
        evidence: dict[str, Any] | None,
    ) -> list[Signal]:
        last = st.last_sent.get(rule)
        if last is None or ts - last < self.cfg.refresh_ms:
            return []
        st.last_sent[rule] = ts
        return [
            self._signal(
                st,
                sid,
                rule,
                ts,
                True,
                level,
                1.0 if score is None else score,
                title or "",
                evidence or {},
            )
        ]

    def _clear(self, st: StationState, sid: str, rule: str, ts: int) -> Signal:
        st.last_sent.pop(rule, None)
        return self._signal(st, sid, rule, ts, False, Level.BLUE, 0.0, "", {})

    def _signal(
        self,
        st: StationState,
        sid: str,
        rule: str,
        ts: int,
        active: bool,
        level: Level,
        score: float,
        title: str,
        evidence: dict[str, Any],
    ) -> Signal:
        if active:
            st.last_sent[rule] = ts
        station = self.stations.get(sid)
        return Signal(
            rule,
            Subject("station", sid),
            ts,
            active=active,
            level=level,
            score=float(min(1.0, max(0.0, score))),
            title=title,
            evidence=evidence,
            model=self.model_id,
            lat=station.lat if station else None,
            lon=station.lon if station else None,
            district=station.district if station else None,
            grid=self._grid.get(sid),
        )

    # -- introspection -------------------------------------------------------------------------

    def station_state_bytes(self, state: AirState, station_id: str) -> int:
        """Pickled size of one station's state (a figure to keep <= 2 KiB)."""
        return len(pickle.dumps(state.stations[station_id], protocol=pickle.HIGHEST_PROTOCOL))


def _vals(values: tuple[float | None, ...], channels: tuple[str, ...]) -> list[float | None]:
    return [values[CHANNELS.index(c)] for c in channels]
