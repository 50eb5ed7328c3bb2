"""The air-quality model the flow registers: QC, AQI, faults, local sources, drift, episodes.

One :class:`AirModel` consumes ``air`` events and emits the six air rules and one observation:

============== =============== ===========================================================
rule           subject         fires when
============== =============== ===========================================================
air.range      station         failing readings cover ``range_for_s`` of the last
                               ``range_window_s`` (the analyser reports impossible values),
                               or PM2.5 stays above PM10 beyond the instruments' uncertainty
air.stuck      station         a channel is flat for an improbable run (quantization-aware),
                               or several channels freeze together
air.exceedance station         the station's hourly AQI is above 100 (轻度 yellow, 中度 orange,
                               重度/严重 red) for ``exceed_hours`` clock hours
air.spike      station         a local source: the station's PM2.5 stands above the median
                               of its neighbours far more than usual, while the neighbours
                               (upwind ones first) do not rise with it
air.drift      station         the station's level, or its PM2.5/PM10 ratio, walks away from
                               the neighbours' over hours to days (fast-minus-slow EWMAs)
air.episode    district        most healthy stations of the district rise together, or the
                               district's median hourly PM AQI is above 150 for an hour
============== =============== ===========================================================

Observations (:class:`~citywatch.alerts.Observation`, to the maps and reports, not alerts):
``air.hourly`` per station and completed clock hour with a valid value (AQI, category,
primary pollutants, every IAQI, the hour's means) and ``air.status`` whenever what the model
can judge for a station changes (its cadence is unknown or being learned, too few neighbours
report, PM2.5 or PM10 is missing): the model says what it cannot do instead of going quiet.

**Cadence.** Every rule is written in event time. Each station's reporting interval is
declared (registry ``interval_s``) or learned (:mod:`models.air.cadence`); durations become
reading counts at that interval, never fewer than one reading, and statistics that need
samples (baselines, scales) never fewer than a floor of readings. A station reporting at
least every 45 minutes apart reports **hourly averages**: each reading is its clock hour's
valid value (the AQI's 45-minute rule is met by one reading), a one-hour spike is one
reading, and its cross-station judgements wait until its neighbours' values for the *same
clock hour* are in (a neighbour reporting every few minutes contributes the mean of its
readings in that hour). Faster stations compare current readings, each neighbour's reading
current for ``max_age_s`` or 2.5 of its intervals.

A station with an active ``air.range`` (gross range) or ``air.stuck`` fault is *muted*: its
readings leave the AQI and the neighbour medians, and its spike/exceedance/drift alerts are
cleared and stay quiet until the fault clears (the alert engine inhibits too; the signals are
right on their own).

Routing. Cross-station logic needs many stations at once, so the model keys its state by
*area*, not by station: ``partition="city"`` (default) puts every station under one key
``"air"``; ``partition="district"`` keys by ``"air:{district}"`` and restricts neighbours to
the same district. Per-station state is a small slotted object inside the area state.

Signals are emitted on every change and then re-sent every ``refresh_ms`` of event time (at
least once per reading of an hourly station) while a condition holds; each carries the
station's interval (``interval_ms``) so the engine's missed-interval auto-resolve waits for
missed readings, not a fixed quiet period; a clear (``active=False``) is sent when it ends.

Score meanings: range/stuck 1.0 (a fault is certain once flagged); spike and drift
``z**2/(z**2+z_half**2)``-style scores of the residual (0.5 at the alarm threshold); exceedance
``min(1, AQI/500)``; episode the share of stations elevated (1.0 on the AQI view).

>>> from citywatch.events import Air
>>> from citywatch.registry import Registry, Station
>>> reg = Registry(stations={"S1": Station(id="S1", lat=32.0, lon=120.9, district="崇川区",
...                                        interval_s=60)})
>>> m = AirModel(reg)
>>> key = m.route(Air(ts=1_793_548_800_000, station="S1"))
>>> state = m.new_state(key)
>>> sigs = []
>>> for i in range(5):
...     sigs += m.update(state, Air(ts=1_793_548_800_000 + i * 60_000, station="S1",
...                                 pm25=30.0 + i, pm10=9999.0))
>>> [(s.rule, s.active, s.subject.id, s.interval_ms) for s in sigs if isinstance(s, Signal)]
[('air.range', True, 'S1', 60000)]
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from citywatch.alerts import Level, Observation, Signal, Subject
from citywatch.events import Air, Event
from citywatch.geo import grid_id
from citywatch.registry import Registry, Station
from models.air.aqi import (
    HOUR_MS,
    POLLUTANTS,
    AqiAccumulator,
    AqiResult,
    BreakpointTable,
    HourMean,
    category_of,
    hourly_aqi,
    hourly_aqi_of,
    iaqi_memo,
    table_for,
)
from models.air.cadence import HOURLY_MS, Cadence
from models.air.compact import Compact
from models.air.drift import DriftTracker, DriftWatch
from models.air.episode import DEFAULT_EPISODE, EpisodeConfig, EpisodeDetector
from models.air.neighbours import NeighbourIndex, median
from models.air.qc import (
    CHANNELS,
    LOWCOST_QC,
    Flag,
    QcConfig,
    QcResult,
    QcRuns,
    StationQC,
)
from models.base import Model
from models.detect.robust_z import RobustZ

__all__ = ["AirConfig", "AirModel", "AirState", "StationState", "Timing"]

MINUTE_MS: Final = 60_000
_FAIL: Final = int(Flag.FAIL)
_MISSING: Final = int(Flag.MISSING)
_FAR: Final = -(10**15)
MODEL_QC: Final = QcConfig(spike_channels=())
MODEL_LOWCOST_QC: Final = QcConfig(specs=LOWCOST_QC.specs, spike_channels=())

Partition = Literal["city", "district"]
Out = list[Signal | Observation]


@dataclass(frozen=True, slots=True)
class AirConfig:
    """Every parameter of the air model (documented in ``docs/models/air.md``).

    Durations are in seconds of event time (``*_s``); a floor (``*_min_readings``) keeps a
    statistic from resting on too few readings of a slow station.
    """

    #: the QC (no spike flag test: the local-source rule finds spikes; the flag alone, which no
    #: rule reads, would cost about a microsecond a reading)
    qc: QcConfig = MODEL_QC
    #: the QC of ``lowcost`` stations (optical sensors: a narrower span)
    qc_lowcost: QcConfig = MODEL_LOWCOST_QC
    episode: EpisodeConfig = DEFAULT_EPISODE
    #: "auto" picks the table in force at each hour's event time
    table: str = "auto"
    #: the interval of a station neither declared nor learned yet (its first reading)
    default_interval_s: float = 60.0
    # faults: failing readings covering ``range_for_s`` of the last ``range_window_s``
    range_for_s: float = 180.0
    range_window_s: float = 300.0
    range_clear_s: float = 600.0
    #: PM2.5 above PM10 (beyond the QC's tolerance) for ``inversion_for_s`` of the last
    #: ``inversion_window_s`` is a fault (``air.range``, check pm25_gt_pm10)
    inversion_for_s: float = 900.0
    inversion_window_s: float = 1800.0
    inversion_clear_s: float = 900.0
    stuck_clear_s: float = 180.0
    #: a PM value above the QC's ``extreme_hi`` stands if a current neighbour reads at least
    #: this share of it (else it fails the gross range)
    extreme_confirm: float = 0.25
    # neighbours
    k_neighbours: int = 6
    radius_m: float = 40_000.0
    #: the local source needs this many neighbours' values (one: a two-station city works) ...
    min_neighbours: int = 1
    #: ... the drift this many (with one, the two stations' ratio cannot tell which drifts)
    drift_min_neighbours: int = 2
    #: a reading of a station faster than hourly stays current this long (or 2.5 intervals)
    max_age_s: float = 300.0
    # exceedance
    exceed_hours: int = 1
    #: ``on_watermark`` closes an hour this long after its end if no reading did
    hour_grace_ms: int = 2 * MINUTE_MS
    clear_hours: int = 1
    # local source (spike)
    spike_z: float = 3.5
    #: the z needed when one reading decides (an hourly station's hour)
    spike_z_single: float = 4.0
    spike_z_off: float = 2.0
    spike_min_excess: float = 40.0
    #: ... of an hourly average (an hour's mean 20 µg/m³ above the neighbours' is as rare as a
    #: reading 40 above)
    spike_min_excess_hourly: float = 20.0
    #: hits covering ``spike_for_s`` of the last ``spike_window_s`` fire
    spike_for_s: float = 180.0
    spike_window_s: float = 240.0
    spike_clear_s: float = 300.0
    #: an hourly station's spike is a rise: its residual must jump this much (log units)
    #: above the previous hour's
    spike_jump: float = 0.5
    #: ... and an hourly station's hour standing this much (log) above both its previous and
    #: its next hour, net of its neighbours' same hours (its own hours where they do not
    #: report), and ``spike_min_excess_hourly`` above both, is a spike judged an hour late:
    #: a plume that came and went (x2.2), whatever the station's recent scatter
    spike_two_sided: float = 0.8
    #: an isolated station's rise is not a local source while this share of the city is up
    isolated_regional_share: float = 0.2
    #: the local-source baseline follows the last hour or so (a plume rises within minutes,
    #: a drifting gain over hours: the drift tracker's job) ...
    spike_half_life_s: float = 3600.0
    #: ... and never fewer readings than this (an hourly station's baseline: a day)
    spike_min_readings: int = 24
    # drift, at two time scales: "hours" (a gain running away within a day) and "days"
    drift_fast_half_life_s: float = 7200.0
    drift_slow_half_life_s: float = 172_800.0
    drift_days_fast_half_life_s: float = 43_200.0
    drift_days_slow_half_life_s: float = 604_800.0
    drift_fast_min_readings: int = 12
    drift_slow_min_readings: int = 168
    drift_warmup_s: float = 5400.0
    drift_warmup_min_readings: int = 48
    drift_clip: float = 1.0
    #: alarm on |fast - slow| of the log ratio to same-district neighbours ...
    drift_threshold: float = 0.25
    drift_days_threshold: float = 0.2
    #: ... or, for a station with no neighbour in its district, to the nearest ones (the
    #: districts' own weather differs, so the ratio wanders more)
    drift_threshold_far: float = 0.45
    #: ... and never below ``drift_k`` (hours) / ``drift_days_k`` (days) times the station's
    #: own mean deviation (a low-cost sensor wanders far more than a reference analyser)
    drift_k: float = 8.0
    drift_days_k: float = 4.0
    #: the slow reference learns only while the fast mean is within this of it
    drift_band: float = 0.2
    #: channel-ratio drift: log(PM2.5/PM10) against the neighbours' (one channel drifting;
    #: the station's own weather and the city's cancel in the ratio)
    ratio_drift_threshold: float = 0.12
    ratio_half_life_s: float = 600.0
    drift_for_s: float = 3600.0
    drift_clear_s: float = 3600.0
    drift_days_for_s: float = 21_600.0
    drift_days_clear_s: float = 21_600.0
    drift_days_for_min_readings: int = 6
    #: a drift alert still on after this long ends and its level becomes the reference (a
    #: step in siting or calibration is the station's new normal; the visit is due by then)
    drift_max_s: float = 604_800.0
    # station anomaly for episodes and the regional check: the short-term log level relative
    # to the city reference, minus its own slow baseline
    level_half_life_s: float = 300.0
    anomaly_half_life_s: float = 43_200.0
    anomaly_min_readings: int = 24
    anomaly_clip: float = 0.1
    level_warmup_s: float = 3600.0
    level_warmup_min_readings: int = 24
    #: the city reference is this quantile of the stations' levels: a low one stays with the
    #: clean part of the city even when an episode covers most of it
    reference_quantile: float = 0.3
    #: the rolling PM level the episode's AQI view reads, for stations faster than hourly
    pm_half_life_s: float = 1200.0
    # signals
    refresh_ms: int = 5 * MINUTE_MS
    partition: Partition = "city"


DEFAULT_AIR: Final = AirConfig()


def _readings(seconds: float, interval_ms: int, floor: int = 1) -> int:
    """``seconds`` of event time as a number of readings at ``interval_ms`` (rounded)."""
    return max(floor, round(seconds * 1000.0 / interval_ms))


def _m_of_n(for_s: float, window_s: float, interval_ms: int) -> tuple[int, int]:
    n = _readings(window_s, interval_ms)
    m = max(1, min(n, math.ceil(for_s * 1000.0 / interval_ms - 1e-9)))
    return m, n


def _ew(half_life: float) -> float:
    return 1.0 - math.pow(0.5, 1.0 / half_life)


@dataclass(frozen=True, slots=True)
class Timing:
    """The model's durations as reading counts and rates at one interval (built per interval,
    shared by the stations reporting at it; never snapshotted)."""

    interval_ms: int
    hourly: bool
    #: how much of an hour one reading covers (AQI validity)
    cover_ms: int
    qc_runs: QcRuns
    range_m: int
    range_n: int
    range_clear: int
    inv_m: int
    inv_n: int
    inv_clear: int
    stuck_clear: int
    spike_m: int
    spike_n: int
    spike_clear: int
    drift_for: int
    drift_clear: int
    drift_days_for: int
    drift_days_clear: int
    #: how long a reading of this station is current for its neighbours
    fresh_ms: int
    level_hl_ms: float
    a_level: float
    a_base: float
    a_ratio: float
    a_pm: float
    level_warmup: int
    spike_hl: float
    spike_warmup: int
    drift_fast_hl: float
    drift_slow_hl: float
    drift_days_fast_hl: float
    drift_days_slow_hl: float
    drift_warmup: int
    #: whether the hours scale differs from the days scale at this interval (not for hourly)
    drift_two_scales: bool

    @classmethod
    def build(cls, cfg: AirConfig, interval_ms: int) -> Timing:
        i = max(1, int(interval_ms))
        hourly = i >= HOURLY_MS
        range_m, range_n = _m_of_n(cfg.range_for_s, cfg.range_window_s, i)
        inv_m, inv_n = _m_of_n(cfg.inversion_for_s, cfg.inversion_window_s, i)
        spike_m, spike_n = _m_of_n(cfg.spike_for_s, cfg.spike_window_s, i)
        spike_hl = max(cfg.spike_min_readings, cfg.spike_half_life_s * 1000.0 / i)
        fast = max(cfg.drift_fast_min_readings, cfg.drift_fast_half_life_s * 1000.0 / i)
        slow = max(cfg.drift_slow_min_readings, cfg.drift_slow_half_life_s * 1000.0 / i, fast * 2)
        fast_d = max(cfg.drift_fast_min_readings, cfg.drift_days_fast_half_life_s * 1000.0 / i)
        slow_d = max(
            cfg.drift_slow_min_readings, cfg.drift_days_slow_half_life_s * 1000.0 / i, fast_d * 2
        )
        return cls(
            interval_ms=i,
            hourly=hourly,
            cover_ms=min(i, HOUR_MS),
            qc_runs=cfg.qc.runs(i),
            range_m=range_m,
            range_n=range_n,
            range_clear=_readings(cfg.range_clear_s, i),
            inv_m=inv_m,
            inv_n=inv_n,
            inv_clear=_readings(cfg.inversion_clear_s, i),
            stuck_clear=_readings(cfg.stuck_clear_s, i),
            spike_m=spike_m,
            spike_n=spike_n,
            spike_clear=_readings(cfg.spike_clear_s, i),
            drift_for=_readings(cfg.drift_for_s, i),
            drift_clear=_readings(cfg.drift_clear_s, i),
            drift_days_for=_readings(cfg.drift_days_for_s, i, cfg.drift_days_for_min_readings),
            drift_days_clear=_readings(cfg.drift_days_clear_s, i, cfg.drift_days_for_min_readings),
            fresh_ms=int(max(cfg.max_age_s * 1000.0, 2.5 * i)),
            level_hl_ms=cfg.level_half_life_s * 1000.0,
            a_level=1.0 - 0.5 ** (i / (cfg.level_half_life_s * 1000.0)),
            a_base=_ew(max(cfg.anomaly_min_readings, cfg.anomaly_half_life_s * 1000.0 / i)),
            a_ratio=1.0 - 0.5 ** (i / (cfg.ratio_half_life_s * 1000.0)),
            a_pm=1.0 - 0.5 ** (i / (cfg.pm_half_life_s * 1000.0)),
            level_warmup=_readings(cfg.level_warmup_s, i, cfg.level_warmup_min_readings),
            spike_hl=spike_hl,
            spike_warmup=max(cfg.spike_min_readings, round(spike_hl)),
            drift_fast_hl=fast,
            drift_slow_hl=slow,
            drift_days_fast_hl=fast_d,
            drift_days_slow_hl=slow_d,
            drift_warmup=_readings(cfg.drift_warmup_s, i, cfg.drift_warmup_min_readings),
            drift_two_scales=fast < fast_d * 0.75,
        )


#: A station's value for one period (a clock hour): (period, log1p PM2.5, anomaly or None
#: while warming up, log PM2.5/PM10 or None, PM2.5, PM AQI or -1).
Snap = tuple[int, float, float | None, float | None, float, int]


class StationState(Compact):
    """Everything the model keeps about one station (flat, slotted, picklable)."""

    __slots__ = (
        "acc",
        "cad",
        "drift_by",
        "drift_on",
        "drift_ts",
        "drifts",
        "exc_aqi",
        "exc_level",
        "exc_streak",
        "fast",
        "fresh_ms",
        "hourly",
        "hrs",
        "inv_hist",
        "inv_on",
        "last_sent",
        "level_n",
        "lh",
        "lh_a",
        "lh_an",
        "lh_n",
        "lh_pm",
        "lh_q",
        "lh_qn",
        "lh_v",
        "muted",
        "nb_seen",
        "pm10_h",
        "pm_h",
        "pos",
        "prev_r",
        "q",
        "q_n",
        "q_ts",
        "qc",
        "range_hist",
        "range_on",
        "rel",
        "rel_base",
        "rel_r",
        "resid",
        "seen10",
        "seen25",
        "snap",
        "snap_prev",
        "spike_hist",
        "spike_on",
        "spike_quiet",
        "status",
        "stuck_ok",
        "stuck_on",
        "tms",
        "ts",
        "v",
        "v_ts",
        "warm",
    )

    def __init__(self, cfg: AirConfig, tm: Timing, declared_ms: int | None = None) -> None:
        self.ts = -1
        self.cad = Cadence(declared_ms)
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
        self.v_ts = _FAR
        # short-term log level, its offset to the city reference and that offset's baseline
        self.fast = 0.0
        self.rel = 0.0
        self.rel_base = 0.0
        self.level_n = 0
        self.warm = False
        #: the last anomaly relative to the neighbours' (local source and drift input)
        self.rel_r = 0.0
        #: the previous hour's ``rel_r`` of an hourly station: (period, value)
        self.prev_r: tuple[int, float] | None = None
        #: an hourly station's last two judged hours (period, relative value or None, log1p
        #: PM2.5, PM2.5, whether a spike was on, whether usable: relative or no neighbour
        #: reported): the two-sided spike test
        self.hrs: tuple[tuple[int, float | None, float, float, bool, bool], ...] = ()
        # rolling PM levels (µg/m³) for the episode's AQI view
        self.pm_h = -1.0
        self.pm10_h = -1.0
        self.spike_hist = 0
        self.spike_on = False
        self.spike_quiet = 0
        # short-term log(PM2.5/PM10)
        self.q = 0.0
        self.q_n = 0
        self.q_ts = _FAR
        self.drift_on = False
        #: the drift watch (index in ``drifts``) that raised the drift alert, and when
        self.drift_by = 0
        self.drift_ts = 0
        # the period values: an hourly station's readings, a faster one's clock-hour means
        self.pos = -1  # the period the station is at (hourly: last reported; else: open hour)
        self.snap: Snap | None = None
        self.snap_prev: Snap | None = None
        self.lh = -1  # open clock hour of the sums below (stations faster than hourly)
        self.lh_v = 0.0
        self.lh_n = 0
        self.lh_a = 0.0
        self.lh_an = 0
        self.lh_q = 0.0
        self.lh_qn = 0
        self.lh_pm = 0.0
        # what the model could judge: neighbours at the last cross-station attempt (-1: none),
        # whether PM2.5 / PM10 ever came, and the last status observation's values
        self.nb_seen = -1
        self.seen25 = False
        self.seen10 = False
        self.status: tuple[Any, ...] = ()
        # rule -> event time of the last active signal sent (for refresh)
        self.last_sent: dict[str, int] = {}
        self.retime(cfg, tm)

    def retime(self, cfg: AirConfig, tm: Timing) -> None:
        """Build the interval-dependent parts for ``tm`` (learning restarts)."""
        #: the interval the station's timing and detectors were built for
        self.tms = tm.interval_ms
        self.hourly = tm.hourly
        self.fresh_ms = tm.fresh_ms
        self.resid = RobustZ(
            tm.spike_hl,
            warmup=tm.spike_warmup,
            clip=2.0,
            min_scale=0.08,
            scale_half_life=tm.spike_hl,
            quantum_floor=0.0,
            rel_floor=0.0,
        )
        scales = [(tm.drift_days_fast_hl, tm.drift_days_slow_hl)]
        fors = [
            (tm.drift_days_for, tm.drift_days_clear, cfg.drift_days_k, cfg.drift_days_threshold)
        ]
        if tm.drift_two_scales:
            scales.insert(0, (tm.drift_fast_hl, tm.drift_slow_hl))
            fors.insert(0, (tm.drift_for, tm.drift_clear, cfg.drift_k, cfg.drift_threshold))
        self.drifts = tuple(
            DriftWatch(
                DriftTracker(
                    fast,
                    slow,
                    warmup=tm.drift_warmup,
                    clip=cfg.drift_clip,
                    band=cfg.drift_band,
                    threshold=thr,
                    k=k,
                ),
                DriftTracker(
                    fast,
                    slow,
                    warmup=tm.drift_warmup,
                    clip=cfg.drift_clip,
                    threshold=cfg.ratio_drift_threshold,
                    band=cfg.ratio_drift_threshold * 0.5,
                    k=k,
                ),
                for_n=for_n,
                clear_n=clear_n,
            )
            for (fast, slow), (for_n, clear_n, k, thr) in zip(scales, fors, strict=True)
        )
        self.level_n = 0
        self.warm = False
        self.spike_hist = 0
        self.prev_r = None
        self.hrs = ()

    @property
    def anomaly(self) -> float:
        """How far the station's level relative to the city stands above its usual (log units).

        ``(fast - city reference) - baseline``: near 0 on an ordinary day whatever the weather
        (the weather moves every station), 0.69 when the station reads twice its usual share.
        0.0 during warm-up.
        """
        return self.rel - self.rel_base if self.warm else 0.0


class AirState:
    """State of one area key: its stations, its districts' episode detectors, the hourly
    stations waiting for their neighbours' values of the same hour."""

    __slots__ = ("city_up", "episodes", "flush_due", "pending", "ref", "ref_next_ms", "stations")

    def __init__(self) -> None:
        self.stations: dict[str, StationState] = {}
        self.episodes: dict[str, EpisodeDetector] = {}
        #: city reference: a low quantile of healthy stations' short-term log levels
        self.ref: float | None = None
        self.ref_next_ms = 0
        #: share of the city's stations whose anomaly is up (regional context for isolated ones)
        self.city_up = 0.0
        #: hourly station -> the hour (period index) it waits to judge against its neighbours
        self.pending: dict[str, int] = {}
        #: the least watermark at which an open hour may need closing (stations faster than
        #: hourly) or a pending hour forcing
        self.flush_due = 0


class _Around:
    """A station's neighbours' values for one judgement (same period, or current)."""

    __slots__ = ("bearings", "levels", "mates", "others", "others_levels", "qs", "vals")

    def __init__(self) -> None:
        #: log1p PM2.5 of every neighbour with a value
        self.vals: list[float] = []
        #: anomalies of the warm ones, district mates and others apart
        self.mates: list[float] = []
        self.others: list[float] = []
        #: (bearing to the neighbour, its anomaly), for the upwind share
        self.bearings: list[tuple[float, float]] = []
        #: log1p PM2.5 of the warm ones (district mates, others), and log PM2.5/PM10 of
        #: those not drifting
        self.levels: list[float] = []
        self.others_levels: list[float] = []
        self.qs: list[float] = []

    def add(
        self, v: float, a: float | None, q: float | None, bearing: float, same: bool, drift: bool
    ) -> None:
        self.vals.append(v)
        if a is not None:
            self.bearings.append((bearing, a))
            if same:
                self.mates.append(a)
                self.levels.append(v)
            else:
                self.others.append(a)
                self.others_levels.append(v)
            if q is not None and not drift:  # a drifting one is no reference for the ratio
                self.qs.append(q)


_LEVEL_OF_CATEGORY: Final = {3: Level.YELLOW, 4: Level.ORANGE, 5: Level.RED, 6: Level.RED}


class AirModel(Model):
    """Air-quality detection for every station of the registry (see the module docstring)."""

    name = "air"
    version = "2"
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
        # per station: the stations that have it as a neighbour (who may be waiting for it)
        rev: dict[str, list[str]] = {}
        for sid, nbs in self._nbs.items():
            for nid, _, _ in nbs:
                rev.setdefault(nid, []).append(sid)
        self._rev = {sid: tuple(ids) for sid, ids in rev.items()}
        self._by_district: dict[str, list[str]] = {}
        for s in self.stations.values():
            self._by_district.setdefault(s.district, []).append(s.id)
        self._declared = {
            s.id: int(s.interval_s * 1000) for s in self.stations.values() if s.interval_s
        }
        self._qc_of = {s.id: cfg.qc_lowcost for s in self.stations.values() if s.kind == "lowcost"}
        self._timings: dict[int, Timing] = {}
        self._subjects: dict[str, Subject] = {}
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

    def _subject(self, sid: str) -> Subject:
        """The station's subject (one object per station, reused by every signal)."""
        subj = self._subjects.get(sid)
        if subj is None:
            subj = self._subjects[sid] = Subject("station", sid)
        return subj

    def timing(self, interval_ms: int) -> Timing:
        """The :class:`Timing` of stations reporting every ``interval_ms``."""
        t = self._timings.get(interval_ms)
        if t is None:
            t = self._timings[interval_ms] = Timing.build(self.cfg, interval_ms)
        return t

    def update(self, state: AirState, event: Event) -> Out:
        if type(event) is not Air:
            return []
        cfg = self.cfg
        sid = event.station
        st = state.stations.get(sid)
        if st is None:
            declared = self._declared.get(sid)
            tm0 = self.timing(declared or int(cfg.default_interval_s * 1000))
            st = state.stations[sid] = StationState(cfg, tm0, declared)
        ts = event.ts
        last = st.ts
        if ts <= last:
            return []  # duplicate or out of order for this station: ignore
        st.ts = ts
        out: Out = []
        cad = st.cad
        if last >= 0:
            cad.observe(ts - last)
        interval = cad.interval_ms
        if interval and abs(interval - st.tms) > 0.25 * st.tms:
            self._retime(st, interval)
        tm = self.timing(st.tms)
        values = (event.pm25, event.pm10, event.no2, event.so2, event.o3, event.co)
        qcfg = self._qc_of.get(sid, cfg.qc)
        res = st.qc.check(ts, values, qcfg, tm.qc_runs)
        if res.extreme:
            res = self._confirm_extreme(state, sid, ts, values, res)
        flags = res.flags
        if values[0] is not None:
            st.seen25 = True
        if values[1] is not None:
            st.seen10 = True

        # -- faults ---------------------------------------------------------------------------
        self._faults(st, sid, ts, tm, values, res, out)
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
        hourly = st.hourly
        period = ts // HOUR_MS
        due = (period + 1) * HOUR_MS + cfg.hour_grace_ms
        if due < state.flush_due:
            state.flush_due = due
        if hourly:  # an hourly average is its hour's value: the hour closes now
            table = self._fixed_table or table_for(ts)
            aqi = hourly_aqi_of(clean, table)
            means = {p: v for p, v in zip(POLLUTANTS, clean, strict=True) if v is not None}
            out.extend(self._hour_done(st, sid, ts, period * HOUR_MS, means, 1, aqi))
        else:
            for hour in st.acc.add(ts, clean, tm.cover_ms):
                out.extend(self._hour_closed(st, sid, ts, hour))
        if (
            st.exc_level
            and not muted
            and not st.drift_on
            and ts - st.last_sent.get("air.exceedance", ts) >= cfg.refresh_ms
        ):
            aqi_now = st.exc_aqi
            cat = category_of(aqi_now)
            out.extend(
                self._refresh(
                    st,
                    sid,
                    "air.exceedance",
                    ts,
                    Level(st.exc_level),
                    min(1.0, aqi_now / 500),
                    f"空气质量{cat.name_zh}(AQI {aqi_now})",
                    {"aqi": aqi_now, "category": cat.name_zh},
                )
            )
        if not st.status:
            out.extend(self._status(st, sid, ts))

        # -- cross-station ----------------------------------------------------------------------
        pm25 = clean[0]
        if hourly:
            pend = state.pending.get(sid)
            if pend is not None and pend < period:
                out.extend(self._judge_period(state, sid, pend, ts))
            st.pos = period
        elif period != st.lh:
            self._close_level_hour(st, period)
            out.extend(self._settle(state, self._rev.get(sid, ()), ts))
        if pm25 is None or muted:
            if hourly:
                out.extend(self._settle(state, self._rev.get(sid, ()), ts))
            return out
        v = math.log1p(pm25) if pm25 > 0.0 else 0.0
        if ts >= state.ref_next_ms:
            self._update_reference(state, ts)
        n = st.level_n + 1
        st.level_n = n
        if n == 1 or hourly:
            st.fast = v
        else:
            step = ts - st.v_ts
            a = tm.a_level if step <= 2 * tm.interval_ms else 1.0 - 0.5 ** (step / tm.level_hl_ms)
            st.fast += (a if n > 5 else max(a, 1.0 / n)) * (v - st.fast)
        st.v, st.v_ts = v, ts
        ref = state.ref
        if ref is not None:
            st.rel = rel = st.fast - ref
            e = rel - st.rel_base
            if n <= tm.level_warmup:
                st.rel_base += e / n
            else:
                c = cfg.anomaly_clip
                st.rel_base += tm.a_base * (c if e > c else -c if e < -c else e)
        if not st.warm and n >= tm.level_warmup:
            st.warm = True
        pm10 = clean[1]
        q: float | None = None
        if pm10 is not None and pm10 > 0.0 and not st.inv_on and not res.inverted:
            q = v - math.log1p(pm10)
            qn = st.q_n + 1
            st.q_n = qn
            if hourly:
                st.q = q
            else:
                st.q += (tm.a_ratio if qn > 10 else 1.0 / qn) * (q - st.q)
            st.q_ts = ts
        a_pm = tm.a_pm
        st.pm_h = pm25 if st.pm_h < 0.0 else st.pm_h + a_pm * (pm25 - st.pm_h)
        if pm10 is not None:
            st.pm10_h = pm10 if st.pm10_h < 0.0 else st.pm10_h + a_pm * (pm10 - st.pm10_h)
        anomaly = st.rel - st.rel_base if st.warm and ref is not None else None
        if hourly:
            st.snap_prev = st.snap
            st.snap = (period, v, anomaly, q, pm25, self._pm_aqi(pm25, pm10, ts))
            state.pending[sid] = period
            if self._settled(state, sid, period):
                out.extend(self._judge_period(state, sid, period, ts))
            out.extend(self._settle(state, self._rev.get(sid, ()), ts))
            return out
        # a faster station: the clock-hour sums its hourly neighbours read, then judge now
        st.lh_v += v
        st.lh_n += 1
        st.lh_pm += pm25
        if anomaly is not None:
            st.lh_a += anomaly
            st.lh_an += 1
        if q is not None:
            st.lh_q += st.q
            st.lh_qn += 1
        out.extend(self._judge_live(state, st, sid, ts, pm25, event))
        station = self.stations.get(sid)
        if station is not None:
            ep = state.episodes.get(station.district)
            if ep is None or ts >= ep.last_step_ms + cfg.episode.step_ms:
                out.extend(self._episode(state, st, station.district, ts))
        return out

    def on_watermark(self, state: AirState, watermark_ms: int) -> Out:
        """Close hours nobody's next reading closed (the hour of a station gone quiet, the last
        hour of a replay) and judge the hourly stations still waiting for a neighbour:
        ``hour_grace_ms`` after an hour's end, its values are final."""
        out: Out = []
        if watermark_ms < state.flush_due:
            return out
        cutoff = watermark_ms - self.cfg.hour_grace_ms
        hour_now = cutoff // HOUR_MS
        due = 0
        for sid, st in state.stations.items():
            if st.hourly or st.acc.hour < 0:
                continue  # an hourly station's hours close on arrival
            if hour_now > st.acc.hour:
                for hour in st.acc.flush(cutoff):
                    out.extend(self._hour_closed(st, sid, watermark_ms, hour))
            if st.lh >= 0 and hour_now > st.lh:
                self._close_level_hour(st, hour_now)
            end = (st.acc.hour + 1) * HOUR_MS + self.cfg.hour_grace_ms
            due = end if due == 0 or end < due else due
        for sid, p in sorted(state.pending.items()):
            if p < hour_now:
                out.extend(self._judge_period(state, sid, p, watermark_ms))
        for p in state.pending.values():
            end = (p + 1) * HOUR_MS + self.cfg.hour_grace_ms
            due = end if due == 0 or end < due else due
        state.flush_due = due or watermark_ms + HOUR_MS
        return out

    # -- cadence ---------------------------------------------------------------------------

    def _retime(self, st: StationState, interval_ms: int) -> None:
        """(Re)build the station's interval-dependent parts for ``interval_ms``."""
        st.retime(self.cfg, self.timing(interval_ms))

    # -- faults ----------------------------------------------------------------------------

    def _faults(
        self,
        st: StationState,
        sid: str,
        ts: int,
        tm: Timing,
        values: tuple[float | None, ...],
        res: QcResult,
        out: Out,
    ) -> None:
        cfg = self.cfg
        was_range = "air.range" in st.last_sent
        keep = (1 << max(tm.range_n, tm.range_clear)) - 1
        hist = ((st.range_hist << 1) | (1 if res.range_fail else 0)) & keep
        st.range_hist = hist
        if not st.range_on:
            st.range_on = (hist & ((1 << tm.range_n) - 1)).bit_count() >= tm.range_m
        elif hist & ((1 << tm.range_clear) - 1) == 0:
            st.range_on = False
        keep = (1 << max(tm.inv_n, tm.inv_clear)) - 1
        hist = ((st.inv_hist << 1) | (1 if res.inverted else 0)) & keep
        st.inv_hist = hist
        if not st.inv_on:
            st.inv_on = (hist & ((1 << tm.inv_n) - 1)).bit_count() >= tm.inv_m
        elif hist & ((1 << tm.inv_clear) - 1) == 0:
            st.inv_on = False
        # PM2.5 > PM10 means one of the two channels is wrong. When PM2.5 itself stands well
        # above the neighbours' (or drifts), the PM2.5 channel reads high: that is the drift
        # tracker's finding, not a PM10 fault; otherwise report the inversion.
        inv_alarm = st.inv_on and (
            was_range or (res.inverted and not st.drift_on and st.rel_r < cfg.drift_threshold)
        )
        if st.range_on or inv_alarm:
            if not was_range or ts - st.last_sent.get("air.range", ts) >= cfg.refresh_ms:
                out.append(
                    self._range_signal(st, sid, ts, tm, values, res.range_fail, not was_range)
                )
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
        elif st.stuck_on and any(f != _MISSING for f in res.flags):
            st.stuck_ok += 1
            if st.stuck_ok >= tm.stuck_clear:
                st.stuck_on = False
                out.append(self._clear(st, sid, "air.stuck", ts))

    def _confirm_extreme(
        self,
        state: AirState,
        sid: str,
        ts: int,
        values: tuple[float | None, ...],
        res: QcResult,
    ) -> QcResult:
        """A PM value above its ``extreme_hi`` stands where a current neighbour reads at least
        ``extreme_confirm`` of it too (a smog over the city) or the station's other PM channel
        agrees (a real plume shows in both: PM10 at least the PM2.5, PM2.5 at least a tenth
        of the PM10); else it fails the range (a logger writing 1500 among readings of 50)."""
        share = self.cfg.extreme_confirm
        failing = []
        for ch in res.extreme:
            i = CHANNELS.index(ch)
            x = values[i]
            if x is None or i > 1:
                continue
            other = values[1 - i]
            if other is not None and (other >= x if i == 0 else other >= 0.1 * x):
                continue
            need = x * share
            ok = False
            for nid, _b, _s in self._nbs.get(sid, ()):
                o = state.stations.get(nid)
                if o is None or o.muted or ts - o.v_ts > o.fresh_ms:
                    continue
                if (o.pm_h if i == 0 else o.pm10_h) >= need:
                    ok = True
                    break
            if not ok:
                failing.append(i)
        if not failing:
            return res
        flags = list(res.flags)
        for i in failing:
            flags[i] = _FAIL
        return QcResult(
            tuple(flags),
            res.range_fail + tuple(CHANNELS[i] for i in failing),
            res.stuck,
            res.inverted and 0 not in failing and 1 not in failing,
            res.extreme,
        )

    # -- hours -----------------------------------------------------------------------------

    def _hour_closed(self, st: StationState, sid: str, ts: int, hour: HourMean) -> Out:
        """An hour of a station faster than hourly closed (its readings' means)."""
        table = self._fixed_table or table_for(hour.start_ms)
        aqi = hourly_aqi(hour.means, table)
        return self._hour_done(st, sid, ts, hour.start_ms, hour.means, hour.readings, aqi)

    def _hour_done(
        self,
        st: StationState,
        sid: str,
        ts: int,
        start_ms: int,
        means: Mapping[str, float],
        readings: int,
        aqi: AqiResult,
    ) -> Out:
        """An hour's value is final: its exceedance and its ``air.hourly`` observation."""
        out: Out = []
        out.extend(self._exceedance(st, sid, ts, aqi))
        if aqi.aqi is not None:
            cat = aqi.category
            values: dict[str, Any] = {
                "aqi": aqi.aqi,
                "level": cat.level,
                "category": cat.name_zh,
                "primary": list(aqi.primary),
                "iaqi": dict(aqi.iaqi),
                "table": aqi.table,
                "readings": readings,
            }
            for p, m in means.items():
                values[p] = round(m, 2)
            station = self.stations.get(sid)
            out.append(
                Observation(
                    "air.hourly",
                    self._subject(sid),
                    start_ms,
                    values,
                    lat=station.lat if station else None,
                    lon=station.lon if station else None,
                    district=station.district if station else None,
                )
            )
        out.extend(self._status(st, sid, ts))
        return out

    def _close_level_hour(self, st: StationState, hour: int) -> None:
        """A station faster than hourly moved on to clock hour ``hour``: its last hour's mean
        level becomes its value for that period (what hourly neighbours compare with)."""
        if st.lh >= 0 and st.lh_n:
            n = st.lh_n
            pm = st.lh_pm / n
            st.snap_prev = st.snap
            st.snap = (
                st.lh,
                st.lh_v / n,
                st.lh_a / st.lh_an if st.lh_an else None,
                st.lh_q / st.lh_qn if st.lh_qn else None,
                pm,
                self._pm_aqi(pm, None, st.lh * HOUR_MS),
            )
        st.lh = st.pos = hour
        st.lh_v = st.lh_a = st.lh_q = st.lh_pm = 0.0
        st.lh_n = st.lh_an = st.lh_qn = 0

    def _pm_aqi(self, pm25: float, pm10: float | None, ts: int) -> int:
        """The hourly PM AQI (PM2.5 and PM10 on their 24-hour tables, as real-time releases)."""
        table = self._fixed_table or table_for(ts)
        a = iaqi_memo(pm25, table.pm25_24h) or 0
        if pm10 is not None:
            b = iaqi_memo(pm10, table.pm10_24h) or 0
            if b > a:
                a = b
        return a

    def _status(self, st: StationState, sid: str, ts: int) -> Out:
        """An ``air.status`` observation when what the model can judge for the station changed."""
        cfg = self.cfg
        cad = st.cad
        nb = st.nb_seen
        key = (
            cad.source,
            st.tms,
            st.seen25,
            st.seen10,
            nb if nb < cfg.drift_min_neighbours else cfg.drift_min_neighbours,
        )
        if key == st.status:
            return []
        st.status = key
        missing: dict[str, str] = {}
        if cad.source in ("unknown", "learning"):
            missing["cadence"] = (
                f"interval {cad.source}: assuming {st.tms / 1000:g} s until "
                f"{'more readings' if cad.source == 'learning' else 'a second reading'}"
            )
        if not st.seen25:
            missing["air.spike"] = missing["air.drift"] = "no PM2.5 readings"
            missing["air.episode"] = "no PM2.5 readings: not counted"
        elif not self._nbs.get(sid):
            missing["air.spike"] = "no neighbour within reach: compared with the city"
            missing["air.drift"] = "no neighbour within reach"
        else:
            if 0 <= st.nb_seen < cfg.min_neighbours:
                missing["air.spike"] = (
                    f"{st.nb_seen} neighbour(s) reporting, {cfg.min_neighbours} needed"
                )
            if 0 <= st.nb_seen < cfg.drift_min_neighbours:
                missing["air.drift"] = (
                    f"{st.nb_seen} neighbour(s) reporting, {cfg.drift_min_neighbours} needed"
                )
        if not st.seen10:
            missing["air.range:pm25_gt_pm10"] = "no PM10 readings"
        station = self.stations.get(sid)
        return [
            Observation(
                "air.status",
                self._subject(sid),
                ts,
                {
                    "cadence": cad.source,
                    "interval_s": st.tms / 1000,
                    "hourly": st.hourly,
                    "known": station is not None,
                    "not_judged": missing,
                },
                lat=station.lat if station else None,
                lon=station.lon if station else None,
                district=station.district if station else None,
            )
        ]

    # -- cross-station ---------------------------------------------------------------------

    def _settle(self, state: AirState, sids: tuple[str, ...], ts: int) -> Out:
        """Judge the waiting hourly stations among ``sids`` whose neighbours are all in."""
        pending = state.pending
        if not pending:
            return []
        out: Out = []
        for sid in sids:
            p = pending.get(sid)
            if p is not None and self._settled(state, sid, p):
                out.extend(self._judge_period(state, sid, p, ts))
        return out

    def _settled(self, state: AirState, sid: str, p: int) -> bool:
        """Whether every neighbour's value for hour ``p`` is in (or will not come)."""
        stations = state.stations
        for nid, _b, _same in self._nbs.get(sid, ()):
            o = stations.get(nid)
            if o is None or o.muted:
                continue
            pos = o.pos
            if pos == p - 1 or (pos == p and not o.hourly):
                return False
        return True

    def _judge_period(self, state: AirState, sid: str, p: int, ts: int) -> Out:
        """Judge hourly station ``sid``'s hour ``p`` against its neighbours' same hour."""
        del state.pending[sid]
        st = state.stations[sid]
        snap = st.snap if st.snap is not None and st.snap[0] == p else None
        if snap is None and st.snap_prev is not None and st.snap_prev[0] == p:
            snap = st.snap_prev
        if snap is None or st.muted:
            st.hrs = ()
            return []
        _, v, anomaly, q, pm25, _ = snap
        around = _Around()
        for nid, bearing, same in self._nbs.get(sid, ()):
            o = state.stations.get(nid)
            if o is None or o.muted:
                continue
            sn = o.snap
            if sn is None or sn[0] != p:
                sn = o.snap_prev
                if sn is None or sn[0] != p:
                    continue
            around.add(sn[1], sn[2], sn[3], bearing, same, o.drift_on)
        out = self._judge(state, st, sid, ts, pm25, v, anomaly, q, around, p)
        prev = st.prev_r
        r = prev[1] if prev is not None and prev[0] == p else None
        out.extend(self._two_sided(st, sid, ts, p, r, v, pm25))
        station = self.stations.get(sid)
        if station is not None:
            ep = state.episodes.get(station.district)
            if ep is None or ts >= ep.last_step_ms + self.cfg.episode.step_ms:
                out.extend(self._episode(state, st, station.district, ts))
        return out

    def _two_sided(
        self, st: StationState, sid: str, ts: int, p: int, r: float | None, v: float, pm25: float
    ) -> Out:
        """An hourly station's previous hour ``p - 1`` as a spike that came and went: above
        both hour ``p - 2`` and this hour ``p`` by ``spike_two_sided`` (log), net of the
        neighbours (``r``, the value relative to them) where all three hours have them, else
        on its own values, and ``spike_min_excess_hourly`` µg/m³ above both. It catches the
        one-hour plumes the z-score misses where the station's recent scatter is wide, its
        neighbours missed the hour, or the previous hour was already up; judged when the next
        hour is in (an hour late)."""
        hrs = st.hrs
        out: Out = []
        own = r is not None or st.nb_seen <= 0  # relative, or no neighbour to compare with
        if len(hrs) == 2 and hrs[0][0] == p - 2 and hrs[1][0] == p - 1 and not st.spike_on:
            b, c = hrs
            if not c[4] and not st.drift_on:
                cfg = self.cfg
                if r is not None and b[1] is not None and c[1] is not None:
                    rise, fall = c[1] - b[1], c[1] - r
                elif own and b[5] and c[5]:
                    rise, fall = c[2] - b[2], c[2] - v
                else:  # neighbours reported but no relative value (warm-up, episode veto)
                    rise = fall = 0.0
                excess = c[3] - max(b[3], pm25)
                jump = cfg.spike_two_sided
                if rise > jump and fall > jump and excess > cfg.spike_min_excess_hourly:
                    st.spike_on = True
                    st.spike_quiet = 0
                    st.spike_hist = 0
                    z = st.resid.z_of(c[1]) if c[1] is not None else 0.0
                    extra = {
                        "basis": "two-sided hour",
                        "hour_start_ms": (p - 1) * HOUR_MS,
                        "rise": round(rise, 3),
                        "fall": round(fall, 3),
                    }
                    out.append(
                        self._spike_signal(st, sid, ts, z, excess, c[3], 0.0, None, True, extra)
                    )
        st.hrs = (*hrs[-1:], (p, r, v, pm25, st.spike_on, own))
        return out

    def _judge_live(
        self, state: AirState, st: StationState, sid: str, ts: int, pm25: float, event: Air
    ) -> Out:
        """Judge a station faster than hourly against its neighbours' current values."""
        around = _Around()
        hour = ts // HOUR_MS
        for nid, bearing, same in self._nbs.get(sid, ()):
            o = state.stations.get(nid)
            if o is None or o.muted:
                continue
            if o.hourly:
                sn = o.snap
                if sn is not None and sn[0] >= hour - 1:
                    around.add(sn[1], sn[2], sn[3], bearing, same, o.drift_on)
            elif ts - o.v_ts <= o.fresh_ms:
                around.add(
                    o.v,
                    o.rel - o.rel_base if o.warm else None,
                    o.q if ts - o.q_ts <= o.fresh_ms else None,
                    bearing,
                    same,
                    o.drift_on,
                )
        anomaly = st.rel - st.rel_base if st.warm and state.ref is not None else None
        q = st.q if ts - st.q_ts <= st.fresh_ms and st.q_n else None
        return self._judge(state, st, sid, ts, pm25, st.v, anomaly, q, around, None, event)

    def _judge(
        self,
        state: AirState,
        st: StationState,
        sid: str,
        ts: int,
        pm25: float,
        v: float,
        anomaly: float | None,
        q: float | None,
        around: _Around,
        period: int | None,
        event: Air | None = None,
    ) -> Out:
        """Local source and drift of one station from its neighbours' values (same period)."""
        cfg = self.cfg
        out: Out = []
        vals, mates, others = around.vals, around.mates, around.others
        qs, bearings = around.qs, around.bearings
        st.nb_seen = len(vals)
        if anomaly is None:
            return out
        nbs = self._nbs.get(sid)
        if not nbs and state.ref is not None:
            # an isolated station (no neighbour within reach) can only be compared with the
            # city: a local source is its anomaly, unless much of the city is up as well
            if state.city_up < cfg.isolated_regional_share:
                rel_r = st.rel_r = anomaly
                if st.spike_on or st.spike_hist or st.resid.z_of(rel_r) > cfg.spike_z:
                    usual = [state.ref + st.rel_base]
                    out.extend(
                        self._local_source(st, sid, ts, pm25, rel_r, usual, bearings, event, period)
                    )
                else:
                    st.resid.learn_value(rel_r)
            return out
        if len(vals) < cfg.min_neighbours:
            return out
        # this station's anomaly against its neighbours' (district mates first: they share
        # the district's weather). Both are net of each station's usual offset, so which
        # neighbours happen to report does not shift it. A regional episode lifts them all;
        # a local source lifts this station alone; a drifting gain walks it away slowly.
        comp = mates or others
        station = self.stations.get(sid)
        district = station.district if station is not None else None
        ep = state.episodes.get(district) if district is not None else None
        # with no district mate to compare with, a rise while the district's episode is
        # building or on is the episode's, not a local source nor a drift
        vetoed = not mates and ep is not None and (ep.active or ep.building)
        if not comp or vetoed:
            return out
        comp_level = median(comp)
        rel_r = st.rel_r = anomaly - comp_level
        if (
            st.spike_on
            or st.spike_hist
            or st.resid.z_of(rel_r) > min(cfg.spike_z, cfg.spike_z_single)
        ):
            out.extend(self._local_source(st, sid, ts, pm25, rel_r, vals, bearings, event, period))
        else:
            st.resid.learn_value(rel_r)
            need = cfg.drift_min_neighbours
            rq = q - median(qs) if q is not None and len(qs) >= need else None
            # the level view: the plain log ratio to the neighbours' median level (the
            # anomaly's baseline would absorb a drift of days); neighbours of other districts
            # caught in an episode of their own would make this station look as if it drifted
            # down: it waits
            levels = around.levels or around.others_levels
            level_ok = len(levels) >= need and (
                bool(mates) or abs(comp_level) < cfg.episode.elevated * 0.5
            )
            rd = v - median(levels) if level_ok else 0.0
            if level_ok or rq is not None:
                out.extend(self._drift(state, st, sid, ts, rd, not mates, rq, level_ok))
        if period is not None:
            st.prev_r = (period, rel_r)
        return out

    def _update_reference(self, state: AirState, ts: int) -> None:
        cfg = self.cfg
        hour = ts // HOUR_MS
        levels: list[float] = []
        up = warm = 0
        thr = cfg.episode.elevated
        for o in state.stations.values():
            if o.muted:
                continue
            if o.hourly:
                sn = o.snap
                if sn is None or sn[0] < hour - 1:
                    continue
                levels.append(sn[1])
                if sn[2] is not None:
                    warm += 1
                    up += sn[2] > thr
            elif ts - o.v_ts <= o.fresh_ms and o.level_n >= 5:
                levels.append(o.fast)
                if o.warm:
                    warm += 1
                    up += o.rel - o.rel_base > thr
        if len(levels) >= 3:
            levels.sort()
            state.ref = levels[int(cfg.reference_quantile * (len(levels) - 1))]
            state.city_up = up / warm if warm else 0.0
        state.ref_next_ms = ts - ts % MINUTE_MS + MINUTE_MS

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
        st: StationState,
        sid: str,
        ts: int,
        pm25: float,
        r: float,
        vals: list[float],
        bearings: list[tuple[float, float]],
        event: Air | None,
        period: int | None,
    ) -> Out:
        """The local-source tracker; called only while it has something to do (else the
        caller just lets the baseline learn)."""
        cfg = self.cfg
        tm = self.timing(st.tms)
        det = st.resid
        z = det.z_of(r)
        excess = pm25 - math.expm1(median(vals))
        z_on = cfg.spike_z_single if tm.spike_m == 1 else cfg.spike_z
        min_excess = cfg.spike_min_excess_hourly if tm.hourly else cfg.spike_min_excess
        hit = z > z_on and excess > min_excess
        if hit and period is not None:
            # an hourly station's spike is a rise from its previous hour (a frozen or drifting
            # reading that the neighbours leave behind is not)
            prev = st.prev_r
            before = prev[1] if prev is not None and prev[0] == period - 1 else det.location
            hit = r - before > cfg.spike_jump
        st.spike_hist = ((st.spike_hist << 1) | (1 if hit else 0)) & ((1 << tm.spike_n) - 1)
        out: Out = []
        if not st.spike_on:
            if hit and not st.drift_on and st.spike_hist.bit_count() >= tm.spike_m:
                st.spike_on = True
                st.spike_quiet = 0
                share = self._neighbours_elevated(bearings, event)
                out.append(self._spike_signal(st, sid, ts, z, excess, pm25, share, event, True))
            elif not hit:
                det.learn_value(r)
        else:
            if z < cfg.spike_z_off or excess < min_excess * 0.5:
                st.spike_quiet += 1
                if st.spike_quiet >= tm.spike_clear:
                    st.spike_on = False
                    st.spike_hist = 0
                    out.append(self._clear(st, sid, "air.spike", ts))
            else:
                st.spike_quiet = 0
                if ts - st.last_sent.get("air.spike", 0) >= cfg.refresh_ms:
                    share = self._neighbours_elevated(bearings, event)
                    out.append(
                        self._spike_signal(st, sid, ts, z, excess, pm25, share, event, False)
                    )
        return out

    def _neighbours_elevated(self, bearings: list[tuple[float, float]], event: Air | None) -> float:
        """Share of the neighbours whose anomaly is up too, upwind ones counting double."""
        thr = self.cfg.episode.elevated
        wind = (
            event.wind_deg
            if event is not None and event.wind_ms is not None and event.wind_ms >= 1.0
            else None
        )
        up = tot = 0.0
        for bearing, a in bearings:
            w = 1.0
            if wind is not None and abs((bearing - wind + 180.0) % 360.0 - 180.0) <= 45.0:
                w = 2.0  # the neighbour lies upwind: what it breathes reaches us next
            tot += w
            if a > thr:
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
        event: Air | None,
        first: bool,
        extra: dict[str, Any] | None = None,
    ) -> Signal:
        level = Level.YELLOW if excess < 75 else Level.ORANGE if excess < 150 else Level.RED
        score = z * z / (z * z + self.cfg.spike_z * self.cfg.spike_z)
        evidence: dict[str, Any] = {
            "pm25": round(pm25, 1),
            "excess_ugm3": round(excess, 1),
            "z": round(z, 2),
            "neighbours_elevated": round(share, 2),
            "wind_deg": event.wind_deg if event is not None else None,
            "wind_ms": event.wind_ms if event is not None else None,
            "first": first,
        }
        if extra:
            evidence.update(extra)
        st.last_sent["air.spike"] = ts
        return self._signal(
            st, sid, "air.spike", ts, True, level, score, "疑似局地污染源", evidence
        )

    def _range_signal(
        self,
        st: StationState,
        sid: str,
        ts: int,
        tm: Timing,
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
            evidence = {"inverted_of_last": [st.inv_hist.bit_count(), tm.inv_n]}
        evidence.update(check=check, channels=channels, first=first)
        return self._signal(st, sid, "air.range", ts, True, Level.YELLOW, 1.0, title, evidence)

    def _drift(
        self,
        state: AirState,
        st: StationState,
        sid: str,
        ts: int,
        r: float,
        far: bool,
        rq: float | None,
        level_ok: bool = True,
    ) -> Out:
        """Drift views (the level against the neighbours' ``r``, the PM2.5/PM10 ratio against
        theirs ``rq``) at each time scale; any fires, the one that fired clears it."""
        cfg = self.cfg
        hold = st.drift_on or st.spike_on
        watches = st.drifts
        out: Out = []
        fired = -1
        for i, w in enumerate(watches):
            floor = cfg.drift_threshold_far if far else w.level.threshold
            beyond = w.observe(r, rq, level_ok, hold, floor)
            if not st.drift_on:
                w.streak = w.streak + 1 if beyond else 0
                if w.streak >= w.for_n and fired < 0:
                    fired = i
        if not st.drift_on:
            if fired >= 0 and not self._blames_neighbour(state, sid, watches[fired], far):
                st.drift_on, st.drift_by, st.drift_ts = True, fired, ts
                for w in watches:
                    w.streak = 0
                # a drifting PM2.5 reading no longer supports pollution alerts
                out.extend(self._mute(st, sid, ts, drift=False))
                out.append(self._drift_signal(st, sid, ts, far))
            return out
        w = watches[min(st.drift_by, len(watches) - 1)]
        floor = cfg.drift_threshold_far if far else w.level.threshold
        w.streak = w.streak + 1 if w.calm(floor) else 0
        rebase = ts - st.drift_ts >= cfg.drift_max_s * 1000
        if w.streak >= w.clear_n or rebase:
            st.drift_on, w.streak = False, 0
            if rebase:  # a level kept this long is the station's new normal: learn it
                for x in watches:
                    x.level.slow, x.ratio.slow = x.level.fast, x.ratio.fast
            out.append(self._clear(st, sid, "air.drift", ts))
        elif ts - st.last_sent.get("air.drift", 0) >= cfg.refresh_ms:
            out.append(self._drift_signal(st, sid, ts, far))
        return out

    def _blames_neighbour(self, state: AirState, sid: str, w: DriftWatch, far: bool) -> bool:
        """Whether a level drift of this station is better explained by a neighbour walking
        the other way, further: with few neighbours one drifting station moves the reference
        of all the others (by half of its drift, with two), so the one deviating most is the
        one drifting."""
        floor = self.cfg.drift_threshold_far if far else w.level.threshold
        if w.strength(floor)[1] != "level":
            return False
        d = w.level.deviation
        for nid, _b, _s in self._nbs.get(sid, ()):
            o = state.stations.get(nid)
            if o is None or o.muted:
                continue
            od = o.drifts[-1].level.deviation
            if od * d < 0.0 and abs(od) > abs(d):
                return True
        return False

    def _drift_signal(self, st: StationState, sid: str, ts: int, far: bool) -> Signal:
        st.last_sent["air.drift"] = ts
        watches = st.drifts
        i = min(st.drift_by, len(watches) - 1)
        w = watches[i]
        floor = self.cfg.drift_threshold_far if far else w.level.threshold
        strength, view = w.strength(floor)
        d, dq = w.level.deviation, w.ratio.deviation
        shift = dq if view == "ratio" else d
        evidence = {
            "basis": ("pm25/pm10 ratio" if view == "ratio" else "level") + " vs neighbours",
            "scale": "days" if i == len(watches) - 1 else "hours",
            "log_ratio_shift": round(d, 3),
            "pm_ratio_shift": round(dq, 3),
            "ratio": round(math.exp(shift), 3),
            "direction": "up" if shift > 0 else "down",
            "over_limit": round(strength, 2),
        }
        return self._signal(
            st,
            sid,
            "air.drift",
            ts,
            True,
            Level.BLUE,
            strength * strength / (strength * strength + 1.0),
            "空气站读数相对周边站点漂移",
            evidence,
        )

    def _episode(self, state: AirState, st: StationState, district: str, ts: int) -> Out:
        ep = state.episodes.get(district)
        if ep is None:
            ep = state.episodes[district] = EpisodeDetector()
        cfg = self.cfg
        elevations, aqis, interval = self._district_now(
            state, self._by_district.get(district, ()), ts
        )
        ring = (
            self._district_now(state, self._ring.get(district, ()), ts)[0]
            if len(elevations) < cfg.episode.min_stations
            else None
        )
        change = ep.step(ts, elevations, cfg.episode, ring=ring, aqis=aqis)
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
                    interval_ms=interval or None,
                )
            ]
        if change is True or (ep.active and ts - st.last_sent.get("ep", 0) >= cfg.refresh_ms):
            st.last_sent["ep"] = ts
            ratio = math.exp(ep.median)
            if ep.basis == "aqi":
                cat = category_of(ep.aqi)
                level = _LEVEL_OF_CATEGORY.get(cat.level, Level.YELLOW)
                score = 1.0
            else:
                level = Level.YELLOW if ratio < 2.0 else Level.ORANGE if ratio < 3.0 else Level.RED
                score = ep.share
            evidence = {
                "basis": ep.basis,
                "stations": len(elevations),
                "share_elevated": round(ep.share, 3),
                "median_ratio": round(ratio, 2),
                "median_aqi": ep.aqi,
            }
            return [
                Signal(
                    "air.episode",
                    Subject("district", subject_id),
                    ts,
                    active=True,
                    level=level,
                    score=round(score, 4),
                    title="区域性污染过程",
                    evidence=evidence,
                    model=self.model_id,
                    district=district,
                    interval_ms=interval or None,
                )
            ]
        return []

    def _district_now(
        self, state: AirState, ids: tuple[str, ...] | list[str], ts: int
    ) -> tuple[list[float], list[int], int]:
        """The healthy current stations' anomalies (warm ones), their PM AQI and the longest
        interval among them."""
        hour = ts // HOUR_MS
        out: list[float] = []
        aqis: list[int] = []
        interval = 0
        for oid in ids:
            o = state.stations.get(oid)
            if o is None or o.muted:
                continue
            if o.hourly:
                sn = o.snap
                if sn is None or sn[0] < hour - 1:
                    continue
                if sn[2] is not None:
                    out.append(sn[2])
                aqis.append(sn[5])
            else:
                if ts - o.v_ts > o.fresh_ms:
                    continue
                if o.warm:
                    out.append(o.rel - o.rel_base)
                if o.pm_h >= 0.0:
                    aqis.append(self._pm_aqi(o.pm_h, o.pm10_h if o.pm10_h >= 0.0 else None, ts))
            if o.tms > interval:
                interval = o.tms
        return out, aqis, interval

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
            for w in st.drifts:
                w.streak = 0
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
            self._subject(sid),
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
            interval_ms=st.tms or None,
        )

    # -- introspection -------------------------------------------------------------------------

    def station_state_bytes(self, state: AirState, station_id: str) -> int:
        """Pickled size of one station's state (a figure to keep <= 2 KiB)."""
        return len(pickle.dumps(state.stations[station_id], protocol=pickle.HIGHEST_PROTOCOL))


def _vals(values: tuple[float | None, ...], channels: tuple[str, ...]) -> list[float | None]:
    return [values[CHANNELS.index(c)] for c in channels]
