"""Per-site fusion state for illegal resumption of work at a suspended site.

One :class:`SiteState` per site that has ever had a suspension order (sites without one never
get state: see :mod:`models.worksites.gate`). While an order is active it fuses three
channels, each over site windows (``ts // window_ms``; a window is the max over the site's
cameras, since their fields of view overlap):

* ``video_persistence``: a window is a hit when machinery >= ``min_machinery`` or persons >=
  ``min_persons``; the channel holds when ``m`` of the last ``n`` windows are hits
  (:class:`~models.worksites.persistence.MOfN`), which suppresses detector flicker;
* ``video_cusum``: a one-sided CUSUM (:class:`~models.worksites.cusum.OneSidedCusum`) on the
  window's activity ``persons + w_v * vehicles + w_m * machinery`` against the site's closed
  baseline, learned only from in-control windows of the order; it fires at once on heavy
  activity (a crew with machines) that persistence would take ``m`` windows to confirm;
* ``power``: the site's draw (sum of its meters' latest kW) above its idle baseline (the
  registry's ``idle_kw``, else the minimum of the order's first readings) by ``power_rel``
  and ``power_abs_kw`` for ``power_for_s`` seconds. It holds until a reading says otherwise
  (lost readings do not end it) or, with no reading at all, for ``stale_windows``.

Records of the first ``settle_s`` after a new order are ignored: a site gets that long to
wind down (crews leave, machines are secured) before work counts as resumption. Standing
orders (issued before the stream started, replayed at start-up) get no wind-down: the model
treats orders within ``startup_s`` of the first order it sees as standing ones.

The state fires when any channel holds and resolves after ``quiet_windows`` windows with no
channel holding, when the order is lifted, or when it expires. Methods return a
:class:`Change` code; the model turns changes into signals.

>>> cfg = ResumptionConfig()
>>> st = SiteState("W1", idle_kw=5.0)
>>> t0 = 1_762_000_000_000 - 1_762_000_000_000 % 60_000
>>> st.apply_order(t0 - 3_600_000, "suspend", None, cfg)
<Change.NONE: 0>
>>> [st.observe_video(t0 + i * 60_000, 6, 1, 1, cfg).name for i in range(1, 4)]
['NONE', 'FIRE', 'UPDATE']
>>> st.apply_order(t0 + 300_000, "lift", None, cfg).name, st.clear_reason
('CLEAR', 'order lifted')
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from models.worksites.cusum import OneSidedCusum
from models.worksites.persistence import MOfN

__all__ = ["Change", "ResumptionConfig", "SiteState"]

HOUR_MS = 3_600_000


class Change(enum.IntEnum):
    """What an observation did to the site's alert: nothing, fire, update, or clear."""

    NONE = 0
    FIRE = 1
    UPDATE = 2
    CLEAR = 3


@dataclass(frozen=True, slots=True)
class ResumptionConfig:
    """Hyperparameters (validated up front); defaults tuned on simulator seeds not reported.

    Windows are ``window_s`` long (the cameras' summary period). Night is local time
    ``[night_start_h, night_end_h)`` at UTC``+tz_offset_h`` (Asia/Shanghai has no DST), the
    hours when construction noise is forbidden; complaints count for ``complaint_ttl_s``.
    """

    window_s: int = 60
    m: int = 4
    n: int = 6
    min_persons: int = 3
    min_machinery: int = 1
    weight_vehicle: float = 1.0
    weight_machinery: float = 4.0
    person_cap: int = 50
    cusum_mu0: float = 0.5
    cusum_k: float = 1.5
    cusum_h: float = 12.0
    cusum_alpha: float = 0.05
    cusum_mu_max: float = 2.0
    power_rel: float = 0.5
    power_abs_kw: float = 3.0
    power_for_s: int = 120
    power_learn_n: int = 5
    settle_s: int = 2400
    startup_s: int = 300
    quiet_windows: int = 5
    stale_windows: int = 10
    night_start_h: int = 22
    night_end_h: int = 6
    tz_offset_h: int = 8
    complaint_radius_m: float = 500.0
    complaint_ttl_s: int = 7200

    def __post_init__(self) -> None:
        ints = {
            "window_s": self.window_s,
            "min_persons": self.min_persons,
            "min_machinery": self.min_machinery,
            "person_cap": self.person_cap,
            "power_learn_n": self.power_learn_n,
            "quiet_windows": self.quiet_windows,
            "stale_windows": self.stale_windows,
        }
        for name, value in ints.items():
            if value < 1:
                msg = f"{name}: must be >= 1, got {value!r}"
                raise ValueError(msg)
        if not 1 <= self.m <= self.n <= 62:
            msg = f"m, n: need 1 <= m <= n <= 62, got m={self.m!r}, n={self.n!r}"
            raise ValueError(msg)
        floats = {
            "weight_vehicle": self.weight_vehicle,
            "weight_machinery": self.weight_machinery,
            "power_rel": self.power_rel,
            "power_abs_kw": self.power_abs_kw,
            "complaint_radius_m": self.complaint_radius_m,
        }
        for name, fvalue in floats.items():
            if not (math.isfinite(fvalue) and fvalue >= 0.0):
                msg = f"{name}: must be finite and >= 0, got {fvalue!r}"
                raise ValueError(msg)
        for name, secs in (
            ("power_for_s", self.power_for_s),
            ("settle_s", self.settle_s),
            ("startup_s", self.startup_s),
            ("complaint_ttl_s", self.complaint_ttl_s),
        ):
            if secs < 0:
                msg = f"{name}: must be >= 0, got {secs!r}"
                raise ValueError(msg)
        for name, hour in (
            ("night_start_h", self.night_start_h),
            ("night_end_h", self.night_end_h),
        ):
            if not 0 <= hour <= 23:
                msg = f"{name}: must be an hour 0..23, got {hour!r}"
                raise ValueError(msg)
        # Constructing the CUSUM validates its parameters with their own messages.
        self.new_cusum()

    @property
    def window_ms(self) -> int:
        return self.window_s * 1000

    @property
    def settle_ms(self) -> int:
        return self.settle_s * 1000

    def new_cusum(self) -> OneSidedCusum:
        return OneSidedCusum(
            mu0=self.cusum_mu0,
            k=self.cusum_k,
            h=self.cusum_h,
            alpha=self.cusum_alpha,
            mu_max=max(self.cusum_mu_max, self.cusum_mu0),
        )

    def activity(self, persons: int, vehicles: int, machinery: int) -> float:
        """The CUSUM's per-window input."""
        return (
            min(persons, self.person_cap)
            + self.weight_vehicle * vehicles
            + self.weight_machinery * machinery
        )

    def local_hour(self, ts: int) -> int:
        return (ts // HOUR_MS + self.tz_offset_h) % 24

    def is_night(self, ts: int) -> bool:
        h = self.local_hour(ts)
        if self.night_start_h <= self.night_end_h:
            return self.night_start_h <= h < self.night_end_h
        return h >= self.night_start_h or h < self.night_end_h


class SiteState:
    """The per-site state the flow snapshots: about 30 scalars plus one small meter dict.

    Reading guide: ``order_on``/``order_ts``/``until_ms`` (0 = until lifted)/``active_from``
    (end of the wind-down) describe the order;
    ``slot``/``persons``/``vehicles``/``machinery`` the current video window (max over
    cameras); ``persist``/``cusum`` the video channels; ``meters``/``base_kw``/``above_since``
    the power channel; ``firing``/``first_ts``/``*_hit_slot`` the alert.
    """

    __slots__ = (
        "above_since",
        "active_from",
        "base_kw",
        "clear_reason",
        "complaints",
        "cusum",
        "firing",
        "first_ts",
        "idle_kw",
        "last_complaint_ts",
        "last_emit_slot",
        "last_ts",
        "learn_min",
        "learn_n",
        "machinery",
        "meters",
        "order_on",
        "order_ts",
        "persist",
        "persons",
        "power_hit_slot",
        "power_seen_slot",
        "site",
        "slot",
        "total_kw",
        "until_ms",
        "vehicles",
        "video_hit_slot",
        "video_how",
    )

    def __init__(self, site: str, idle_kw: float | None = None) -> None:
        self.site = site
        self.idle_kw = float(idle_kw) if idle_kw is not None and math.isfinite(idle_kw) else -1.0
        self.order_on = False
        self.order_ts = 0
        self.active_from = 0
        self.until_ms = 0
        self.last_ts = 0
        self.clear_reason = ""
        self.complaints = 0
        self.last_complaint_ts = -1
        self._reset_channels(ResumptionConfig())

    def _reset_channels(self, cfg: ResumptionConfig) -> None:
        self.slot = -1
        self.persons = self.vehicles = self.machinery = 0
        self.persist = MOfN(cfg.m, cfg.n)
        self.cusum = cfg.new_cusum()
        self.meters: dict[str, float] = {}
        self.total_kw = -1.0
        self.base_kw = self.idle_kw
        self.learn_n = 0
        self.learn_min = math.inf
        self.above_since = -1
        self.firing = False
        self.first_ts = 0
        self.video_hit_slot = self.power_hit_slot = self.power_seen_slot = -(10**9)
        self.video_how = 0
        self.last_emit_slot = -1

    # -- orders ------------------------------------------------------------------------------

    def apply_order(
        self,
        ts: int,
        action: str,
        until: int | None,
        cfg: ResumptionConfig,
        *,
        standing: bool = False,
    ) -> Change:
        """Start, extend or lift the order; lifting a firing site clears its alert.

        A new order's records count from ``ts + settle_s`` (``ts`` for a ``standing`` order).
        """
        self.last_ts = max(self.last_ts, ts)
        if action == "suspend":
            if not self.order_on:
                self._reset_channels(cfg)
                self.order_on = True
                self.order_ts = ts
                self.active_from = ts if standing else ts + cfg.settle_ms
                self.complaints = 0
                self.clear_reason = ""
            self.until_ms = until if until is not None else 0
            return Change.NONE
        if not self.order_on:
            return Change.NONE
        return self._end_order("order lifted")

    def _end_order(self, reason: str) -> Change:
        was_firing = self.firing
        self.order_on = False
        self.firing = False
        self.clear_reason = reason
        return Change.CLEAR if was_firing else Change.NONE

    def expire(self, ts: int) -> Change:
        """End an order whose ``until`` has passed at ``ts``."""
        if self.order_on and self.until_ms and ts >= self.until_ms:
            return self._end_order("order expired")
        return Change.NONE

    # -- channels ----------------------------------------------------------------------------

    def observe_video(
        self, ts: int, persons: int, vehicles: int, machinery: int, cfg: ResumptionConfig
    ) -> Change:
        """Fold in one camera's window counts."""
        expired = self.expire(ts)
        if expired or not self.order_on or ts < self.active_from:
            return expired
        self.last_ts = max(self.last_ts, ts)
        slot = ts // cfg.window_ms
        if slot > self.slot:
            if self.slot >= 0:  # close the previous window
                self.cusum.learn_one(cfg.activity(self.persons, self.vehicles, self.machinery))
            self.slot = slot
            self.persons, self.vehicles, self.machinery = persons, vehicles, machinery
        elif slot == self.slot:
            self.persons = max(self.persons, persons)
            self.vehicles = max(self.vehicles, vehicles)
            self.machinery = max(self.machinery, machinery)
        else:  # late record: counts for persistence only (its window's CUSUM step is done)
            late_hit = machinery >= cfg.min_machinery or persons >= cfg.min_persons
            self.persist.mark(slot, late_hit)
            if self.persist.holds:
                self.video_hit_slot = self.slot
                self.video_how |= 1
            return self._fuse(ts, self.slot, cfg)
        hit = self.machinery >= cfg.min_machinery or self.persons >= cfg.min_persons
        self.persist.mark(slot, hit)
        how = (1 if self.persist.holds else 0) | (2 if self.cusum_alarm(cfg) else 0)
        if how:
            self.video_hit_slot = slot
            self.video_how = how
        return self._fuse(ts, slot, cfg)

    def cusum_alarm(self, cfg: ResumptionConfig) -> bool:
        """The CUSUM, including the (still open) current window, holds and this window adds to it.

        Requiring the current window to be above ``mu + k`` lets the channel go quiet as soon as
        work stops, instead of when the (capped) statistic has drained below ``h``.
        """
        if self.slot < 0:
            return False
        x = cfg.activity(self.persons, self.vehicles, self.machinery)
        return x > self.cusum.mu + self.cusum.k and self.cusum.score_one(x) >= 1.0

    def observe_power(self, ts: int, meter: str, kw: float | None, cfg: ResumptionConfig) -> Change:
        """Fold in one meter reading; a missing ``kw`` only advances time."""
        expired = self.expire(ts)
        if expired or not self.order_on or ts < self.active_from:
            return expired
        self.last_ts = max(self.last_ts, ts)
        slot = ts // cfg.window_ms
        if kw is None or not math.isfinite(kw) or slot < self.power_seen_slot:
            # missing, or late (a newer window was read already): it must not overwrite the
            # meter's newer value nor break the current run
            return self._fuse(ts, max(slot, self.power_seen_slot), cfg)
        self.meters[meter] = float(kw)
        self.power_seen_slot = slot
        total = sum(self.meters.values())
        self.total_kw = total
        if self.idle_kw < 0.0 and self.learn_n < cfg.power_learn_n:
            self.learn_n += 1
            self.learn_min = min(self.learn_min, total)
            if self.learn_n == cfg.power_learn_n:
                self.base_kw = self.learn_min
        if self.base_kw >= 0.0 and total > self.threshold_kw(cfg):
            if self.above_since < 0:
                self.above_since = ts
            if ts - self.above_since >= cfg.power_for_s * 1000:
                self.power_hit_slot = slot
        else:
            self.above_since = -1
        return self._fuse(ts, slot, cfg)

    def threshold_kw(self, cfg: ResumptionConfig) -> float:
        return self.base_kw * (1.0 + cfg.power_rel) + cfg.power_abs_kw

    def observe_complaint(self, ts: int) -> Change:
        """A night-noise complaint near the site (counts only while the order is active)."""
        if not self.order_on or ts < self.order_ts:
            return Change.NONE
        self.complaints += 1
        self.last_complaint_ts = max(self.last_complaint_ts, ts)
        return Change.NONE

    # -- fusion ------------------------------------------------------------------------------

    def channels(self, slot: int, cfg: ResumptionConfig) -> list[str]:
        """Channels that held in window ``slot`` or the one before."""
        out = []
        if slot - self.video_hit_slot <= 1:
            if self.video_how & 1:
                out.append("video_persistence")
            if self.video_how & 2:
                out.append("video_cusum")
        if slot - self.power_hit_slot <= 1 or self._power_sustained(slot, cfg):
            out.append("power")
        return out

    def _power_sustained(self, slot: int, cfg: ResumptionConfig) -> bool:
        """The meters' last word was "working", and it is recent: lost readings do not end it."""
        seen = self.power_seen_slot
        return self.power_hit_slot == seen and slot - seen <= cfg.stale_windows

    def _last_hit(self, slot: int, cfg: ResumptionConfig) -> int:
        power = slot if self._power_sustained(slot, cfg) else self.power_hit_slot
        return max(self.video_hit_slot, power)

    def _fuse(self, ts: int, slot: int, cfg: ResumptionConfig) -> Change:
        hit = self._last_hit(slot, cfg)
        if slot - hit <= 0:
            if not self.firing:
                self.firing = True
                self.first_ts = ts
                self.clear_reason = ""
                self.last_emit_slot = slot
                return Change.FIRE
            if slot > self.last_emit_slot:
                self.last_emit_slot = slot
                return Change.UPDATE
            return Change.NONE
        if self.firing and slot - hit >= cfg.quiet_windows:
            return self._quiet("activity stopped")
        return Change.NONE

    def _quiet(self, reason: str) -> Change:
        """Resolve an episode that went quiet; the next one needs fresh CUSUM evidence."""
        self.firing = False
        self.clear_reason = reason
        # The capped statistic drains slowly (about mu + k per window): left as it is, a guard
        # walking by just after the clear would re-open the episode.
        self.cusum.s = 0.0
        return Change.CLEAR

    def tick(self, watermark_ms: int, cfg: ResumptionConfig) -> Change:
        """Event time reached ``watermark_ms`` with no record: expire or go quiet."""
        expired = self.expire(watermark_ms)
        if expired or not self.firing:
            return expired
        slot = watermark_ms // cfg.window_ms
        if slot - self._last_hit(slot, cfg) >= cfg.quiet_windows:
            return self._quiet("activity stopped (no data)")
        return Change.NONE

    @property
    def is_idle(self) -> bool:
        """No order and no alert: the flow may drop this state."""
        return not self.order_on and not self.firing

    def __getstate__(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in SiteState.__slots__)

    def __setstate__(self, st: tuple[object, ...]) -> None:
        for name, value in zip(SiteState.__slots__, st, strict=True):
            setattr(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SiteState):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SiteState({self.site!r}, order_on={self.order_on}, firing={self.firing}, "
            f"slot={self.slot}, {self.persist!r}, {self.cusum!r}, kw={self.total_kw:g})"
        )
