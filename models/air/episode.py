"""Regional episode vs local source: how many stations of an area rise together.

Each station carries an *elevation*: its short-term log level minus its own slow baseline
(``log1p`` units: 0.69 means twice its usual level). An area (a district) is in an **episode**
when, among its stations reporting healthy data, at least ``share_on`` are elevated by more
than ``elevated`` and the median elevation is above ``elevated`` too, for ``for_steps``
consecutive evaluations (one per ``step_ms`` of event time). It ends after ``clear_steps``
evaluations below ``share_off``. One station rising alone never makes an episode: that is a
local source, the job of the spike tracker. An area with fewer than ``min_stations`` stations
is judged with its *ring* too (the other areas' stations next to its own): its own stations
must all be risen and at least ``ring_share`` of the ring with them, since a regional episode
reaches past one small area while a plume does not.

>>> ep = EpisodeDetector()
>>> [ep.step(t * 120_000, [1.0] * 8, cfg=EpisodeConfig(for_steps=3)) for t in range(4)]
[None, None, True, None]
>>> small = EpisodeDetector()     # one station risen, its surroundings not: a local source
>>> {small.step(t * 120_000, [1.0], ring=[0.0, 0.1, 1.0]) for t in range(30)}
{None}
>>> ep.share
1.0
"""

from __future__ import annotations

from dataclasses import dataclass

from models.air.neighbours import median

__all__ = ["EpisodeConfig", "EpisodeDetector"]


@dataclass(frozen=True, slots=True)
class EpisodeConfig:
    #: elevation (log1p units) above which a station counts as risen
    elevated: float = 0.5
    share_on: float = 0.6
    share_off: float = 0.3
    #: fewest healthy reporting stations needed to judge an area
    min_stations: int = 3
    ring_share: float = 0.5
    #: one evaluation per area every ``step_ms``; fires after ``for_steps`` rising ones (10 min),
    #: clears after ``clear_steps`` calm ones (16 min)
    for_steps: int = 5
    clear_steps: int = 8
    step_ms: int = 120_000


DEFAULT_EPISODE = EpisodeConfig()


class EpisodeDetector:
    """Episode state of one area; :meth:`step` returns True on start, False on end, else None."""

    __slots__ = ("active", "last_step_ms", "median", "share", "streak")

    def __init__(self) -> None:
        self.active = False
        self.streak = 0
        self.last_step_ms = -1
        self.share = 0.0
        self.median = 0.0

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
    ) -> bool | None:
        """Evaluate the area from its healthy stations' elevations at ``ts_ms``.

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
        if not self.active:
            self.streak = self.streak + 1 if rising else 0
            if self.streak >= cfg.for_steps:
                self.active, self.streak = True, 0
                return True
        else:
            self.streak = self.streak + 1 if calm else 0
            if self.streak >= cfg.clear_steps:
                self.active, self.streak = False, 0
                return False
        return None
