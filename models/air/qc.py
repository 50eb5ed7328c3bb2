"""Per-reading sensor QC of one air station, QARTOD style (pass / suspect / fail).

Tests, per channel (``pm25, pm10, no2, so2, o3, co``), in the order of the QARTOD manual:

* **gross range**: outside the analyser's span ``[fail_lo, fail_hi]`` is FAIL; above the
  plausible ``suspect_hi`` (or below zero) is SUSPECT; above ``extreme_hi`` (PM: 1,000 µg/m³)
  SUSPECT and listed in :attr:`QcResult.extreme`, for the model to confirm against the
  neighbours (a city-wide smog reaches it at several stations; a logger's 1,500 at one
  station among readings of 50 is a fault).
* **flat line (stuck)**: a run of identical readings. Real SO2/CO/O3 analysers report coarse
  values that repeat naturally, so a fixed run length would cry wolf. The test learns, per
  channel, how often a reading equals the previous one (``p_repeat``, an EWMA learned while the
  channel is not flagged) and flags FAIL when a run is improbable under that rate:
  ``p_repeat ** run < stuck_p`` and the run has lasted ``stuck_min_s`` (``p_repeat`` is
  capped, so the run needed never lasts more than ``stuck_max_s``). Values at or below the
  channel's ``floor`` (the quiet bottom of the range, where analysers sit on one quantum for
  hours) never count alone. Independently, when ``stuck_joint`` or more channels above their
  floors have all been flat for ``stuck_joint_s``, they all FAIL: a frozen logger repeats
  every channel. Durations become run lengths at the station's interval (:meth:`QcConfig.runs`),
  never fewer than a floor of repeats: an hourly station is not stuck after one repeat.
* **rate of change**: ``|x - previous|`` above ``roc_max`` per minute of the step is SUSPECT.
* **spike**: a robust z (:class:`models.detect.RobustZ` on ``log1p``, with its automatic
  quantum and level floors) above ``spike_z`` is SUSPECT (only for ``spike_channels``: the
  test is a QC flag, not the local-source alert; the air model turns it off).
* **PM2.5 > PM10** (beyond ``pm_tolerance`` + ``pm_tolerance_rel`` of PM10: the two
  analysers' uncertainty, 5 µg/m³ + 10 %): both SUSPECT,
  not invalid (humid air, two instruments).

A reading's channel flag is the worst of its tests; ``MISSING`` for None. FAIL readings are
what the AQI and the cross-station models must not use; SUSPECT ones are used but shown.

Spans differ by instrument: national and micro stations' analysers (beta attenuation, with an
extended range: real hourly PM2.5 reached 1,528 µg/m³ in Shenyang on 2015-02-19) fail above
3,000 µg/m³ (:data:`DEFAULT_SPECS`); low-cost optical sensors (SDS011, PMS5003: specified to
999.9 µg/m³) above 1,000 (:data:`LOWCOST_SPECS`).

>>> qc = StationQC()
>>> r = qc.check(0, (35.0, 60.0, 30.0, 8.0, 50.0, 0.6))
>>> r.flags
(1, 1, 1, 1, 1, 1)
>>> r = qc.check(60_000, (35.0, 9999.0, 30.0, 8.0, 50.0, 0.6))
>>> r.flags[1] == Flag.FAIL, r.range_fail
(True, ('pm10',))
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Final

from models.air.compact import Compact
from models.detect.robust_z import RobustZ

__all__ = [
    "CHANNELS",
    "DEFAULT_QC",
    "DEFAULT_SPECS",
    "LOWCOST_QC",
    "LOWCOST_SPECS",
    "ChannelSpec",
    "Flag",
    "QcConfig",
    "QcResult",
    "QcRuns",
    "StationQC",
]

CHANNELS: Final[tuple[str, ...]] = ("pm25", "pm10", "no2", "so2", "o3", "co")


class Flag(enum.IntEnum):
    """QARTOD flag codes."""

    PASS = 1
    NOT_EVALUATED = 2
    SUSPECT = 3
    FAIL = 4
    MISSING = 9


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """Limits of one channel, in its unit (µg/m³; CO in mg/m³)."""

    fail_lo: float
    fail_hi: float
    suspect_hi: float
    #: at or below this a flat run alone is natural (analyser sitting on its lowest quanta)
    floor: float
    #: largest plausible change per minute
    roc_max: float
    #: above this (and up to ``fail_hi``) a value is only possible in an extreme event: it is
    #: reported in :attr:`QcResult.extreme` (SUSPECT) for the caller to confirm against the
    #: neighbours, else to fail; None: ``fail_hi``
    extreme_hi: float | None = None


DEFAULT_SPECS: Final[tuple[ChannelSpec, ...]] = (
    ChannelSpec(-5.0, 3000.0, 500.0, 5.0, 150.0, 1000.0),  # pm25
    ChannelSpec(-5.0, 3000.0, 800.0, 8.0, 300.0, 1000.0),  # pm10
    ChannelSpec(-5.0, 1000.0, 400.0, 5.0, 150.0),  # no2
    ChannelSpec(-5.0, 1000.0, 500.0, 10.0, 150.0),  # so2
    ChannelSpec(-5.0, 1000.0, 500.0, 20.0, 150.0),  # o3
    ChannelSpec(-0.5, 50.0, 15.0, 1.0, 5.0),  # co
)
#: Low-cost optical PM sensors: specified to 999.9 µg/m³; their counts vary down to a few
#: µg/m³, so only readings at 0.5 or below (where they sit on zero) never stick alone.
LOWCOST_SPECS: Final[tuple[ChannelSpec, ...]] = (
    ChannelSpec(-5.0, 1000.0, 500.0, 0.5, 150.0),  # pm25
    ChannelSpec(-5.0, 1000.0, 800.0, 0.5, 300.0),  # pm10
    *DEFAULT_SPECS[2:],
)


@dataclass(frozen=True, slots=True)
class QcRuns:
    """The flat-line durations of :class:`QcConfig` as run lengths at one interval."""

    #: repeats before a run may FAIL alone
    min_run: int
    #: repeats of several channels together that FAIL at once
    joint_run: int
    #: log of the highest repeat rate used (the one whose improbable run is the longest)
    log_cap: float


@dataclass(frozen=True, slots=True)
class QcConfig:
    """QC parameters; see the module docstring for what each test does."""

    specs: tuple[ChannelSpec, ...] = DEFAULT_SPECS
    stuck_p: float = 1e-6
    #: a flat run fails no sooner than this (seconds) and ``stuck_min_floor`` repeats ...
    stuck_min_s: float = 600.0
    stuck_min_floor: int = 3
    #: ... and the repeat rate is capped so that no run needs longer than this (seconds, and
    #: ``stuck_max_floor`` repeats)
    stuck_max_s: float = 14_400.0
    stuck_max_floor: int = 6
    stuck_joint: int = 2
    #: several channels flat together for this long (and ``stuck_joint_floor`` repeats) fail
    stuck_joint_s: float = 480.0
    stuck_joint_floor: int = 3
    #: prior and learning rate of the per-channel repeat probability
    repeat_prior: float = 0.5
    repeat_half_life: float = 240.0
    #: PM2.5 only by default: PM10 moves with it, and each channel costs ~0.4 µs per reading
    spike_channels: tuple[str, ...] = ("pm25",)
    spike_z: float = 8.0
    #: PM2.5 counts as above PM10 beyond ``pm_tolerance + pm_tolerance_rel * PM10``
    pm_tolerance: float = 5.0
    pm_tolerance_rel: float = 0.1
    repeat_rate: float = field(init=False, repr=False, compare=False, default=0.0)
    log_stuck_p: float = field(init=False, repr=False, compare=False, default=0.0)
    #: per channel (fail_lo, fail_hi, suspect_hi, floor, roc_max): one unpack in the hot loop
    limits: tuple[tuple[float, float, float, float, float, float], ...] = field(
        init=False, repr=False, compare=False, default=()
    )

    def __post_init__(self) -> None:
        if len(self.specs) != len(CHANNELS):
            msg = f"specs: need one per channel {CHANNELS}, got {len(self.specs)}"
            raise ValueError(msg)
        if not 0.0 < self.stuck_p < 1.0:
            msg = f"stuck_p: must be in (0, 1), got {self.stuck_p!r}"
            raise ValueError(msg)
        if not 0.0 < self.repeat_prior < 1.0:
            msg = f"repeat_prior: must be in (0, 1), got {self.repeat_prior!r}"
            raise ValueError(msg)
        unknown = set(self.spike_channels) - set(CHANNELS)
        if unknown:
            msg = f"spike_channels: unknown channel(s) {sorted(unknown)}"
            raise ValueError(msg)

        for name in ("stuck_min_s", "stuck_max_s", "stuck_joint_s"):
            if not getattr(self, name) >= 0:
                msg = f"{name}: must be >= 0, got {getattr(self, name)!r}"
                raise ValueError(msg)
        for name in ("stuck_min_floor", "stuck_max_floor", "stuck_joint_floor"):
            if getattr(self, name) < 1:
                msg = f"{name}: must be >= 1, got {getattr(self, name)!r}"
                raise ValueError(msg)

        # derived constants, computed once (the hot loop reads them)
        object.__setattr__(self, "repeat_rate", 1.0 - 0.5 ** (1.0 / self.repeat_half_life))
        object.__setattr__(self, "log_stuck_p", math.log(self.stuck_p))
        object.__setattr__(
            self,
            "limits",
            tuple(
                (
                    c.fail_lo,
                    c.fail_hi,
                    c.suspect_hi,
                    c.floor,
                    c.roc_max,
                    c.fail_hi if c.extreme_hi is None else c.extreme_hi,
                )
                for c in self.specs
            ),
        )

    def runs(self, interval_ms: float) -> QcRuns:
        """The flat-line durations as repeats of a station reporting every ``interval_ms``."""
        step = max(float(interval_ms), 1.0)
        min_run = max(self.stuck_min_floor, math.ceil(self.stuck_min_s * 1000.0 / step))
        max_run = max(min_run, self.stuck_max_floor, math.ceil(self.stuck_max_s * 1000.0 / step))
        joint = max(self.stuck_joint_floor, math.ceil(self.stuck_joint_s * 1000.0 / step))
        return QcRuns(min_run, joint, math.log(self.stuck_p) / max_run)


DEFAULT_QC: Final = QcConfig()
LOWCOST_QC: Final = QcConfig(specs=LOWCOST_SPECS)
#: The run lengths of a one-minute station (what :meth:`StationQC.check` uses by default).
_MINUTE_RUNS: Final = DEFAULT_QC.runs(60_000)


@dataclass(slots=True)
class QcResult:
    """Flags of one reading (aligned with :data:`CHANNELS`) and the faults it shows.

    (Not frozen: a frozen dataclass costs a microsecond to build, this one is made per reading.)
    """

    flags: tuple[int, ...]
    range_fail: tuple[str, ...]
    stuck: tuple[str, ...]
    #: PM2.5 above PM10 (both flagged SUSPECT)
    inverted: bool = False
    #: channels above their ``extreme_hi`` (SUSPECT): real only in an extreme event
    extreme: tuple[str, ...] = ()

    @property
    def suspect(self) -> tuple[str, ...]:
        """Channels flagged SUSPECT."""
        return tuple(c for c, f in zip(CHANNELS, self.flags, strict=True) if f == _SUSPECT)

    @property
    def worst(self) -> int:
        """The worst flag of the reading, missing channels aside."""
        return max((f for f in self.flags if f != Flag.MISSING), default=int(Flag.MISSING))


_PASS: Final = int(Flag.PASS)
_SUSPECT: Final = int(Flag.SUSPECT)
_FAIL: Final = int(Flag.FAIL)
_MISSING: Final = int(Flag.MISSING)


class StationQC(Compact):
    """QC state of one station: previous value, run length, repeat rate, spike detectors.

    :meth:`check` applies every test to one reading and updates the state. Readings out of
    time order (``ts`` not after the previous one) are flagged but do not update run lengths.
    """

    __slots__ = ("last_ts", "p_repeat", "prev", "runs", "spike")

    def __init__(self, cfg: QcConfig = DEFAULT_QC) -> None:
        self.last_ts = -1
        self.prev: list[float | None] = [None] * 6
        self.runs = [0] * 6
        self.p_repeat = [cfg.repeat_prior] * 6
        self.spike: dict[int, RobustZ] = {
            CHANNELS.index(c): RobustZ(
                120.0,
                scale_half_life=120.0,
                warmup=60,
                clip=2.5,
                log1p=True,
                min_scale=0.05,
            )
            for c in cfg.spike_channels
        }

    def check(
        self,
        ts_ms: int,
        values: tuple[float | None, ...] | list[float | None],
        cfg: QcConfig = DEFAULT_QC,
        runs: QcRuns | None = None,
    ) -> QcResult:
        """Flag one reading (values aligned with :data:`CHANNELS`) and learn from it.

        ``cfg`` is not stored (it is shared by every station): pass the same one each time.
        ``runs``: the flat-line run lengths at the station's interval (``cfg.runs``); default
        those of a one-minute station.
        """
        if runs is None:
            runs = _MINUTE_RUNS if cfg is DEFAULT_QC else cfg.runs(60_000)
        last = self.last_ts
        in_order = ts_ms > last
        if in_order:
            roc_scale = (ts_ms - last) / 60_000.0 if last >= 0 else 1.0
            if roc_scale < 1.0:
                roc_scale = 1.0
            self.last_ts = ts_ms
        flags = [_MISSING] * 6
        range_fail: list[str] = []
        extreme: list[str] | None = None
        stuck: list[str] = []
        flat: list[int] = []
        joint_run = runs.joint_run
        min_run = runs.min_run
        log_cap = runs.log_cap
        log_stuck_p = cfg.log_stuck_p
        prevs, runs_, reps = self.prev, self.runs, self.p_repeat
        limits = cfg.limits
        rate = cfg.repeat_rate
        for i in range(6):
            x = values[i]
            if x is None or x != x:
                continue
            lo, hi, suspect_hi, floor, roc_max, extreme_hi = limits[i]
            if x < lo or x > hi:
                range_fail.append(CHANNELS[i])
                flags[i] = _FAIL
                if in_order:
                    runs_[i] = 0
                    prevs[i] = None
                continue
            flag = _SUSPECT if x > suspect_hi or x < 0.0 else _PASS
            if x > extreme_hi:
                if extreme is None:
                    extreme = []
                extreme.append(CHANNELS[i])
            if in_order:
                prev = prevs[i]
                p = reps[i]
                if x == prev:
                    run = runs_[i] + 1
                    runs_[i] = run
                    if x > floor:
                        if run >= joint_run:
                            flat.append(i)
                        if run >= min_run and run * min(math.log(p), log_cap) < log_stuck_p:
                            flag = _FAIL
                            stuck.append(CHANNELS[i])
                    if flag != _FAIL:
                        p += rate * (1.0 - p)
                else:
                    runs_[i] = 0
                    p -= rate * p
                    if prev is not None and flag == _PASS and abs(x - prev) > roc_max * roc_scale:
                        flag = _SUSPECT
                reps[i] = p
                prevs[i] = x
            flags[i] = flag
        spike = self.spike
        for i, det in spike.items():
            f = flags[i]
            if f == _PASS or f == _SUSPECT:
                v = det.transform(values[i])
                if v is None:
                    continue
                if det.z_of(v) > cfg.spike_z:
                    flags[i] = _SUSPECT
                elif f == _PASS or det.n < det.warmup:
                    det.learn_value(v)
        if len(flat) >= cfg.stuck_joint:
            for i in flat:
                if flags[i] != _FAIL:
                    flags[i] = _FAIL
                    stuck.append(CHANNELS[i])
        pm25, pm10 = values[0], values[1]
        inverted = (
            pm25 is not None
            and pm10 is not None
            and flags[0] < _FAIL
            and flags[1] < _FAIL
            and pm25 > pm10 * (1.0 + cfg.pm_tolerance_rel) + cfg.pm_tolerance
        )
        if inverted:
            flags[0] = flags[1] = _SUSPECT
        return QcResult(
            tuple(flags), tuple(range_fail), tuple(stuck), inverted, tuple(extreme or ())
        )
