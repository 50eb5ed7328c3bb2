"""``worksite.resumption``: illegal resumption of work at a site under a suspension order.

The model the flow registers. Events: ``order`` (always routed, keyed by site), ``video`` and
``power`` (routed only while the site's order is active, see :class:`OrderGate`), and
``hotline`` noise complaints (routed to the nearest suspended site within
``complaint_radius_m``, as corroboration). The per-site logic is in
:class:`~models.worksites.resumption.SiteState`.

Signals: subject ``("site", site_id)``; ``active=True`` when a channel holds (first time: the
alert fires; then at most one update per window while it holds), ``active=False`` when
activity stops for ``quiet_windows`` windows, or the order is lifted or expires.

Score (in [0, 1], higher = more certain the site is working):
``1 - (1 - 0.8 sv)(1 - 0.8 sp)(1 - 0.3 night)(1 - 0.3 complaint)`` where ``sv`` is the video
strength (the larger of the m-of-n fraction and CUSUM/h, each capped at 1), ``sp`` the power
strength (0.5 at the threshold, 1.0 at twice it). Level: yellow for one channel by day, one
step up each for video and power together, night (22:00-06:00 local), and a recent noise
complaint; red at most.

Cost for records of sites with no order: ``route`` does one ``dict.get`` and returns None, so
the flow never touches keyed state for them (measured in ``benchmarks/eval_worksites.py``).

>>> from citywatch.events import Order, Power, Video
>>> from citywatch.registry import Site
>>> m = WorksiteResumption({"W1": Site(id="W1", name="一号工地", lat=32.0, lon=120.9, idle_kw=5.0)})
>>> t0 = 1_762_041_600_000  # 2025-11-02 08:00 Asia/Shanghai
>>> m.route(Video(ts=t0, camera="C1", site="W1", persons=9)) is None   # no order yet
True
>>> st = m.new_state("W1")
>>> m.update(st, Order(ts=t0 - 3_600_000, site="W1", action="suspend"))  # an hour ago
[]
>>> sigs = [s for i in range(1, 5)
...         for s in m.update(st, Power(ts=t0 + i * 60_000, meter="M1", site="W1", kw=40.0))]
>>> [(s.active, s.level.name, s.evidence["channels"]) for s in sigs]
[(True, 'YELLOW', ['power']), (True, 'YELLOW', ['power'])]
>>> lift = Order(ts=t0 + 600_000, site="W1", action="lift")
>>> [(s.active, s.evidence["reason"]) for s in m.update(st, lift)]
[(False, 'order lifted')]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import ClassVar

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Event, Hotline, Order, Power, Video
from citywatch.registry import Registry, Site
from models.base import Model
from models.worksites.gate import OrderGate
from models.worksites.resumption import Change, ResumptionConfig, SiteState

__all__ = ["NOISE_WORDS", "WorksiteResumption", "is_noise_complaint"]

RULE = "worksite.resumption"
#: Words of a construction-noise complaint (category or text).
NOISE_WORDS: tuple[str, ...] = ("噪", "施工", "轰鸣", "机器声", "打桩", "挖掘机", "扰民", "noise")
_M_PER_DEG_LAT = 111_320.0


def is_noise_complaint(ev: Hotline) -> bool:
    """True when the ticket's category or text speaks of (construction) noise."""
    cat = ev.category.lower()
    return any(w in cat or w in ev.text for w in NOISE_WORDS)


class WorksiteResumption(Model):
    """Illegal resumption of work at suspended sites: video + power fusion per site.

    Parameters
    ----------
    sites
        The registry (or its ``sites`` mapping): coordinates, district, grid and ``idle_kw``
        per site. Unknown sites still work (no place fields, power baseline learned).
    config
        :class:`ResumptionConfig`; its defaults are documented in ``docs/models/worksites.md``.
    """

    name: ClassVar[str] = RULE
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"video", "power", "order", "hotline"})
    #: ``route`` keeps the order gate: the flow replays orders through it after a restart.
    route_kinds: ClassVar[frozenset[str]] = frozenset({"order"})

    def __init__(
        self,
        sites: Registry | Mapping[str, Site] | None = None,
        config: ResumptionConfig | None = None,
    ) -> None:
        self.config = config or ResumptionConfig()
        src = sites.sites if isinstance(sites, Registry) else (sites or {})
        self.sites: dict[str, Site] = dict(src)
        self.gate = OrderGate(grace_ms=self.config.quiet_windows * self.config.window_ms)

    # -- routing (the hot path) ----------------------------------------------------------------

    def route(self, event: Event) -> str | None:
        """The site key, or None: video/power of sites with no active order cost one dict probe.

        Orders also update the gate here (idempotently), so that the gate sees each order in
        stream order before the video that follows it.
        """
        cls = type(event)
        if cls is Video or cls is Power:
            site = event.site  # type: ignore[union-attr]
            until = self.gate.until.get(site) if site is not None else None
            if until is None:
                return None
            if until and event.ts > until + self.gate.grace_ms:
                return None
            return site
        if cls is Order:
            self.gate.apply(event)  # type: ignore[arg-type]
            return event.site  # type: ignore[union-attr]
        if cls is Hotline and self.gate.until and self.config.complaint_radius_m > 0:
            return self._complaint_site(event)  # type: ignore[arg-type]
        return None

    def watches(self, site: str | None, ts: int) -> bool:
        """The gate alone, for a flow that filters a batch before calling ``route``."""
        return self.gate.admits(site, ts)

    def _complaint_site(self, ev: Hotline) -> str | None:
        if ev.lat is None or ev.lon is None or not is_noise_complaint(ev):
            return None
        best, best_d2 = None, self.config.complaint_radius_m**2
        kx = _M_PER_DEG_LAT * math.cos(math.radians(ev.lat))
        for sid in self.gate.until:
            site = self.sites.get(sid)
            if site is None:
                continue
            dy = (site.lat - ev.lat) * _M_PER_DEG_LAT
            dx = (site.lon - ev.lon) * kx
            d2 = dx * dx + dy * dy
            if d2 <= best_d2:
                best, best_d2 = sid, d2
        return best

    # -- keyed state -----------------------------------------------------------------------------

    def new_state(self, key: str) -> SiteState:
        site = self.sites.get(key)
        return SiteState(key, idle_kw=site.idle_kw if site is not None else None)

    def update(self, state: SiteState, event: Event) -> list[Signal]:
        cfg = self.config
        cls = type(event)
        if cls is Video:
            ch = state.observe_video(
                event.ts,
                event.persons,  # type: ignore[union-attr]
                event.vehicles,  # type: ignore[union-attr]
                event.machinery,  # type: ignore[union-attr]
                cfg,
            )
        elif cls is Power:
            ch = state.observe_power(event.ts, event.meter, event.kw, cfg)  # type: ignore[union-attr]
        elif cls is Order:
            self.gate.apply(event)  # type: ignore[arg-type]
            standing = event.ts - self.gate.first_ms <= cfg.startup_s * 1000
            ch = state.apply_order(
                event.ts,
                event.action,  # type: ignore[union-attr]
                event.until,  # type: ignore[union-attr]
                cfg,
                standing=standing,
            )
        elif cls is Hotline:
            ch = state.observe_complaint(event.ts)
        else:
            return []
        if ch is Change.NONE:
            return []
        return [self._signal(state, event.ts, ch)]

    def on_watermark(self, state: SiteState, watermark_ms: int) -> list[Signal]:
        """Expiry and silent cameras; also re-opens the gate for this state's active order.

        The gate lives on the model, which the flow does not snapshot (it replays orders
        through ``route`` after a restart: ``route_kinds``). Used on its own, after a restart
        the first watermark re-opens the gate of every site whose restored state still holds
        an active order (one dict probe per state and watermark).
        """
        ch = state.tick(watermark_ms, self.config)
        if state.order_on and state.site not in self.gate.until:
            self.gate.until[state.site] = state.until_ms
        return [] if ch is Change.NONE else [self._signal(state, watermark_ms, ch)]

    def is_idle(self, state: SiteState) -> bool:
        """No order and no alert: the flow may discard this key's state."""
        return state.is_idle

    # -- signals ---------------------------------------------------------------------------------

    def _signal(self, st: SiteState, ts: int, ch: Change) -> Signal:
        cfg = self.config
        site = self.sites.get(st.site)
        name = site.name if site is not None else st.site
        lat = site.lat if site is not None else None
        lon = site.lon if site is not None else None
        district = (site.district or None) if site is not None else None
        grid = (site.grid or None) if site is not None else None
        subject = Subject("site", st.site)
        if ch is Change.CLEAR:
            return Signal(
                rule=RULE,
                subject=subject,
                ts=ts,
                active=False,
                title=f"{name}复工告警解除",
                evidence={"reason": st.clear_reason, "since_ts": st.first_ts},
                model=self.model_id,
                lat=lat,
                lon=lon,
                district=district,
                grid=grid,
            )
        slot = ts // cfg.window_ms
        channels = st.channels(slot, cfg)
        video = any(c.startswith("video") for c in channels)
        power = "power" in channels
        night = cfg.is_night(ts)
        complaint = (
            st.last_complaint_ts >= 0 and ts - st.last_complaint_ts <= cfg.complaint_ttl_s * 1000
        )
        active_windows = st.persist.count_at(slot)
        sv = max(active_windows / cfg.n, min(1.0, st.cusum.s / st.cusum.h)) if video else 0.0
        thr = st.threshold_kw(cfg)
        sp = min(1.0, 0.5 + 0.5 * (st.total_kw - thr) / max(thr, 1.0)) if power else 0.0
        score = 1.0 - (1.0 - 0.8 * sv) * (1.0 - 0.8 * sp)
        score = 1.0 - (1.0 - score) * (0.7 if night else 1.0) * (0.7 if complaint else 1.0)
        level = min(int(Level.RED), int(Level.YELLOW) + (video and power) + night + complaint)
        has_base = st.base_kw >= 0.0
        evidence = {
            "channels": channels,
            "persons": st.persons,
            "vehicles": st.vehicles,
            "machinery": st.machinery,
            "window_s": cfg.window_s,
            "active_windows": active_windows,
            "m": cfg.m,
            "n": cfg.n,
            "cusum": round(st.cusum.s, 3),
            "cusum_h": st.cusum.h,
            "baseline": round(st.cusum.mu, 3),
            "kw": round(st.total_kw, 3) if st.total_kw >= 0.0 else None,
            "idle_kw": round(st.base_kw, 3) if has_base else None,
            "kw_threshold": round(thr, 3) if has_base else None,
            "power_above_s": (ts - st.above_since) // 1000 if st.above_since >= 0 else 0,
            "night": night,
            "local_hour": cfg.local_hour(ts),
            "complaints": st.complaints,
            "order_ts": st.order_ts,
            "order_until": st.until_ms or None,
            "since_ts": st.first_ts,
        }
        title = f"{name}停工期间{'夜间' if night else ''}疑似复工"
        return Signal(
            rule=RULE,
            subject=subject,
            ts=ts,
            active=True,
            level=Level(level),
            score=round(max(0.0, min(1.0, score)), 4),
            title=title,
            evidence=evidence,
            model=self.model_id,
            lat=lat,
            lon=lon,
            district=district,
            grid=grid,
        )
