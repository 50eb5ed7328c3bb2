"""Cross-source incident correlation: alerts and hotline tickets about one place and time.

The strongest signal a command centre has is several independent sources agreeing. The
:class:`IncidentCorrelator` joins, within ``radius_m`` (2 km) and ``window_ms`` (2 h):

========  =====================================================  ============================
source    input                                                  counted when
========  =====================================================  ============================
air       alerts of ``air_rules`` (``air.spike``: a local source) it has a place
vehicle   alerts of ``vehicle_rules`` (``vehicle.dwell``)         not at a registered place
site      alerts of ``site_rules`` (``worksite.resumption``)      it has a place
hotline   tickets, with their cues (``models.hotline.cues``)      a cue some other source
                                                                  can corroborate
========  =====================================================  ============================

Which pairs corroborate each other (:data:`LINKS`): air with smell/chemical/smoke/dust
tickets, with a hazmat truck dwelling *upwind* and with a work site; a hazmat dwell with
smell/chemical tickets; a work site with noise/dust/construction tickets. Upwind: when the
air alert's evidence has the wind (``wind_deg``, the direction it blows *from*, meteorological
convention, and ``wind_ms`` above ``calm_ms``), the truck must lie within ``upwind_deg`` of
that bearing from the station; without wind, distance alone decides. Tickets alone never make
an incident (that is a duplicate cluster, ``hotline.duplicate``).

Level (:meth:`Incident.level`): three or more sources -> red; two sources -> orange, except a
work site corroborated by one other source -> yellow. ``score`` = sources / 4.

API (what the alert engine calls; all event time, no clock)::

    corr = IncidentCorrelator(IncidentConfig(), registry=registry)   # registry optional
    corr.observe_alert(alert)      -> list[Signal]   # every Alert version the engine emits
    corr.observe_ticket(ticket)    -> list[Signal]   # every Hotline event (cues computed here,
                                                     # or pass cues=extract_cues(...))
    corr.advance(watermark_ms)     -> list[Signal]   # closes quiet incidents (active=False)

Each returned :class:`~citywatch.alerts.Signal` has rule ``incident.correlated``, subject
``("incident", id)`` (a stable id: the first members' hash), ``lat``/``lon`` of the incident
(the air station if any, else the dwelling truck, site or tickets' centroid), level and
``evidence``: ``sources``, ``alerts`` (member alert ids), ``tickets`` (member ticket ids),
``rules``, ``subjects``, ``upwind`` (truck ids confirmed upwind), ``radius_m``. A signal is
emitted when an incident forms and whenever it gains a member; feed the signals back into
the alert engine like any model's. Alerts of other rules (including ``incident.correlated``
itself) are ignored, repeated versions of one alert update it in place, and an alert without
lat/lon is placed by ``registry`` (station, site) or skipped.

>>> from citywatch.alerts import Alert, AlertState, Level, Subject
>>> from citywatch.events import Hotline
>>> t0 = 1_762_041_600_000
>>> def alert(aid, rule, kind, sid, ts, lat, lon, **ev):
...     return Alert(id=aid, fingerprint=aid, rule=rule, level=Level.YELLOW,
...                  state=AlertState.FIRING, subject=Subject(kind, sid), first_ts=ts,
...                  last_ts=ts, lat=lat, lon=lon, evidence=ev)
>>> corr = IncidentCorrelator()
>>> corr.observe_alert(alert("a1", "air.spike", "station", "S1", t0, 32.00, 120.90,
...                          wind_deg=270.0, wind_ms=3.0))
[]
>>> corr.observe_ticket(Hotline(ts=t0 + 600_000, ticket="T1", text="有很刺鼻的化工气味",
...                             lat=32.005, lon=120.905))      # one call could be chance
[]
>>> sig = corr.observe_ticket(Hotline(ts=t0 + 660_000, ticket="T2", text="小区里一股化工异味",
...                                   lat=32.003, lon=120.899))
>>> sig[0].rule, sig[0].level.colour, sig[0].evidence["sources"]
('incident.correlated', 'orange', ['air', 'hotline'])
>>> sig = corr.observe_alert(alert("v1", "vehicle.dwell", "vehicle", "V9", t0 + 900_000,
...                                32.001, 120.89, registered=False))   # ~950 m west: upwind
>>> sig[0].level.colour, sig[0].evidence["upwind"], sig[0].evidence["tickets"]
('red', ['V9'], ['T1', 'T2'])
>>> [s.active for s in corr.advance(t0 + 4 * 3_600_000)]
[False]
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from citywatch.alerts import Alert, Level, Signal, Subject
from citywatch.events import Hotline
from citywatch.geo import bearing_deg, grid_id, haversine_m
from citywatch.registry import Registry
from models.hotline.cues import extract_cues
from models.hotline.gazetteer import Gazetteer
from models.hotline.validate import require

__all__ = [
    "LINKS",
    "Incident",
    "IncidentConfig",
    "IncidentCorrelator",
    "Item",
]

RULE: Final = "incident.correlated"
MODEL: Final = "incidents@1"

#: Cues that let a ticket corroborate each other source.
TICKET_CUES: Final[Mapping[str, frozenset[str]]] = {
    "air": frozenset({"smell", "chemical", "smoke", "dust"}),
    "vehicle": frozenset({"smell", "chemical"}),
    "site": frozenset({"noise", "night_noise", "construction", "dust"}),
}
#: Pairs of non-ticket sources that corroborate each other.
LINKS: Final[frozenset[frozenset[str]]] = frozenset(
    {frozenset({"air", "vehicle"}), frozenset({"air", "site"})}
)
_SOURCE_ZH: Final = {"air": "空气", "vehicle": "危化车辆", "site": "工地", "hotline": "热线"}
_WIND_KEYS: Final = ("wind_deg", "wind_from_deg", "wind_dir_deg", "wind_direction")
_ANCHOR_ORDER: Final = ("air", "vehicle", "site")
#: A ticket placed by words less exactly than this (a road, a town) is too vague to correlate.
_MAX_PRECISION_M: Final = 700.0


@dataclass(frozen=True, slots=True)
class IncidentConfig:
    """Hyperparameters of :class:`IncidentCorrelator` (validated on construction)."""

    radius_m: float = 2000.0
    window_ms: int = 2 * 3_600_000
    #: An incident with no new member for this long is closed (``active=False``).
    quiet_ms: int = 2 * 3_600_000
    upwind_deg: float = 60.0
    calm_ms: float = 0.5
    air_rules: frozenset[str] = frozenset({"air.spike"})
    vehicle_rules: frozenset[str] = frozenset({"vehicle.dwell"})
    site_rules: frozenset[str] = frozenset({"worksite.resumption"})
    #: Count hazmat dwells at registered enterprises/depots/fuel stations too.
    include_registered: bool = False
    #: Tickets needed before the hotline counts as a source of an incident. One smell call
    #: near a spike is a coincidence at city scale (hundreds a day); two callers are not.
    min_tickets: int = 2
    #: Re-send an open incident's signal this often (event time) so the alert engine's
    #: quiet period does not resolve it while it is still open here.
    refresh_ms: int = 10 * 60_000
    max_members: int = 50

    def __post_init__(self) -> None:
        checks = (
            ("radius_m", self.radius_m > 0),
            ("window_ms", self.window_ms > 0),
            ("quiet_ms", self.quiet_ms > 0),
            ("upwind_deg", 0 < self.upwind_deg <= 180),
            ("calm_ms", self.calm_ms >= 0),
            ("min_tickets", self.min_tickets >= 1),
            ("refresh_ms", self.refresh_ms > 0),
            ("max_members", self.max_members >= 2),
        )
        require(self, checks)


@dataclass(slots=True)
class Item:
    """One observation: an alert (``ref`` = alert id) or a cued ticket (``ref`` = ticket id)."""

    source: str
    ref: str
    ts: int
    lat: float
    lon: float
    rule: str = ""
    subject: str = ""
    cues: frozenset[str] = frozenset()
    wind_from_deg: float | None = None
    incident: str | None = None


@dataclass(slots=True)
class Incident:
    id: str
    first_ts: int
    last_ts: int
    members: list[Item] = field(default_factory=list)
    upwind: list[str] = field(default_factory=list)
    emitted_ts: int = 0

    def sources(self, min_tickets: int = 1) -> list[str]:
        srcs = {m.source for m in self.members if m.source != "hotline"}
        if sum(m.source == "hotline" for m in self.members) >= min_tickets:
            srcs.add("hotline")
        return sorted(srcs)

    def level(self, min_tickets: int = 1) -> Level | None:
        """Red for three sources or more, orange for two (yellow if one is a work site)."""
        srcs = self.sources(min_tickets)
        if len(srcs) >= 3:
            return Level.RED
        if len(srcs) == 2:
            return Level.YELLOW if "site" in srcs else Level.ORANGE
        return None

    def place(self) -> tuple[float, float]:
        for src in _ANCHOR_ORDER:
            for m in self.members:
                if m.source == src:
                    return m.lat, m.lon
        n = len(self.members)
        return sum(m.lat for m in self.members) / n, sum(m.lon for m in self.members) / n


def _float(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def _angle(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


class IncidentCorrelator:
    """Joins alerts and cued tickets close in space and time into incidents with a level.

    State: live items (at most ``window_ms`` old) and open incidents, both plain containers;
    the optional ``registry`` is reference data for placing alerts without lat/lon.
    """

    def __init__(self, config: IncidentConfig | None = None, registry: Registry | None = None):
        self.config = config or IncidentConfig()
        self.registry = registry
        self._items: deque[Item] = deque()
        self._by_ref: dict[str, Item] = {}
        self._incidents: dict[str, Incident] = {}
        self._gz: Gazetteer | None = None
        self.watermark_ms = 0

    def _gazetteer(self) -> Gazetteer:
        if self._gz is None:
            self._gz = Gazetteer.from_registry(self.registry or Registry())
        return self._gz

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_gz"] = None  # reference data, rebuilt from the registry after a restore
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def open_incidents(self) -> list[str]:
        return sorted(self._incidents)

    # -- inputs ------------------------------------------------------------------------------

    def _source_of(self, alert: Alert) -> str | None:
        cfg = self.config
        if alert.rule in cfg.air_rules:
            return "air"
        if alert.rule in cfg.vehicle_rules:
            if alert.evidence.get("registered") and not cfg.include_registered:
                return None
            return "vehicle"
        if alert.rule in cfg.site_rules:
            return "site"
        return None

    def _place(self, alert: Alert) -> tuple[float, float] | None:
        if alert.lat is not None and alert.lon is not None:
            return alert.lat, alert.lon
        reg = self.registry
        if reg is None:
            return None
        sid = alert.subject.id
        if alert.subject.kind == "station" and sid in reg.stations:
            st = reg.stations[sid]
            return st.lat, st.lon
        if alert.subject.kind == "site" and sid in reg.sites:
            si = reg.sites[sid]
            return si.lat, si.lon
        return None

    def observe_alert(self, alert: Alert) -> list[Signal]:
        """Take one alert version; returns incident signals it causes (maybe none)."""
        source = self._source_of(alert)
        if source is None:
            return []
        out = self.advance(alert.last_ts)
        known = self._by_ref.get(alert.id)
        if known is not None:  # a later version of an alert we hold: refresh, no new member
            known.ts = max(known.ts, alert.last_ts)
            return out
        place = self._place(alert)
        if place is None:
            return out
        wind = None
        if source == "air":
            wind_ms = _float(alert.evidence.get("wind_ms"))
            for key in _WIND_KEYS:
                wind = _float(alert.evidence.get(key))
                if wind is not None:
                    break
            if wind_ms is not None and wind_ms <= self.config.calm_ms:
                wind = None
        item = Item(
            source=source,
            ref=alert.id,
            ts=alert.last_ts,
            lat=place[0],
            lon=place[1],
            rule=alert.rule,
            subject=alert.subject.id,
            wind_from_deg=wind,
        )
        return out + self._add(item)

    def observe_ticket(self, ticket: Hotline, cues: frozenset[str] | None = None) -> list[Signal]:
        """Take one hotline ticket (cues from its text and time unless given).

        A ticket without coordinates is placed by its address in words (the registry's
        gazetteer) when that is exact enough (a community, landmark, site or corner); an
        officer's decision record about an earlier ticket is not a new observation.
        """
        if ticket.is_decision:
            return self.advance(ticket.ts)
        lat, lon = ticket.lat, ticket.lon
        if lat is None or lon is None:
            place = self._gazetteer().place(ticket.address, ticket.text)
            if place.precision_m > _MAX_PRECISION_M:
                return self.advance(ticket.ts)
            lat, lon = place.lat, place.lon
        if lat is None or lon is None:
            return self.advance(ticket.ts)
        if cues is None:
            cues = extract_cues(ticket.text, ticket.ts)
        if not any(cues & c for c in TICKET_CUES.values()):
            return self.advance(ticket.ts)
        out = self.advance(ticket.ts)
        if ticket.ticket in self._by_ref:
            return out
        item = Item(
            source="hotline",
            ref=ticket.ticket,
            ts=ticket.ts,
            lat=lat,
            lon=lon,
            subject=ticket.ticket,
            cues=cues,
        )
        return out + self._add(item)

    # -- correlation ---------------------------------------------------------------------------

    def _compatible(self, a: Item, b: Item) -> bool:
        """Do ``a`` and ``b`` corroborate each other (sources, cues, wind; place checked apart)?"""
        if a.source == b.source:
            return False
        if a.source == "hotline" or b.source == "hotline":
            t, o = (a, b) if a.source == "hotline" else (b, a)
            return bool(t.cues & TICKET_CUES[o.source])
        if frozenset({a.source, b.source}) not in LINKS:
            return False
        if {a.source, b.source} == {"air", "vehicle"}:
            return self._upwind(*((a, b) if a.source == "air" else (b, a)))
        return True

    def _upwind(self, air: Item, truck: Item) -> bool:
        """Is the truck upwind of the station (or is the wind unknown)?"""
        if air.wind_from_deg is None:
            return True
        if haversine_m(air.lat, air.lon, truck.lat, truck.lon) < 100.0:
            return True  # on top of the station: any wind carries it there
        bearing = bearing_deg(air.lat, air.lon, truck.lat, truck.lon)
        return _angle(bearing, air.wind_from_deg) <= self.config.upwind_deg

    def _near(self, a: Item, b: Item) -> bool:
        return (
            abs(a.ts - b.ts) <= self.config.window_ms
            and haversine_m(a.lat, a.lon, b.lat, b.lon) <= self.config.radius_m
        )

    def _add(self, item: Item) -> list[Signal]:
        cfg = self.config
        self._items.append(item)
        self._by_ref[item.ref] = item
        # Join the nearest open incident that some member of corroborates this item.
        best: Incident | None = None
        best_d = math.inf
        for inc in self._incidents.values():
            if item.ts - inc.last_ts > cfg.window_ms or len(inc.members) >= cfg.max_members:
                continue
            lat, lon = inc.place()
            d = haversine_m(item.lat, item.lon, lat, lon)
            if d > cfg.radius_m or d >= best_d:
                continue
            if any(self._near(item, m) and self._compatible(item, m) for m in inc.members):
                best, best_d = inc, d
        if best is not None:
            before = best.level(cfg.min_tickets)
            n_before = len(best.members)
            self._join(best, item)
            after = best.level(cfg.min_tickets)
            if after is None or (after == before and len(best.members) == n_before):
                return []
            return [self._signal(best, item.ts)]
        # Otherwise: a new incident from this item and the free items that corroborate it.
        partners = [
            m
            for m in self._items
            if m is not item
            and m.incident is None
            and self._near(item, m)
            and self._compatible(item, m)
        ]
        if not partners:
            return []
        group = [item, *partners]
        # Tickets that corroborate a partner but not the item (e.g. a smell call near the
        # station, when the item is the truck) join too.
        for m in self._items:
            if m.incident is None and m not in group and m.source == "hotline":
                if any(self._near(m, g) and self._compatible(m, g) for g in group):
                    group.append(m)
        first = min(group, key=lambda m: (m.ts, m.ref))
        key = "\x1f".join(sorted(m.ref for m in group[:2]))
        digest = hashlib.blake2b(key.encode(), digest_size=5).hexdigest()
        inc = Incident(id=f"inc-{first.ts:x}-{digest}", first_ts=first.ts, last_ts=first.ts)
        for m in sorted(group, key=lambda m: (m.ts, m.ref)):
            self._join(inc, m)
        if inc.level(cfg.min_tickets) is None:
            for m in inc.members:
                m.incident = None
            return []
        self._incidents[inc.id] = inc
        return [self._signal(inc, item.ts)]

    def _join(self, inc: Incident, item: Item) -> None:
        item.incident = inc.id
        inc.members.append(item)
        inc.last_ts = max(inc.last_ts, item.ts)
        inc.first_ts = min(inc.first_ts, item.ts)
        if item.source == "vehicle":
            airs = [m for m in inc.members if m.source == "air" and m.wind_from_deg is not None]
            if any(self._upwind(a, item) for a in airs):
                inc.upwind.append(item.subject)
        elif item.source == "air" and item.wind_from_deg is not None:
            for m in inc.members:
                if m.source == "vehicle" and m.subject not in inc.upwind and self._upwind(item, m):
                    inc.upwind.append(m.subject)

    def _signal(self, inc: Incident, ts: int, *, active: bool = True) -> Signal:
        cfg = self.config
        inc.emitted_ts = ts
        srcs = inc.sources(cfg.min_tickets)
        level = inc.level(cfg.min_tickets) or Level.YELLOW
        lat, lon = inc.place()
        tickets = [m.ref for m in inc.members if m.source == "hotline"]
        alerts = [m.ref for m in inc.members if m.source != "hotline"]
        title = "多源关联事件：" + "、".join(_SOURCE_ZH[s] for s in srcs)
        district = None
        if self.registry is not None and self.registry.districts:
            district = self.registry.district_of(lat, lon)
        return Signal(
            rule=RULE,
            subject=Subject("incident", inc.id),
            ts=ts,
            active=active,
            level=level,
            score=min(1.0, len(srcs) / 4.0),
            title=title,
            evidence={
                "sources": srcs,
                "alerts": alerts,
                "tickets": tickets,
                "rules": sorted({m.rule for m in inc.members if m.rule}),
                "subjects": sorted({m.subject for m in inc.members if m.source != "hotline"}),
                "upwind": list(inc.upwind),
                "cues": sorted({c for m in inc.members for c in m.cues}),
                "first_ts": inc.first_ts,
                "last_ts": inc.last_ts,
                "radius_m": cfg.radius_m,
            },
            model=MODEL,
            lat=lat,
            lon=lon,
            district=district,
            grid=grid_id(lat, lon),
        )

    # -- time ----------------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """The least watermark at which :meth:`advance` would close or refresh an incident or
        forget an item (None: nothing, until the next observation). Callers may skip the
        watermarks before it; whatever changes :meth:`advance` must change this too."""
        cfg = self.config
        dues = [inc.last_ts + cfg.quiet_ms + 1 for inc in self._incidents.values()]
        dues.extend(inc.emitted_ts + cfg.refresh_ms for inc in self._incidents.values())
        if self._items:
            dues.append(self._items[0].ts + max(cfg.window_ms, cfg.quiet_ms) + 1)
        return min(dues) if dues else None

    def advance(self, watermark_ms: int) -> list[Signal]:
        """Event time reached ``watermark_ms``: forget old items, close quiet incidents."""
        if watermark_ms <= self.watermark_ms:
            return []
        self.watermark_ms = watermark_ms
        cfg = self.config
        out: list[Signal] = []
        for iid, inc in list(self._incidents.items()):
            if watermark_ms - inc.last_ts > cfg.quiet_ms:
                del self._incidents[iid]
                out.append(self._signal(inc, watermark_ms, active=False))
            elif watermark_ms - inc.emitted_ts >= cfg.refresh_ms:
                out.append(self._signal(inc, watermark_ms))
        horizon = watermark_ms - max(cfg.window_ms, cfg.quiet_ms)
        while self._items and self._items[0].ts < horizon:
            old = self._items.popleft()
            if self._by_ref.get(old.ref) is old:
                del self._by_ref[old.ref]
        return out
