"""The hotline model the flow registers: de-duplication and surges in one keyed state.

:class:`HotlineModel` routes every ``hotline`` event to one key (``"city"``): 12,000 tickets a
day city-wide fit one state, and a single key lets a duplicate near a district border meet
its twin. The state (:class:`HotlineState`) holds a
:class:`~models.hotline.dedup.DuplicateClusterer` and a
:class:`~models.hotline.surge.SurgeDetector`. Per ticket it emits:

* ``hotline.duplicate`` on subject ``("ticket", canonical id)`` when the ticket joins a cluster:
  ``evidence`` has ``size`` and ``members`` (capped at ``max_members``), the new ``ticket``,
  ``duplicate_of`` (its best match), ``similarity``, ``distance_m`` and ``category``; level
  blue for 2 tickets, yellow for 3-4, orange for 5+; score = the best match's similarity. When
  clusters merge, the absorbed canonical gets a clear (``active=False``); when a cluster's last
  ticket leaves the window, its clear carries the final size.
* ``hotline.surge`` on subject ``("district", f"{district}/{category}")`` while the count is
  surprising and once when it ends (see ``surge.py`` for what the score means).

The district of a ticket comes from the registry's outlines (cached per grid cell); without
a registry or outside every outline it is ``"unknown"``. The incident correlator is separate
(``models/incidents.py``): the flow feeds it tickets and alerts.

>>> from citywatch.events import Hotline
>>> m = HotlineModel()
>>> t0 = 1_762_041_600_000
>>> st = m.new_state("city")
>>> _ = m.update(st, Hotline(ts=t0, ticket="T1", text="幸福小区门口化工厂排放刺鼻气味",
...                          category="air", lat=32.01, lon=120.86))
>>> out = m.update(st, Hotline(ts=t0 + 60_000, ticket="T2", text="幸福小区这边化工厂的气味很刺鼻",
...                            category="air", lat=32.011, lon=120.861))
>>> [(s.rule, s.subject.id, s.evidence["size"], s.evidence["members"]) for s in out]
[('hotline.duplicate', 'T1', 2, ['T1', 'T2'])]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Event, Hotline
from citywatch.geo import GRID_DEG, grid_cell, grid_id
from citywatch.registry import Registry
from models.base import Model
from models.hotline.dedup import ClusterInfo, DedupConfig, DedupResult, DuplicateClusterer
from models.hotline.surge import SurgeConfig, SurgeDetector, SurgeStatus

__all__ = ["HotlineConfig", "HotlineModel", "HotlineState"]

DUPLICATE_RULE: Final = "hotline.duplicate"
SURGE_RULE: Final = "hotline.surge"
UNKNOWN_DISTRICT: Final = "unknown"


@dataclass(frozen=True, slots=True)
class HotlineConfig:
    dedup: DedupConfig = field(default_factory=DedupConfig)
    surge: SurgeConfig = field(default_factory=SurgeConfig)
    #: Count only tickets that are not duplicates towards surges: a surge is "many distinct
    #: problems"; many calls about one problem are a duplicate cluster (its own alert).
    surge_distinct_only: bool = True


@dataclass(slots=True)
class HotlineState:
    """Per-key state: the clusterer and the surge detector (plain containers, picklable)."""

    dedup: DuplicateClusterer
    surge: SurgeDetector


class HotlineModel(Model):
    """De-duplicates tickets and detects surges (see the module docstring)."""

    name: ClassVar[str] = "hotline"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"hotline"})
    shards = 1  # one state for the whole city ("city")

    def __init__(self, registry: Registry | None = None, config: HotlineConfig | None = None):
        self.registry = registry
        self.config = config or HotlineConfig()
        self._district_cache: dict[tuple[int, int], str] = {}

    def route(self, event: Event) -> str | None:
        return "city" if isinstance(event, Hotline) else None

    def new_state(self, key: str) -> HotlineState:
        return HotlineState(
            dedup=DuplicateClusterer(self.config.dedup),
            surge=SurgeDetector(self.config.surge),
        )

    def district_of(self, lat: float | None, lon: float | None, grid: str | None = None) -> str:
        """The ticket's district by the registry outlines (cached per grid cell)."""
        if self.registry is None or not self.registry.districts:
            return UNKNOWN_DISTRICT
        if lat is None or lon is None:
            if not grid or not grid.startswith("G") or "-" not in grid:
                return UNKNOWN_DISTRICT
            row, _, col = grid[1:].partition("-")
            if not (row.isdigit() and col.isdigit()):
                return UNKNOWN_DISTRICT
            lat = 31.6 + (int(row) + 0.5) * GRID_DEG
            lon = 120.2 + (int(col) + 0.5) * GRID_DEG
        cell = grid_cell(lat, lon)
        hit = self._district_cache.get(cell)
        if hit is None:
            hit = self.registry.district_of(lat, lon) or UNKNOWN_DISTRICT
            if len(self._district_cache) < 100_000:
                self._district_cache[cell] = hit
        return hit

    def update(self, state: HotlineState, event: Event) -> list[Signal]:
        if not isinstance(event, Hotline):
            return []
        res = state.dedup.update(event)
        out = [self._closed(info, event.ts) for info in res.closed if info.size >= 2]
        out.extend(self._merged(res, event.ts))
        district = self.district_of(event.lat, event.lon, event.grid)
        if res.is_duplicate:
            out.append(self._duplicate(res, event, district))
        out.extend(self._surges(state, event, res, district))
        return out

    def on_watermark(self, state: HotlineState, watermark_ms: int) -> list[Signal]:
        out = [
            self._closed(info, watermark_ms)
            for info in state.dedup.expire(watermark_ms)
            if info.size >= 2
        ]
        out.extend(self._surge_signal(st) for st in state.surge.advance(watermark_ms))
        return out

    # -- signals ----------------------------------------------------------------------------

    def _surges(
        self, state: HotlineState, event: Hotline, res: DedupResult, district: str
    ) -> list[Signal]:
        if self.config.surge_distinct_only and res.is_duplicate:
            st = state.surge.advance(event.ts)
            return [self._surge_signal(s) for s in st]
        status = state.surge.update(event.ts, district, event.category or "other")
        return [] if status is None else [self._surge_signal(status)]

    def _duplicate(self, res: DedupResult, event: Hotline, district: str) -> Signal:
        c = res.cluster
        level = Level.BLUE if c.size <= 2 else Level.YELLOW if c.size <= 4 else Level.ORANGE
        evidence: dict[str, Any] = {
            "size": c.size,
            "members": list(c.members),
            "ticket": res.ticket,
            "duplicate_of": res.duplicate_of,
            "similarity": round(res.similarity, 3),
            "distance_m": None if res.distance_m is None else round(res.distance_m, 1),
            "category": c.category,
            "first_ts": c.first_ts,
        }
        if res.merged:
            evidence["merged"] = list(res.merged)
        return Signal(
            rule=DUPLICATE_RULE,
            subject=Subject("ticket", c.canonical),
            ts=event.ts,
            active=True,
            level=level,
            score=round(res.similarity, 4),
            title=f"重复诉求：{c.size}件工单反映同一问题",
            evidence=evidence,
            model=self.model_id,
            lat=c.lat,
            lon=c.lon,
            district=district,
            grid=c.grid
            or (grid_id(c.lat, c.lon) if c.lat is not None and c.lon is not None else None),
        )

    def _merged(self, res: DedupResult, ts: int) -> list[Signal]:
        return [
            Signal(
                rule=DUPLICATE_RULE,
                subject=Subject("ticket", canonical),
                ts=ts,
                active=False,
                title="重复诉求已并入更早的工单",
                evidence={"merged_into": res.canonical},
                model=self.model_id,
            )
            for canonical in res.merged
        ]

    def _closed(self, info: ClusterInfo, ts: int) -> Signal:
        return Signal(
            rule=DUPLICATE_RULE,
            subject=Subject("ticket", info.canonical),
            ts=ts,
            active=False,
            title=f"重复诉求结束：共{info.size}件工单",
            evidence={"size": info.size, "members": list(info.members), "last_ts": info.last_ts},
            model=self.model_id,
            lat=info.lat,
            lon=info.lon,
            grid=info.grid,
        )

    def _surge_signal(self, st: SurgeStatus) -> Signal:
        window_h = self.config.surge.window_ms / 3_600_000
        title = (
            f"{st.district}{st.category}类诉求激增：{window_h:g}小时{st.count}件（常态{st.expected:.1f}件）"
            if st.active
            else f"{st.district}{st.category}类诉求回落"
        )
        return Signal(
            rule=SURGE_RULE,
            subject=Subject("district", st.key),
            ts=st.ts,
            active=st.active,
            level=Level.ORANGE if st.p_value <= self.config.surge.alpha**2 else Level.YELLOW,
            score=round(st.score, 4),
            title=title,
            evidence={
                "count": st.count,
                "expected": round(st.expected, 3),
                "p_value": float(f"{st.p_value:.3g}"),
                "window_s": self.config.surge.window_ms // 1000,
                "district": st.district,
                "category": st.category,
                "started_ts": st.started_ts,
            },
            model=self.model_id,
            district=None if st.district == UNKNOWN_DISTRICT else st.district,
        )
