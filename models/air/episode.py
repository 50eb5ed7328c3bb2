"""Regional episode vs local source: how many stations of an area are polluted together.

Two views, either of which starts an **episode** of an area (a district):

* **relative**: each station carries an *elevation*, its short-term log level minus its own
  slow baseline (``log1p`` units: 0.69 means twice its usual level). The area is rising when,
  among its stations reporting healthy data, at least ``share_on`` are elevated by more than
  ``elevated`` and the median elevation is above ``elevated`` too. One station rising alone
  never makes an episode: that is a local source, the job of the spike tracker. An area with
  fewer than ``min_stations`` stations is judged with its *ring* too (the other areas'
  stations next to its own): its own stations must all be risen and at least ``ring_share``
  of the ring with them, since a regional episode reaches past one small area while a plume
  does not.
* **absolute**: the median of the stations' current hourly PM AQI (HJ 633, at least
  ``aqi_min_stations`` stations) is above ``aqi_on`` (150: 重度污染, heavy pollution), whatever
  the area's usual level.

A relative rise counts only while the area's median hourly PM AQI is above ``aqi_polluted``
(50: no longer excellent air), so air that doubles from very clean to clean makes no episode.

Both are judged in event time: rising continuously for ``for_ms`` (relative) or
``aqi_for_ms`` (absolute) starts the episode; calm on both views (fewer than ``share_off``
elevated, median AQI at most ``aqi_on``) for ``clear_ms`` ends it. An area is evaluated at
most once per ``step_ms``; an hourly station is evaluated once per hour, so for an area of
hourly stations "for an hour" means two consecutive polluted hours.

>>> ep = EpisodeDetector()
>>> [ep.step(t * 120_000, [1.0] * 8) for t in range(7)]
[None, None, None, None, None, True, None]
>>> small = EpisodeDetector()     # one station risen, its surroundings not: a local source
>>> {small.step(t * 120_000, [1.0], ring=[0.0, 0.1, 1.0]) for t in range(30)}
{None}
>>> smog = EpisodeDetector()      # heavy pollution at every station, for an hour
>>> [smog.step(h * 3_600_000, [0.0] * 3, aqis=[180, 210, 160]) for h in range(3)]
[None, True, None]
>>> smog.basis
'aqi'
"""

from __future__ import annotations

from dataclasses import dataclass

from models.air.compact import Compact
from models.air.neighbours import median

__all__ = ["EpisodeConfig", "EpisodeDetector"]


@dataclass(frozen=True, slots=True)
class EpisodeConfig:
    #: elevation (log1p units) above which a station counts as risen
    elevated: float = 0.5
    share_on: float = 0.6
    share_off: float = 0.3
    #: fewest healthy reporting stations needed to judge an area on the relative view
    min_stations: int = 3
    ring_share: float = 0.5
    #: the relative view fires after rising for ``for_ms`` (10 min)
    for_ms: int = 600_000
    #: both views calm for ``clear_ms`` (16 min) end the episode
    clear_ms: int = 960_000
    #: at most one evaluation per area every ``step_ms``
    step_ms: int = 120_000
    #: the absolute view: median hourly PM AQI of the area above this ...
    aqi_on: int = 150
    #: ... for this long (an hour: two consecutive hours of hourly stations) ...
    aqi_for_ms: int = 3_600_000
    #: ... over at least this many stations
    aqi_min_stations: int = 2
    #: the relative view needs the area's median hourly PM AQI above this (良 and worse)
    aqi_polluted: int = 50


DEFAULT_EPISODE = EpisodeConfig()


class EpisodeDetector(Compact):
    """Episode state of one area; :meth:`step` returns True on start, False on end, else None."""

    __slots__ = (
        "active",
        "aqi",
        "aqi_since",
        "basis",
        "calm_since",
        "last_step_ms",
        "median",
        "rise_since",
        "share",
    )

    def __init__(self) -> None:
        self.active = False
        #: event time since when the area has been rising / heavily polluted / calm (-1: not)
        self.rise_since = -1
        self.aqi_since = -1
        self.calm_since = -1
        self.last_step_ms = -1
        self.share = 0.0
        self.median = 0.0
        #: the median hourly PM AQI of the last evaluation (0 when not judged)
        self.aqi = 0
        #: what started the episode: "relative" or "aqi"
        self.basis = ""

    @property
    def building(self) -> bool:
        """Whether the area is rising (or heavily polluted) but not yet in an episode."""
        return not self.active and (self.rise_since >= 0 or self.aqi_since >= 0)

    def due(self, ts_ms: int, cfg: EpisodeConfig = DEFAULT_EPISODE) -> bool:
        """Whether an evaluation is due at ``ts_ms`` (one per ``step_ms``)."""
        return ts_ms >= self.last_step_ms + cfg.step_ms

    def step(
        self,
        ts_ms: int,
        elevations: list[float],
        cfg: EpisodeConfig = DEFAULT_EPISODE,
        *,
        ring: list[float] | None = None,
        aqis: list[int] | None = None,
    ) -> bool | None:
        """Evaluate the area from its healthy stations' elevations (and current hourly PM AQI,
        ``aqis``) at ``ts_ms``.

        ``ring``: elevations of the stations around a small area (see the module docstring).
        """
        self.last_step_ms = ts_ms
        n = len(elevations)
        if n == 0:
            self.share = 0.0
            self.median = 0.0
            rising = False
            calm = True
        else:
            thr = cfg.elevated
            up = sum(1 for e in elevations if e > thr)
            self.share = up / n
            self.median = median(elevations)
            rising = self.share >= cfg.share_on and self.median > thr
            if rising and n < cfg.min_stations:
                rising = (
                    up == n
                    and ring is not None
                    and len(ring) > 0
                    and sum(1 for e in ring if e > thr) >= cfg.ring_share * len(ring)
                )
            calm = self.share < cfg.share_off
        heavy = False
        if aqis:
            self.aqi = int(median(aqis))
            heavy = len(aqis) >= cfg.aqi_min_stations and self.aqi > cfg.aqi_on
            # a rise into air that is still good is no pollution episode
            rising = rising and self.aqi > cfg.aqi_polluted
        else:
            self.aqi = 0
        self.rise_since = (self.rise_since if self.rise_since >= 0 else ts_ms) if rising else -1
        self.aqi_since = (self.aqi_since if self.aqi_since >= 0 else ts_ms) if heavy else -1
        calm = calm and not heavy
        self.calm_since = (self.calm_since if self.calm_since >= 0 else ts_ms) if calm else -1
        if not self.active:
            if self.aqi_since >= 0 and ts_ms - self.aqi_since >= cfg.aqi_for_ms:
                self.active, self.basis = True, "aqi"
                return True
            if self.rise_since >= 0 and ts_ms - self.rise_since >= cfg.for_ms:
                self.active, self.basis = True, "relative"
                return True
        elif self.calm_since >= 0 and ts_ms - self.calm_since >= cfg.clear_ms:
            self.active = False
            return False
        return None
