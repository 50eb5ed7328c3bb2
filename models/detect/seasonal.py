"""Seasonal: residual of a reading from its level plus the daily and weekly cycle, learned online.

The prediction for a reading at event time ``t`` is ``level + day(t) + week(t)``:

* ``day``: the deviation from the level at each full hour, linearly interpolated in between
  (a 1-minute series sees a smooth curve, an hourly one its 24 points);
* ``week``: 168 hour-of-week bins of what the daily cycle leaves (weekends, shift patterns),
  learned as a running mean shrunk by four empty visits, then exponentially weighted;
* ``level``: what remains, slowly (``level_half_life_ms``).

Every rate is in *event time*, not in readings: the daily profile forgets with a half-life of
``day_half_life`` days of visits, the weekly one ``week_half_life`` weeks, whatever the
cadence (1 min, 15 min, 1 h or irregular); a reading after a gap counts for at most
``max_step_ms``. Updates are Huber-clipped at ``clip`` scales (one spike does not become part
of the cycle). The residual ``r = x - prediction`` is scaled by its own exponentially weighted
mean absolute deviation *for that hour of the day* (a plant's working hours vary more than its
nights; at least a quarter of the all-day one), floored at the series' quantum (coarse
sensors) and ``rel_floor`` of the level; its two-sided surprise is calibrated on the series,
so a value ordinary for the hour (the morning peak, the plant's Monday start) scores low and
the same value at 3 a.m. scores high.

The cycle is in the time base of ``t`` (epoch ms UTC) shifted by ``utc_offset_ms``; the
offset only matters for reading the learned profile (bins are positions in the day). Without
``t`` there is no cycle: each reading counts as ``default_step_ms`` and the detector is a
robust level-and-scale z-score. Scores are 0.0 until ``warmup_ms`` of event time and
``warmup`` readings have passed.

>>> import math
>>> H = 3_600_000
>>> d = Seasonal()
>>> for h in range(24 * 21):           # three weeks of an hourly daily cycle
...     d.learn_one(10.0 + 5.0 * math.sin(2 * math.pi * h / 24) + 0.3 * ((h * 7) % 5), h * H)
>>> t = 24 * 21 * H + 6 * H            # 06:00, the daily peak (15)
>>> d.score_one(15.5, t) < 0.99, d.score_one(5.0, t) > 0.999
(True, True)
"""

from __future__ import annotations

import math
from typing import Final

from models.detect.base import (
    ABS_TO_SIGMA,
    SurpriseDetector,
    require_non_negative,
    require_positive,
    scale_floor,
    surprise_z,
)
from models.detect.calibrate import TailCalibrator
from models.detect.resolution import Resolution

__all__ = ["Seasonal"]

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
WEEK_MS: Final = 7 * DAY_MS
_LN2: Final = math.log(2.0)


def _rate(dt_ms: float, half_life_ms: float) -> float:
    """Weight of a reading covering ``dt_ms`` under a half-life of ``half_life_ms``."""
    return -math.expm1(-_LN2 * dt_ms / half_life_ms)


class Seasonal(SurpriseDetector):
    """Level + daily + weekly profile; calibrated residual surprise.

    Parameters
    ----------
    level_half_life_ms
        Half-life of the level (event time).
    day_half_life, week_half_life
        Half-lives of the daily profile in days of visits and of the weekly one in weeks.
    weekly
        Learn the weekly profile (False: daily only).
    scale_half_life_ms
        Half-life of the residual scale.
    warmup_ms, warmup
        Event time and readings before scores are non-zero.
    max_step_ms
        A reading counts for at most this much time (gaps).
    default_step_ms
        The time a reading counts for when ``t`` is None.
    clip
        Huber clip of updates, in residual scales.
    quantum_floor, rel_floor
        Residual scale floors: quanta of the series, share of ``|level|``.
    utc_offset_ms
        Shift of the day (for reading the profile; Asia/Shanghai is 8 h).
    calibration_half_life
        Half-life (readings) of the score's calibration.
    """

    __slots__ = (
        "_last_rates",
        "_n",
        "calibration_half_life",
        "calibrator",
        "clip",
        "day",
        "day_half_life",
        "day_sum",
        "default_step_ms",
        "dev",
        "hour_dev",
        "hour_seen",
        "level",
        "level_half_life_ms",
        "max_step_ms",
        "quantum_floor",
        "rel_floor",
        "resolution",
        "scale_half_life_ms",
        "started",
        "t_first",
        "t_prev",
        "utc_offset_ms",
        "warmup",
        "warmup_ms",
        "week",
        "week_half_life",
        "week_seen",
        "week_sum",
        "weekly",
    )

    def __init__(
        self,
        *,
        level_half_life_ms: float = 2 * DAY_MS,
        day_half_life: float = 7.0,
        week_half_life: float = 8.0,
        weekly: bool = True,
        scale_half_life_ms: float = 7 * DAY_MS,
        warmup_ms: int = 2 * DAY_MS,
        warmup: int = 30,
        max_step_ms: int = HOUR_MS,
        default_step_ms: int = 60_000,
        clip: float = 3.0,
        quantum_floor: float = 1.0,
        rel_floor: float = 1e-3,
        utc_offset_ms: int = 8 * HOUR_MS,
        calibration_half_life: float = 3000.0,
    ) -> None:
        require_positive(
            level_half_life_ms=level_half_life_ms,
            day_half_life=day_half_life,
            week_half_life=week_half_life,
            scale_half_life_ms=scale_half_life_ms,
            max_step_ms=max_step_ms,
            default_step_ms=default_step_ms,
            clip=clip,
            warmup=warmup,
        )
        require_non_negative(warmup_ms=warmup_ms, quantum_floor=quantum_floor, rel_floor=rel_floor)
        self.level_half_life_ms = float(level_half_life_ms)
        self.day_half_life = float(day_half_life)
        self.week_half_life = float(week_half_life)
        self.weekly = bool(weekly)
        self.scale_half_life_ms = float(scale_half_life_ms)
        self.warmup_ms = int(warmup_ms)
        self.warmup = int(warmup)
        self.max_step_ms = int(max_step_ms)
        self.default_step_ms = int(default_step_ms)
        self.clip = float(clip)
        self.quantum_floor = float(quantum_floor)
        self.rel_floor = float(rel_floor)
        self.utc_offset_ms = int(utc_offset_ms)
        self.calibration_half_life = float(calibration_half_life)
        self.calibrator: TailCalibrator | None = None
        self.resolution = Resolution()
        self._n = 0
        #: (dt, rates) of the last reading (see _rates)
        self._last_rates: tuple[float, tuple[float, float, float, float]] | None = None
        self.t_first: int | None = None
        self.t_prev: int | None = None
        self.level = 0.0
        self.dev = 0.0
        self.started = False  # past the first day (see _first_day)
        #: per hour of day: the residuals' mean absolute deviation, and the time it has seen
        self.hour_dev = [0.0] * 24
        self.hour_seen = [0.0] * 24
        self.day = [0.0] * 24
        self.day_sum = 0.0
        self.week = [0.0] * 168
        self.week_sum = 0.0
        #: per hour-of-week bin: visits (in bin widths of time) so far, for its learning rate
        self.week_seen = [0.0] * 168

    @property
    def n(self) -> int:
        """Readings learned."""
        return self._n

    def scale(self, t: int | None = None) -> float:
        """The residual's robust standard deviation at ``t`` (hour of day), floored.

        Residuals of a busy hour spread wider than those of a quiet one: the scale is the
        hour's own (nearest full hour), but at least a quarter of the all-day scale.
        """
        return self._scale_at(None if t is None else self._where(t))

    def _scale_at(self, where: tuple[int, int, float, int] | None) -> float:
        """:meth:`scale` at an already located time (None: no time)."""
        s = self.dev * ABS_TO_SIGMA
        if where is not None and self.started:
            i0, i1, w1, _ = where
            hb = i1 if w1 >= 0.5 else i0
            if self.hour_seen[hb] > 0.0:
                h = self.hour_dev[hb] * ABS_TO_SIGMA
                s = h if h > 0.25 * s else 0.25 * s
        f = scale_floor(self.resolution.quantum * self.quantum_floor, self.rel_floor, self.level)
        return s if s > f else f

    def _where(self, t: int | None) -> tuple[int, int, float, int]:
        """(day bin below, day bin above, weight of the one above, hour-of-week bin)."""
        if t is None:
            return 0, 0, 0.0, 0
        tl = t + self.utc_offset_ms
        pos = (tl % DAY_MS) / HOUR_MS  # bin h is the profile at hh:00, linear in between
        i0 = int(pos)
        return i0, (i0 + 1) % 24, pos - i0, int((tl % WEEK_MS) // HOUR_MS)

    def predict(self, t: int | None) -> float:
        """The expected reading at ``t``: level + daily + weekly profile."""
        i0, i1, w1, wb = self._where(t)
        return self._predict(i0, i1, w1, wb)

    def _predict(self, i0: int, i1: int, w1: float, wb: int) -> float:
        # profiles are read centred (their means belong to the level): level and cycle stay
        # identifiable instead of trading a constant back and forth
        day = self.day
        p = self.level + day[i0] + w1 * (day[i1] - day[i0]) - self.day_sum / 24.0
        if self.weekly:
            p += self.week[wb] - self.week_sum / 168.0
        return p

    def _warm(self, t: int | None) -> bool:
        if self._n < self.warmup:
            return False
        first = self.t_first
        if first is None:  # never given a time: readings alone decide
            return True
        latest = self.t_prev if t is None else t
        return latest is not None and latest - first >= self.warmup_ms

    def surprise(self, x: float, t: int | None) -> float | None:
        if not self._warm(t):
            return None
        where = None if t is None else self._where(t)
        return self._surprise_at(x, where)

    def _surprise_at(self, x: float, where: tuple[int, int, float, int] | None) -> float:
        i0, i1, w1, wb = (0, 0, 0.0, 0) if where is None else where
        return surprise_z((x - self._predict(i0, i1, w1, wb)) / self._scale_at(where))

    def update_p_value(self, v: float, t: int | None) -> float:
        # the time located once for the surprise and the learning (the hot path)
        where = None if t is None else self._where(t)
        if not self._warm(t):
            self._learn(v, t, where)
            return 1.0
        s = self._surprise_at(v, where)
        p = self._calibrated_p(s)
        self._learn(v, t, where)
        return p

    def _rates(self, dt: float) -> tuple[float, float, float, float]:
        """The event-time rates of a reading covering ``dt`` ms: residual scale, hour scale,
        level, weekly bin (the same ``dt`` at a steady cadence: computed once)."""
        last = self._last_rates
        if last is not None and last[0] == dt:
            return last[1]
        bin_ms = float(HOUR_MS)
        r = (
            _rate(dt, self.scale_half_life_ms),
            _rate(dt, self.day_half_life * bin_ms),
            _rate(dt, self.level_half_life_ms),
            _rate(dt, self.week_half_life * bin_ms),
        )
        self._last_rates = (dt, r)
        return r

    def learn_surprise(self, x: float, t: int | None, s: float | None) -> None:
        self._learn(x, t, None if t is None else self._where(t))

    def _learn(self, x: float, t: int | None, where: tuple[int, int, float, int] | None) -> None:
        self.resolution.learn(x)
        n = self._n + 1
        self._n = n
        if t is None:
            dt = float(self.default_step_ms)
        else:
            if self.t_first is None:
                self.t_first = t
            tp = self.t_prev
            dt = float(self.default_step_ms if tp is None else t - tp)
            if dt > self.max_step_ms:
                dt = float(self.max_step_ms)
            elif dt <= 0.0:
                dt = 0.0  # a repeated or late timestamp teaches the cycle nothing new
            if tp is None or t > tp:
                self.t_prev = t
        if n == 1:
            self.level = x
        if t is not None and self.t_first is not None and not self.started:
            if t - self.t_first < DAY_MS:
                self._first_day(x, t, dt)
                return
            self._start()
        elif n == 1:
            return
        i0, i1, w1, wb = (0, 0, 0.0, 0) if where is None else where
        r = x - self._predict(i0, i1, w1, wb)
        a_dev, a_hour, a_lvl, a_w = self._rates(dt)
        ar = r if r >= 0.0 else -r
        # residual scale: a running mean at first, then exponentially weighted (event time)
        if a_dev < 1.0 / n:
            a_dev = 1.0 / n
        if n > self.warmup:
            lim = self.clip * self._scale_at(where)
            if ar > lim:
                r = lim if r > 0.0 else -lim
                ar = lim
        self.dev += a_dev * (ar - self.dev)
        if t is not None and dt > 0.0:
            # a running mean over the hour's visits, then forgetting like the daily profile
            hb = i1 if w1 >= 0.5 else i0
            seen = self.hour_seen[hb] + dt
            self.hour_seen[hb] = seen
            a_h = a_hour
            if dt / seen > a_h:
                a_h = dt / seen
            self.hour_dev[hb] += a_h * (ar - self.hour_dev[hb])
        # level, then the profiles from what the level leaves
        if t is not None and self.t_first is not None:  # a running mean while it is young
            age = t - self.t_first + dt
            if age > 0.0 and dt / age > a_lvl:
                a_lvl = dt / age
        self.level += a_lvl * r
        r -= a_lvl * r
        if t is None or dt == 0.0:
            return
        day = self.day
        w0 = 1.0 - w1
        bin_ms = float(HOUR_MS)
        a0 = _rate(dt * w0, self.day_half_life * bin_ms)
        a1 = _rate(dt * w1, self.day_half_life * bin_ms)
        first = self.t_first if self.t_first is not None else t
        first_days = (t - first) / DAY_MS
        if first_days < self.day_half_life:  # learn the cycle fast while it is new
            boost = 1.0 / (1.0 + first_days)
            a0 = max(a0, boost * dt * w0 / bin_ms)
            a1 = max(a1, boost * dt * w1 / bin_ms)
            a0 = a0 if a0 < 1.0 else 1.0
            a1 = a1 if a1 < 1.0 else 1.0
        # error correction: each profile point takes its share of what the level left
        day[i0] += a0 * r
        day[i1] += a1 * r
        self.day_sum += (a0 + a1) * r
        if self.weekly:
            r -= (w0 * a0 + w1 * a1) * r
            seen = self.week_seen[wb] + dt / bin_ms
            self.week_seen[wb] = seen
            inv = dt / bin_ms / (seen + 4.0)  # a running mean, shrunk by four empty visits
            if a_w < inv:
                a_w = inv if inv < 1.0 else 1.0
            self.week[wb] += a_w * r
            self.week_sum += a_w * r

    def _first_day(self, x: float, t: int, dt: float) -> None:
        """The first day: the level and each hour's mean reading, as plain running means."""
        i0, i1, w1, _ = self._where(t)
        w = dt if dt > 0.0 else float(self.default_step_ms)
        seen = self.week_seen  # borrowed until the start: weight per day bin
        for i, wi in ((i0, 1.0 - w1), (i1, w1)):
            if wi > 0.0:
                seen[i] += w * wi
                self.day[i] += w * wi * (x - self.day[i]) / seen[i]
        total = self.dev + w  # borrowed too: the time seen so far
        self.level += w * (x - self.level) / total
        self.dev = total

    def _start(self) -> None:
        """After the first day: the cycle as deviations from the day's mean; then online."""
        seen = [i for i in range(24) if self.week_seen[i] > 0.0]
        level = sum(self.day[i] for i in seen) / len(seen) if seen else self.level
        self.day = [self.day[i] - level if self.week_seen[i] > 0.0 else 0.0 for i in range(24)]
        self.day_sum = sum(self.day)
        self.level = level
        self.week_seen = [0.0] * 168
        self.dev = 0.0
        self.started = True

    def __repr__(self) -> str:
        return f"Seasonal(level={self.level:.4g}, scale={self.scale():.4g}, n={self._n})"
