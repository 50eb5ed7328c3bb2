"""The vehicle models the flow registers: ``vehicle.dwell`` and ``vehicle.workshop``.

:class:`DwellModel` keys GPS fixes by vehicle. Per vehicle it runs a
:class:`~models.vehicles.stay_point.StayPointDetector`; when a stop is confirmed it looks up the
stop's context in a :class:`~models.vehicles.spatial.PlaceIndex` of the registry's places and
zones, and while the truck stays the :class:`~models.vehicles.dwell.DwellPolicy` decides the
verdict and level from context and dwell time. Signals (rule ``vehicle.dwell``, subject
``("vehicle", id)``):

* active, when the dwell passes its context's first threshold, on every level change, and every
  ``refresh_s`` while it stays (so the engine's quiet-period auto-resolve never fires on a truck
  that is still there; the engine dedups the repeats);
* inactive (the clear) when the stop ends: a fix outside the radius confirmed by the next one
  (a single outlier or GPS jump is dropped), a silence longer than the vehicle's allowance,
  or event time passing that allowance beyond its last fix (:meth:`DwellModel.on_watermark`).

Terminals that sleep (ignition off: one fix every 5-60 min; ``Vehicle.sleep_interval_s`` in
the registry, else learned by the detector): the stay goes on across their silences, and
between fixes the dwell clock runs on event time up to one interval after the last fix, so a
threshold is signalled when it passes and the alert is refreshed between fixes (evidence
``last_fix_ms`` then says when the truck was last seen).

A *dwell* is a stop, or consecutive stops at one spot: a stop whose first fix was off-centre
(a slow approach) can end on a jittered fix that is outside the radius of that first fix but
not of the stop's centre. Such a stop is *held*: if the next stop confirms within the radius
of the held centre, the dwell goes on (same ``start_ms``, no clear); if the truck moves away
first, the clear carries the held end time. The dwell clock starts at the detector's
``arrival_ms``. See ``docs/models/vehicles.md``.

The score is :meth:`DwellPolicy.score`: 0.5 at the context's first threshold rising to 1.0 at
red. Evidence: ``context``, ``verdict``, ``ref`` (place or zone id), ``ref_m``, ``dwell_s``,
``start_ms``, ``threshold_s``, ``registered`` (at a registered place), ``n_fixes``, ``un``.

:class:`WorkshopModel` consumes those dwell *signals* (not events): the flow routes every
``vehicle.dwell`` signal it emits to :meth:`WorkshopModel.route`, which keys the rare relevant
ones (not at a registered place) to one city-wide state, a
:class:`~models.vehicles.workshops.WorkshopRanker`.
It emits ``vehicle.workshop`` for the top candidates, subject ``("spot", candidate id)`` with the
candidate's centre as lat/lon, when one enters the top or its counts change, again for the whole
top every ``refresh_s`` of event time (6 h: below the engine's 24-h quiet period, since visits
can be days apart), and a clear when a candidate drops out of the top.
Score: ``n/(n+2)`` for ``n`` distinct vehicles (0.5 at two vehicles).

>>> from citywatch.events import Gps
>>> from citywatch.registry import Registry, Zone
>>> reg = Registry(zones={"Z1": Zone(id="Z1", name="实验小学", lat=32.0, lon=120.9,
...                                    category="school")})
>>> model = DwellModel(reg)
>>> state = model.new_state("V1")
>>> t0 = 1_767_225_600_000
>>> out = []
>>> for i in range(70):  # parked 11.5 min by a school, a fix every 10 s
...     out += model.update(state, Gps(ts=t0 + i * 10_000, vehicle="V1", lat=32.0, lon=120.9))
>>> [(s.active, s.level.name, s.evidence["context"], s.evidence["dwell_s"]) for s in out]
[(True, 'ORANGE', 'school', 600.0)]
>>> model.update(state, Gps(ts=t0 + 700_000, vehicle="V1", lat=32.02, lon=120.9))
[]
>>> clear = model.update(state, Gps(ts=t0 + 710_000, vehicle="V1", lat=32.021, lon=120.9))
>>> (clear[0].active, clear[0].evidence["dwell_s"], clear[0].evidence["end_ms"] - t0)
(False, 700.0, 700000)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar, Final

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Event, Gps
from citywatch.geo import grid_id
from citywatch.registry import Registry
from models.base import Model
from models.vehicles.dwell import CONTEXTS, DwellPolicy, Verdict, context_key
from models.vehicles.slots import CompactSlots
from models.vehicles.spatial import PlaceIndex
from models.vehicles.stay_point import (
    DEFAULT_MAX_GAP_S,
    DEFAULT_MIN_DURATION_S,
    DEFAULT_RADIUS_M,
    StayPointDetector,
    Stop,
    planar_distance_m,
)
from models.vehicles.workshops import RankChange, WorkshopRanker

__all__ = ["DWELL_RULE", "WORKSHOP_RULE", "DwellModel", "VehicleState", "WorkshopModel"]

DWELL_RULE: Final = "vehicle.dwell"
WORKSHOP_RULE: Final = "vehicle.workshop"
_WORKSHOP_KEY: Final = "city"
_CONTEXT_ZH: Final = {
    "fuel": "加油站",
    "gate": "企业门口",
    "school": "学校",
    "water": "水源地",
    "hospital": "医院",
    "residential": "居民区",
    "unregistered": "非登记地点",
}


class VehicleState(CompactSlots):
    """Per-vehicle state: the stay-point detector plus what the current dwell has been told.

    A *dwell* is one or more consecutive stops at one spot (see :class:`DwellModel` on held
    stops). ``stop_ms`` is the start of the detector stop already accounted for; ``start_ms``
    the dwell's arrival; ``context`` is None until the dwell is located; ``level`` is the last
    level signalled (0 = nothing signalled, so no clear is owed). ``held_end_ms`` > 0 while a
    stop that ended ambiguously is held open, with its centre in ``held_lat``/``held_lon``.
    """

    __slots__ = (
        "context",
        "det",
        "district",
        "held_end_ms",
        "held_lat",
        "held_lon",
        "held_n",
        "last_emit_ms",
        "level",
        "ref",
        "ref_m",
        "start_ms",
        "stop_ms",
        "un",
        "vehicle",
    )

    def __init__(self, vehicle: str, det: StayPointDetector) -> None:
        self.vehicle = vehicle
        self.det = det
        self.stop_ms = -1
        #: The cargo (UN number) of the last fix, for signals between fixes.
        self.un: str | None = None
        self.reset()

    def reset(self) -> None:
        self.start_ms = 0
        self.context: str | None = None
        self.ref: str | None = None
        self.ref_m: float | None = None
        self.district: str | None = None
        self.level = 0
        self.last_emit_ms = 0
        self.held_end_ms = 0
        self.held_lat = 0.0
        self.held_lon = 0.0
        self.held_n = 0


class DwellModel(Model):
    """``vehicle.dwell``: stay points in context, signalled while the truck is still there.

    Parameters
    ----------
    registry
        Places and zones for the context index; districts for the signal's ``district``.
    radius_m, min_duration_s, max_gap_s
        The stay-point detector's R, T and G.
    policy
        Thresholds per context (:class:`DwellPolicy`).
    refresh_s
        Re-signal an ongoing dwell this often (keep it below the engine's quiet period).
    margin_m
        Added to place and zone radii for the context lookup (GPS error of the stop centre).
    gate_factor
        A stop outside a place but within this many times its radius is at its gate.
    """

    name: ClassVar[str] = DWELL_RULE
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"gps"})

    def __init__(
        self,
        registry: Registry,
        *,
        radius_m: float = DEFAULT_RADIUS_M,
        min_duration_s: float = DEFAULT_MIN_DURATION_S,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
        policy: DwellPolicy | None = None,
        refresh_s: float = 300.0,
        margin_m: float = 30.0,
        gate_factor: float = 2.0,
    ) -> None:
        if not (refresh_s > 0 and math.isfinite(refresh_s)):
            msg = f"refresh_s: must be a positive finite number, got {refresh_s!r}"
            raise ValueError(msg)
        StayPointDetector(radius_m, min_duration_s, max_gap_s)  # validates the parameters
        self.radius_m = radius_m
        self.min_duration_s = min_duration_s
        self.max_gap_s = max_gap_s
        self.policy = policy or DwellPolicy()
        self.refresh_ms = round(refresh_s * 1000)
        self.registry = registry
        self.index = PlaceIndex(
            registry.places.values(),
            registry.zones.values(),
            margin_m=margin_m,
            gate_factor=gate_factor,
        )

    def route(self, event: Event) -> str | None:
        return event.vehicle if type(event) is Gps else None

    def new_state(self, key: str) -> VehicleState:
        vehicle = self.registry.vehicles.get(key)
        sleep_s = vehicle.sleep_interval_s if vehicle is not None else None
        det = StayPointDetector(
            self.radius_m,
            self.min_duration_s,
            self.max_gap_s,
            sleep_s=sleep_s or 0.0,
            learn=not sleep_s,  # a declared interval is the terminal's setting
        )
        return VehicleState(key, det)

    def update(self, state: VehicleState, event: Event) -> list[Signal]:
        if type(event) is not Gps:
            return []
        det = state.det
        stop = det.update(event.ts, event.lat, event.lon)
        out: list[Signal] = []
        if stop is not None and stop.end_ms is not None:
            if (
                stop.closed_by == "left"
                and state.context is not None
                and det.start_ms == stop.end_ms  # anchored at the fix that ended it
                and planar_distance_m(stop.lat, stop.lon, det.anchor_lat, det.anchor_lon)
                <= self.radius_m
            ):
                # Outside the radius of the stop's first fix but not of its centre: the first
                # fix was off-centre (a slow approach). Hold the dwell until the next stop says
                # whether the truck is still there.
                state.held_end_ms = stop.end_ms
                state.held_lat, state.held_lon, state.held_n = stop.lat, stop.lon, stop.n_fixes
            else:
                self._end(state, stop, event.ts, event.un, out)
        elif state.held_end_ms and det.start_ms != state.held_end_ms:
            # The candidate that began at the held end failed (the detector has filtered
            # outliers by now): the truck did leave.
            self._end_held(state, event.ts, event.un, out)
        state.un = event.un
        self._progress(state, det.last_ms, det.last_ms, event.ts, out)
        return out

    def on_watermark(self, state: VehicleState, watermark_ms: int) -> list[Signal]:
        out: list[Signal] = []
        det = state.det
        stop = det.flush(watermark_ms)
        if stop is not None and stop.end_ms is not None:
            self._end(state, stop, watermark_ms, state.un, out)
        elif state.held_end_ms and watermark_ms - det.last_ms > det.allowed_ms:
            self._end_held(state, watermark_ms, state.un, out)
        elif det.sleep_ms and (det.in_stop or state.held_end_ms):
            # A sleeping terminal: the truck is believed there until E after its last fix, so
            # its dwell clock runs on (thresholds pass); the alert is kept open until the stay
            # ends (a lost report is no departure), its dwell held at the believed presence.
            self._progress(state, det.present_ms(watermark_ms), watermark_ms, watermark_ms, out)
        return out

    def _progress(
        self, state: VehicleState, now_ms: int, emit_ms: int, ts: int, out: list[Signal]
    ) -> None:
        """The dwell as it stands at ``now_ms`` (the last fix, or the believed presence of a
        sleeping terminal): a new stop located, a held one continued or ended, and the
        signal (at ``emit_ms``) when the level changes or ``refresh_s`` has passed."""
        det = state.det
        if not det.in_stop:
            if not state.held_end_ms:
                return
            # Held: by hypothesis the truck is still there, so its dwell clock keeps running.
        elif det.start_ms != state.stop_ms:  # a stop not accounted for yet
            state.stop_ms = det.start_ms
            if state.held_end_ms:
                lat, lon = det.centroid()
                if planar_distance_m(state.held_lat, state.held_lon, lat, lon) <= self.radius_m:
                    state.held_end_ms = 0  # the same dwell goes on
                else:
                    self._end_held(state, ts, state.un, out)
            if state.context is None:
                state.start_ms = det.arrival_ms
                self._locate(state)
        context = state.context or "unregistered"
        dwell_s = (now_ms - state.start_ms) / 1000.0
        verdict, level = self.policy.classify(context, dwell_s)
        if level is None:
            return
        if level != state.level or emit_ms - state.last_emit_ms >= self.refresh_ms:
            state.level = int(level)
            state.last_emit_ms = emit_ms
            out.append(self._signal(state, verdict, level, dwell_s, emit_ms))

    # -- internals ---------------------------------------------------------------------------

    def _locate(self, state: VehicleState) -> str:
        lat, lon = state.det.centroid()
        context, state.ref, state.ref_m = context_key(self.index.lookup(lat, lon))
        state.context = context
        return context

    def _end(
        self, state: VehicleState, stop: Stop, ts: int, un: str | None, out: list[Signal]
    ) -> None:
        if state.level:
            out.append(self._clear(state, stop, ts, un))
        state.reset()

    def _end_held(self, state: VehicleState, ts: int, un: str | None, out: list[Signal]) -> None:
        held = Stop(
            state.start_ms, state.held_end_ms, state.held_lat, state.held_lon, state.held_n, "left"
        )
        self._end(state, held, ts, un, out)

    def _evidence(self, state: VehicleState, dwell_s: float, un: str | None) -> dict[str, Any]:
        ctx = state.context or "unregistered"
        return {
            "context": ctx,
            "ref": state.ref,
            "ref_m": None if state.ref_m is None else round(state.ref_m, 1),
            "registered": ctx in ("enterprise", "depot", "fuel"),
            "dwell_s": dwell_s,
            "start_ms": state.start_ms,
            "threshold_s": self.policy.threshold_s(ctx),
            "n_fixes": state.det.n_fixes,
            "un": un,
        }

    def _signal(
        self, state: VehicleState, verdict: Verdict, level: Level, dwell_s: float, ts: int
    ) -> Signal:
        lat, lon = state.det.centroid()
        if state.district is None:
            state.district = self.registry.district_of(lat, lon) or ""
        ctx = state.context or "unregistered"
        ev = self._evidence(state, dwell_s, state.un)
        ev["verdict"] = verdict.value
        if ts > state.det.last_ms:
            ev["last_fix_ms"] = state.det.last_ms  # the rest is a sleeping terminal's silence
        title = f"危化品车辆{_CONTEXT_ZH.get(ctx, '')}异常停留{round(dwell_s / 60)}分钟"
        return self._make(state, ts, True, level, dwell_s, title, ev, lat, lon)

    def _clear(self, state: VehicleState, stop: Stop, ts: int, un: str | None) -> Signal:
        end_ms = stop.end_ms if stop.end_ms is not None else ts
        dwell_s = (end_ms - state.start_ms) / 1000.0
        ev = self._evidence(state, dwell_s, un)
        ev["n_fixes"] = stop.n_fixes
        ev["end_ms"] = end_ms
        ev["closed_by"] = stop.closed_by
        title = f"危化品车辆已驶离（停留{round(dwell_s / 60)}分钟）"
        level = Level(state.level)
        return self._make(
            state, max(ts, end_ms), False, level, dwell_s, title, ev, stop.lat, stop.lon
        )

    def _make(
        self,
        state: VehicleState,
        ts: int,
        active: bool,
        level: Level,
        dwell_s: float,
        title: str,
        evidence: dict[str, Any],
        lat: float,
        lon: float,
    ) -> Signal:
        return Signal(
            rule=DWELL_RULE,
            subject=Subject("vehicle", state.vehicle),
            ts=ts,
            active=active,
            level=level,
            score=self.policy.score(state.context or "unregistered", dwell_s),
            title=title,
            evidence=evidence,
            model=self.model_id,
            lat=lat,
            lon=lon,
            district=state.district or None,
            grid=grid_id(lat, lon),
        )


class WorkshopModel(Model):
    """``vehicle.workshop``: rank spots where many vehicles dwell abnormally (city-wide state).

    Input is the ``vehicle.dwell`` signals of :class:`DwellModel` (``signal_rules``), not
    events: the flow feeds each dwell signal to :meth:`route` and, when it returns a key, to
    :meth:`update` with that key's state. Only dwells whose context is in ``contexts`` count:
    by default ``unregistered`` (no registered place, gate or sensitive zone there). Dwells in
    sensitive zones are alerted as such already; several trucks dwelling at one school is a
    hotspot, not a workshop (add ``"residential"`` to look for workshops in villages, at the
    price of such hotspots among the candidates).
    """

    name: ClassVar[str] = WORKSHOP_RULE
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset()
    #: The signal rules this model consumes (the flow's second stage).
    signal_rules: ClassVar[frozenset[str]] = frozenset({DWELL_RULE})
    shards = 1  # one ranking for the city

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        join_m: float = 150.0,
        top_k: int = 20,
        min_vehicles: int = 2,
        max_candidates: int = 20_000,
        max_open_s: float = 86_400.0,
        refresh_s: float = 6 * 3600.0,
        contexts: Iterable[str] = ("unregistered",),
    ) -> None:
        WorkshopRanker(
            join_m=join_m, top_k=top_k, min_vehicles=min_vehicles, max_candidates=max_candidates
        )  # validates the parameters
        self.registry = registry or Registry()
        self.join_m = join_m
        self.top_k = top_k
        self.min_vehicles = min_vehicles
        self.max_candidates = max_candidates
        self.max_open_ms = round(max_open_s * 1000)
        if not (refresh_s > 0 and math.isfinite(refresh_s)):
            msg = f"refresh_s: must be a positive finite number, got {refresh_s!r}"
            raise ValueError(msg)
        self.refresh_ms = round(refresh_s * 1000)
        self.contexts = frozenset(contexts)
        unknown = self.contexts - set(CONTEXTS)
        if unknown:
            msg = f"contexts: unknown {sorted(unknown)}, expected some of {', '.join(CONTEXTS)}"
            raise ValueError(msg)

    def route(self, event: Event | Signal) -> str | None:
        if type(event) is not Signal or event.rule != DWELL_RULE:
            return None
        if event.evidence.get("context") not in self.contexts:
            return None
        if event.lat is None or event.lon is None:
            return None
        return _WORKSHOP_KEY

    def new_state(self, key: str) -> WorkshopRanker:
        return WorkshopRanker(
            join_m=self.join_m,
            top_k=self.top_k,
            min_vehicles=self.min_vehicles,
            max_candidates=self.max_candidates,
        )

    def update(self, state: WorkshopRanker, event: Event | Signal) -> list[Signal]:
        if self.route(event) is None or type(event) is not Signal:
            return []
        if event.lat is None or event.lon is None:
            return []
        ev = event.evidence
        start_ms, dwell_s = ev.get("start_ms"), ev.get("dwell_s")
        if not isinstance(start_ms, int) or not isinstance(dwell_s, int | float):
            return []
        changes = state.visit(
            event.subject.id,
            start_ms,
            event.ts,
            event.lat,
            event.lon,
            float(dwell_s),
            ended=not event.active,
        )
        return [self._signal(c, event.ts) for c in changes]

    def on_watermark(self, state: WorkshopRanker, watermark_ms: int) -> list[Signal]:
        state.expire(watermark_ms, self.max_open_ms)
        if watermark_ms - state.refreshed_ms < self.refresh_ms:
            return []
        # Re-report the standing top: a candidate stays a candidate between visits that may be
        # days apart, longer than the engine's quiet period for this rule.
        state.refreshed_ms = watermark_ms
        return [
            self._signal(RankChange("updated", c, rank), watermark_ms)
            for rank, c in enumerate(state.top(), 1)
        ]

    def next_due(self, state: WorkshopRanker) -> int | None:
        """The next re-report of the top, or an open visit to forget (see :meth:`on_watermark`)."""
        refresh = state.refreshed_ms + self.refresh_ms
        expiry = state.expires_at(self.max_open_ms)
        return refresh if expiry is None else min(refresh, expiry)

    def _signal(self, change: RankChange, ts: int) -> Signal:
        c = change.candidate
        n = c.n_vehicles
        level = Level.RED if n >= 8 else Level.ORANGE if n >= 4 else Level.YELLOW
        return Signal(
            rule=WORKSHOP_RULE,
            subject=Subject("spot", c.id),
            ts=ts,
            active=change.kind != "left",
            level=level,
            score=n / (n + 2),
            title=f"疑似非法危化品作坊（{n}辆车{c.visits}次停留）",
            evidence={
                "rank": change.rank,
                "change": change.kind,
                "vehicles": n,
                "visits": c.visits,
                "dwell_s": round(c.dwell_s, 1),
                "first_ms": c.first_ms,
                "last_ms": c.last_ms,
                "vehicle_ids": sorted(c.vehicles)[:10],
            },
            model=self.model_id,
            lat=c.lat,
            lon=c.lon,
            district=self.registry.district_of(c.lat, c.lon),
            grid=grid_id(c.lat, c.lon),
        )
