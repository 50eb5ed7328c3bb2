"""Hazmat vehicles: GPS fixes every 10 s along road-like routes between depots, enterprises
and fuel stations, from terminals that behave like real ones.

Each vehicle's itinerary is planned once from its own seed (``(seed, vehicle id)``) and the
stops injected into it: it sleeps at its depot, on active days leaves between 06:00 and 09:00,
loads and unloads at registered enterprises (25-70 min), sometimes queues 8-25 min at an
enterprise's gate just outside its registered radius first, sometimes refuels (8-20 min), waits
at traffic lights in towns (15-80 s), crawls in rush hours and now and then through a jam
(4-9 km/h), and returns to the depot. Fixes carry ~6 m of jitter (0.2 % are multipath outliers
80-250 m off), a little speed noise, and gaps (tunnels, dead zones) while driving.

Injected stops (abnormal dwells near sensitive zones, at unregistered workshops, upwind of a
station) are reached exactly at their planned arrival time: the vehicle waits at its depot
until it has to leave. The dwell's truth is ``[arrival, departure]``.

Terminals (``Scenario.terminals``: ``"real"`` by default, ``"ideal"`` for the old clean
stream; see :data:`TERMINALS`), per vehicle from the seed:

- *sleep mode*: with the ignition off (parked at the depot, loading, refuelling, at an
  injected stop; not in a gate queue or at a light) a share of terminals report once every
  5-60 minutes (JT/T 808 "sleep reporting"), from 1-3 minutes after the truck halts until
  1-2 minutes before it leaves (the driver starts the engine); the registry declares the
  interval (``Vehicle.sleep_interval_s``) for some of them, the others must be learned;
- *irregular sampling*: some terminals jitter by up to 3 s and lose 5-15 % of their fixes,
  a fifth of those sample every 5 s;
- *missing speed*: some terminals send no ``speed_kmh`` at all;
- *GPS jumps*: now and then one fix lands 0.5-20 km away;
- *late and out-of-order records*: half of the dead zones are re-sent when the signal is back
  (blind-zone re-upload): those fixes arrive after newer ones, minutes late;
- *legitimate stops at unregistered spots*: deliveries to customers that are not registered
  enterprises, 4-12 minutes (below every dwell threshold): hard negatives.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass, field

import msgspec
import numpy as np

from citywatch.events import Region
from citywatch.geo import bearing_deg, haversine_m, offset
from citywatch.registry import Place, Registry
from simulators.city import City, SpatialIndex
from simulators.clock import DAY_MS, MINUTE_MS, local_hour, local_midnight, weekday
from simulators.seeds import entity_hash, np_rng, py_rng
from simulators.stream import Chunk

__all__ = ["TERMINALS", "InjectedStop", "Itinerary", "Terminals", "VehicleStream", "declare"]

GPS_PERIOD_MS = 10_000
_PER_MIN = MINUTE_MS // GPS_PERIOD_MS
_SLOT = 1 << 42  # key = vehicle index * _SLOT + ms since base: sorted by vehicle, then time
_REGION = Region()
#: Sleep-mode reporting intervals terminals are set to (seconds).
SLEEP_INTERVALS_S = (300, 600, 900, 1800, 3600)


@dataclass(frozen=True, slots=True)
class Terminals:
    """How the fleet's GPS terminals behave (shares of vehicles, per-fix rates)."""

    #: Share of terminals that sleep with the ignition off, and of those the registry declares.
    sleep: float = 0.0
    declared: float = 0.0
    #: Share of terminals with irregular timing and losses (a fifth of them every 5 s).
    irregular: float = 0.0
    #: Share of terminals that send no speed.
    no_speed: float = 0.0
    #: Per fix: a GPS jump 0.5-20 km away.
    jumps: float = 0.0
    #: Share of dead zones whose fixes are re-sent late, after the signal is back.
    reupload: float = 0.0
    #: Per active vehicle-day: a delivery to an unregistered customer (4-12 min).
    deliveries: float = 0.0


TERMINALS: dict[str, Terminals] = {
    "ideal": Terminals(),
    "real": Terminals(
        sleep=0.4,
        declared=0.5,
        irregular=0.2,
        no_speed=0.25,
        jumps=0.0005,
        reupload=0.5,
        deliveries=0.3,
    ),
}


@dataclass(frozen=True, slots=True)
class Traits:
    """Per vehicle (index order): its terminal's behaviour."""

    sleep_ms: list[int]
    declared: list[bool]
    period_ms: list[int]
    irregular: list[bool]
    no_speed: list[bool]


def traits(ids: list[str], seed: int, t: Terminals) -> Traits:
    """Each vehicle's terminal, drawn from the run's seed (independent of everything else)."""
    out = Traits([], [], [], [], [])
    for vid in ids:
        r = py_rng(seed, "terminal", vid)
        sleeps = r.random() < t.sleep
        out.sleep_ms.append(r.choice(SLEEP_INTERVALS_S) * 1000 if sleeps else 0)
        out.declared.append(sleeps and r.random() < t.declared)
        irregular = r.random() < t.irregular
        out.irregular.append(irregular)
        out.period_ms.append(5_000 if irregular and r.random() < 0.2 else GPS_PERIOD_MS)
        out.no_speed.append(r.random() < t.no_speed)
    return out


def declare(registry: Registry, ids: list[str], tr: Traits) -> None:
    """Write the declared sleep intervals into the registry's vehicles."""
    for vid, ms, declared in zip(ids, tr.sleep_ms, tr.declared, strict=True):
        v = registry.vehicles.get(vid)
        if v is not None and declared:
            registry.vehicles[vid] = msgspec.structs.replace(v, sleep_interval_s=ms / 1000)


@dataclass(frozen=True, slots=True)
class InjectedStop:
    """Vehicle ``vehicle`` arrives at (lat, lon) at ``arrive_ms`` and stays ``dwell_s``."""

    vehicle: str
    arrive_ms: int
    dwell_s: int
    lat: float
    lon: float


@dataclass(slots=True)
class Seg:
    t0: int
    t1: int
    lat0: float
    lon0: float
    lat1: float
    lon1: float
    speed: float  # km/h while moving, 0 for a stop
    heading: float
    #: Ignition off (a parked truck, not a queue or a light): a sleeping terminal sleeps.
    parked: bool = False


@dataclass(slots=True)
class Itinerary:
    segs: list[Seg] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)

    def finish(self) -> None:
        self.starts = [s.t0 for s in self.segs]

    def at(self, ts: int) -> Seg | None:
        i = bisect.bisect_right(self.starts, ts) - 1
        if i < 0:
            return None
        s = self.segs[i]
        return s if ts <= s.t1 else None

    def in_gap(self, ts: int) -> bool:
        return any(a <= ts < b for a, b in self.gaps)


class _Builder:
    def __init__(self, city: City, rng: random.Random, pos: tuple[float, float], now: int) -> None:
        self.city, self.rng = city, rng
        self.pos, self.now = pos, now
        self.heading = rng.uniform(0, 360)
        self.it = Itinerary()

    def stay(self, until: int, *, parked: bool = True) -> None:
        if until > self.now:
            lat, lon = self.pos
            self.it.segs.append(Seg(self.now, until, lat, lon, lat, lon, 0.0, self.heading, parked))
            self.now = until

    def legs(
        self, to: tuple[float, float], t_start: int
    ) -> tuple[list[Seg], list[tuple[int, int]]]:
        """The drive from the current position to ``to`` starting at ``t_start``."""
        rng, geo, roads = self.rng, self.city.geo, self.city.roads
        pts = roads.route(self.pos, to, rng)
        segs: list[Seg] = []
        gaps: list[tuple[int, int]] = []
        t = t_start
        heading = self.heading
        for i in range(len(pts) - 1):
            p, q = pts[i], pts[i + 1]
            dist = haversine_m(*p, *q)
            if dist < 1.0:
                continue
            heading = bearing_deg(*p, *q)
            access = i == 0 or i == len(pts) - 2
            mid = ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)
            urb = geo.urbanness(*mid)
            if access:
                speed = rng.uniform(12.0, 22.0)
            elif urb > 0.4:
                speed = rng.uniform(32.0, 45.0)
                h = local_hour(t)
                if weekday(t) < 5 and (7.0 <= h < 9.0 or 17.0 <= h < 19.0):
                    speed *= rng.uniform(0.35, 0.65)
                if dist < 1500.0 and rng.random() < 0.04:
                    speed = rng.uniform(4.0, 9.0)  # a jam: crawling, not a stop
            else:
                speed = rng.uniform(52.0, 68.0)
            cuts = [0.0]
            lights: list[int] = []
            if not access:
                for f in roads.crossings(p, q):
                    if 0.02 < f < 0.98 and rng.random() < 0.35 * urb:
                        cuts.append(f)
                        lights.append(round(rng.uniform(15.0, 80.0) * 1000))
            cuts.append(1.0)
            for k in range(len(cuts) - 1):
                a = (p[0] + (q[0] - p[0]) * cuts[k], p[1] + (q[1] - p[1]) * cuts[k])
                b = (p[0] + (q[0] - p[0]) * cuts[k + 1], p[1] + (q[1] - p[1]) * cuts[k + 1])
                dt = round(haversine_m(*a, *b) / (speed / 3.6) * 1000)
                if dt > 0:
                    segs.append(Seg(t, t + dt, a[0], a[1], b[0], b[1], speed, heading))
                    if not access and dt > 120_000 and rng.random() < 0.03:
                        g0 = t + rng.randrange(0, dt - 60_000)
                        gaps.append((g0, g0 + rng.randrange(40_000, 240_000)))
                    t += dt
                if k < len(lights):
                    segs.append(Seg(t, t + lights[k], b[0], b[1], b[0], b[1], 0.0, heading))
                    t += lights[k]
        return segs, gaps

    def drive(self, to: tuple[float, float]) -> None:
        segs, gaps = self.legs(to, self.now)
        self.it.segs.extend(segs)
        self.it.gaps.extend(gaps)
        if segs:
            self.now = segs[-1].t1
            self.heading = segs[-1].heading
        self.pos = to

    def drive_arriving(self, to: tuple[float, float], arrive: int) -> None:
        """Wait where we are, then drive so as to arrive exactly at ``arrive``."""
        state = self.rng.getstate()
        segs, _ = self.legs(to, 0)
        travel = segs[-1].t1 if segs else 0
        self.rng.setstate(state)
        self.stay(max(self.now, arrive - travel))
        segs, gaps = self.legs(to, self.now)
        shift = arrive - (segs[-1].t1 if segs else self.now)
        for s in segs:
            s.t0 += shift
            s.t1 += shift
        self.it.gaps.extend((a + shift, b + shift) for a, b in gaps)
        if segs and segs[0].t0 > self.now:
            self.stay(segs[0].t0)
        self.it.segs.extend(segs)
        if segs:
            self.heading = segs[-1].heading
        self.now = max(self.now, arrive)
        self.pos = to


def travel_ms(city: City, seed: int, a: tuple[float, float], b: tuple[float, float]) -> int:
    """Rough driving time from a to b (for planning)."""
    bld = _Builder(city, py_rng(seed, "travel"), a, 0)
    segs, _ = bld.legs(b, 0)
    return segs[-1].t1 if segs else 0


def plan_vehicle(
    city: City,
    seed: int,
    vid: str,
    begin_ms: int,
    end_ms: int,
    stops: list[InjectedStop],
    deliveries: float = 0.0,
    avoid: SpatialIndex | None = None,
) -> Itinerary:
    """The itinerary of one vehicle over [begin_ms, end_ms] with its injected stops;
    ``deliveries``: the chance per active day of a delivery to an unregistered customer."""
    rng = py_rng(seed, "vehicle", vid)
    extra = py_rng(seed, "vehicle-deliveries", vid)  # draws of its own: the rest is unchanged
    reg = city.registry
    depot = reg.places[reg.vehicles[vid].depot or ""]
    home = (depot.lat, depot.lon)
    t0 = local_midnight(begin_ms)
    if stops:
        first = min(s.arrive_ms for s in stops)
        t0 = min(t0, first - 3 * 3_600_000)
    b = _Builder(city, rng, home, t0)
    enterprises = city.places_by_cat["enterprise"]
    fuels = city.places_by_cat["fuel"]
    pending = sorted(stops, key=lambda s: s.arrive_ms)
    day = local_midnight(t0)
    while b.now < end_ms:
        day_end = day + DAY_MS
        todays = [s for s in pending if s.arrive_ms < day_end]
        pending = [s for s in pending if s.arrive_ms >= day_end]
        if todays:
            for s in todays:
                b.drive_arriving((s.lat, s.lon), s.arrive_ms)
                b.stay(s.arrive_ms + s.dwell_s * 1000)
                ent = rng.choice(enterprises)
                b.drive(_inside(ent, rng))
                b.stay(b.now + rng.randrange(25, 60) * MINUTE_MS)
                b.drive(home)
        else:
            wd = weekday(day)
            p_active = 0.85 if wd < 5 else (0.5 if wd == 5 else 0.3)
            if rng.random() < p_active:
                b.stay(day + round(rng.uniform(6.0, 9.0) * 3_600_000))
                for _ in range(rng.randint(1, 3)):
                    if local_hour(b.now) > 17.5 or b.now - day > DAY_MS - 5 * 3_600_000:
                        break
                    for dwell in ((25, 70), (20, 60)):
                        ent = rng.choice(enterprises)
                        if rng.random() < 0.25:  # queue at the gate, just outside the fence
                            b.drive(_at_gate(ent, rng))
                            b.stay(b.now + rng.randrange(8, 25) * MINUTE_MS, parked=False)
                        b.drive(_inside(ent, rng))
                        b.stay(b.now + rng.randrange(*dwell) * MINUTE_MS)
                    if rng.random() < 0.3:
                        b.drive(_inside(rng.choice(fuels), rng))
                        b.stay(b.now + rng.randrange(8, 20) * MINUTE_MS)
                if avoid is not None and extra.random() < deliveries:
                    _deliver(b, extra, avoid)
                b.drive(home)
        b.stay(max(b.now, day_end))
        day = day_end
    b.stay(end_ms + MINUTE_MS)
    b.it.finish()
    return b.it


def _deliver(b: _Builder, rng: random.Random, avoid: SpatialIndex) -> None:
    """A delivery to a customer that is not a registered enterprise: 4-12 minutes at a spot
    away from every registered place and zone (a hard negative: below every threshold)."""
    main, b.rng = b.rng, rng  # its route draws from its own stream
    try:
        for _ in range(20):
            lat, lon = offset(
                b.pos[0], b.pos[1], rng.uniform(-4000, 4000), rng.uniform(-4000, 4000)
            )
            if b.city.geo.urbanness(lat, lon) > 0.2 and not avoid.near(lat, lon, 300.0):
                b.drive((lat, lon))
                b.stay(b.now + rng.randrange(4, 13) * MINUTE_MS)
                return
    finally:
        b.rng = main


def customer_free(city: City) -> SpatialIndex:
    """Where a customer's spot must not be: near a registered place (its gate included) or a
    sensitive zone (there a stop is a finding, not a hard negative)."""
    idx = SpatialIndex()
    for p in city.registry.places.values():
        idx.add(p.lat, p.lon, 3 * p.radius_m)
    for z in city.registry.zones.values():
        idx.add(z.lat, z.lon, z.radius_m)
    return idx


def _inside(place: Place, rng: random.Random) -> tuple[float, float]:
    """A parking spot inside a registered place's radius."""
    r = place.radius_m * 0.5 * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    return offset(place.lat, place.lon, r * math.cos(a), r * math.sin(a))


def _at_gate(place: Place, rng: random.Random) -> tuple[float, float]:
    """Where trucks queue: on the road 20-100 m outside a place's registered radius."""
    r = place.radius_m + rng.uniform(20.0, 100.0)
    a = rng.uniform(0, 2 * math.pi)
    return offset(place.lat, place.lon, r * math.cos(a), r * math.sin(a))


class VehicleStream:
    kind = "gps"

    def __init__(
        self,
        city: City,
        seed: int,
        start_ms: int,
        end_ms: int,
        stops: list[InjectedStop],
        terminals: Terminals | None = None,
    ) -> None:
        self.city, self.seed = city, seed
        self.start_ms, self.end_ms = start_ms, end_ms
        self.terminals = terminals or TERMINALS["ideal"]
        self.ids = city.vehicle_ids
        self.traits = traits(self.ids, seed, self.terminals)
        self.hashes = [entity_hash(v) for v in self.ids]
        self.phase = [h % p for h, p in zip(self.hashes, self.traits.period_ms, strict=True)]
        by_vehicle: dict[str, list[InjectedStop]] = {}
        for s in stops:
            by_vehicle.setdefault(s.vehicle, []).append(s)
        deliveries = self.terminals.deliveries
        avoid = customer_free(city) if deliveries > 0 else None
        self.itineraries = [
            plan_vehicle(city, seed, v, start_ms, end_ms, by_vehicle.get(v, []), deliveries, avoid)
            for v in self.ids
        ]
        reg = city.registry
        self.plates = [reg.vehicles[v].plate for v in self.ids]
        self.uns = [reg.vehicles[v].un for v in self.ids]
        speed = (b'"speed_kmh":%r,', b"%.0r")  # a terminal without speed: no field at all
        self._tmpl = [
            b'{"kind":"gps","vehicle":"%s","lat":%%r,"lon":%%r,%s"heading":%%r,'
            b'"un":%s,"plate":"%s","ts":%%d}'
            % (v.encode(), speed[ns], f'"{u}"'.encode() if u else b"null", p.encode())
            for v, u, p, ns in zip(
                self.ids, self.uns, self.plates, self.traits.no_speed, strict=True
            )
        ]
        self._flatten()

    def _flatten(self) -> None:
        """All itineraries as flat arrays, keyed so one searchsorted finds every segment."""
        key0: list[int] = []
        cols: list[list[float]] = [[], [], [], [], [], [], [], [], []]
        gap_key: list[int] = []
        gap_end: list[int] = []
        late: list[tuple[int, int, int]] = []  # re-sent dead zones: (end, vehicle, start)
        base = self.start_ms - 7 * DAY_MS
        for v, it in enumerate(self.itineraries):
            for sg in it.segs:
                key0.append(v * _SLOT + (sg.t0 - base))
                for c, x in zip(
                    cols,
                    (
                        sg.t0,
                        sg.t1,
                        sg.lat0,
                        sg.lon0,
                        sg.lat1,
                        sg.lon1,
                        sg.speed,
                        sg.heading,
                        sg.parked,
                    ),
                    strict=True,
                ):
                    c.append(x)
            for a, b in sorted(it.gaps):
                gap_key.append(v * _SLOT + (a - base))
                gap_end.append(v * _SLOT + (b - base))
                if self.terminals.reupload and py_rng(self.seed, "reupload", v, a).random() < (
                    self.terminals.reupload
                ):
                    late.append((b, v, a))
        self._base = base
        self._key = np.array(key0, dtype=np.int64)
        self._t0, self._t1 = np.array(cols[0], np.int64), np.array(cols[1], np.int64)
        self._lat0, self._lon0 = np.array(cols[2]), np.array(cols[3])
        self._lat1, self._lon1 = np.array(cols[4]), np.array(cols[5])
        self._speed, self._heading = np.array(cols[6]), np.array(cols[7])
        self._parked = np.array(cols[8], dtype=bool)
        self._gap_key = np.array([*gap_key, np.iinfo(np.int64).max], dtype=np.int64)
        self._gap_end = np.array([*gap_end, 0], dtype=np.int64)
        order = np.argsort(self._gap_key[:-1], kind="stable")
        self._gap_key[:-1] = self._gap_key[:-1][order]
        self._gap_end[:-1] = self._gap_end[:-1][order]
        late.sort()
        self._late = late
        self._late_end = np.array([x[0] for x in late], dtype=np.int64)
        tr = self.traits
        per_min = [MINUTE_MS // p for p in tr.period_ms]
        n = len(self.ids)
        self._vidx = np.repeat(np.arange(n, dtype=np.int64), per_min)
        period = np.repeat(np.array(tr.period_ms, dtype=np.int64), per_min)
        starts = np.cumsum([0, *per_min[:-1]])
        k = np.arange(len(self._vidx), dtype=np.int64) - np.repeat(starts, per_min)
        self._kk = k * period
        self._phase = np.repeat(np.array(self.phase, dtype=np.int64), per_min)
        perm = np.argsort(self._phase + self._kk, kind="stable")  # fixes come out sorted
        self._vidx, self._kk, self._phase = self._vidx[perm], self._kk[perm], self._phase[perm]
        self._period = period[perm]
        self._sleep = np.array(tr.sleep_ms, dtype=np.int64)
        self._irregular = np.array(tr.irregular, dtype=bool)
        # 5-15 % of an irregular terminal's fixes are lost
        self._loss = np.array(
            [
                0.05 + 0.1 * (h % 1000) / 1000 if irr else 0.0
                for h, irr in zip(self.hashes, tr.irregular, strict=True)
            ]
        )
        self._cos = np.cos(np.radians(32.1))

    def _late_fixes(self, w0: int) -> tuple[list[int], list[int]]:
        """(vehicle, ts) of the fixes of re-sent dead zones whose signal came back in the
        minute before this one: the terminal sent its current fixes first, the backlog now
        (behind newer fixes of the same vehicle, minutes late)."""
        lo = int(np.searchsorted(self._late_end, w0 - MINUTE_MS, side="left"))
        hi = int(np.searchsorted(self._late_end, w0, side="left"))
        vs: list[int] = []
        ts: list[int] = []
        for end, v, start in self._late[lo:hi]:
            period, phase = self.traits.period_ms[v], self.phase[v]
            t = start - (start - phase) % period + period
            while t < end:
                vs.append(v)
                ts.append(t)
                t += period
        return vs, ts

    def chunk(self, w0: int) -> Chunk:
        """All vehicles' fixes of one minute, vectorised over vehicles x fixes."""
        rng = np_rng(self.seed, "gps", w0)
        n = len(self._vidx)
        ts = w0 + self._phase + self._kk
        vidx = self._vidx
        term = self.terminals
        more = term != TERMINALS["ideal"]
        if more:
            r2 = np_rng(self.seed, "gps-terminal", w0)
            irr = self._irregular[vidx]
            ts = ts + np.where(irr, r2.integers(-3000, 3001, n), 0)
            late_v, late_ts = self._late_fixes(w0)
            if late_v:
                vidx = np.concatenate([vidx, np.array(late_v, dtype=np.int64)])
                ts = np.concatenate([ts, np.array(late_ts, dtype=np.int64)])
        m = len(vidx)
        q = vidx * _SLOT + (ts - self._base)
        seg = np.searchsorted(self._key, q, side="right") - 1
        seg = np.clip(seg, 0, len(self._key) - 1)
        g = np.searchsorted(self._gap_key, q, side="right") - 1
        in_gap = (g >= 0) & (q < self._gap_end[np.maximum(g, 0)])
        if m > n:
            in_gap[n:] = False  # the re-sent fixes of a dead zone
        t0, t1 = self._t0[seg], self._t1[seg]
        keep = (
            (ts >= self.start_ms)
            & (ts < self.end_ms)
            & ~in_gap
            & (np.concatenate([rng.random(n), np.ones(m - n)]) >= 0.004)
            & (ts >= t0)
            & (ts <= t1)
        )
        if more:
            keep &= r2.random(m) >= self._loss[vidx]
            # Ignition off: a sleeping terminal reports once per interval, from 1-3 minutes
            # after the truck halts until 1-2 minutes before it leaves.
            sleep = self._sleep[vidx]
            off = t0 + 60_000 + (seg * 7919 % 121) * 1000
            on = t1 - 60_000 - (seg * 104_729 % 61) * 1000
            asleep = (sleep > 0) & self._parked[seg] & (ts > off) & (ts < on)
            step = np.maximum(sleep, 1)
            period = self._period
            if m > n:
                period = np.concatenate([period, np.full(m - n, GPS_PERIOD_MS)])
            reports = (ts - off) // step != (ts - period - off) // step
            keep &= ~asleep | reports
        moving = self._speed[seg] > 0.0
        f = np.where(moving, (ts - t0) / np.maximum(1, t1 - t0), 0.0)
        lat = self._lat0[seg] + (self._lat1[seg] - self._lat0[seg]) * f
        lon = self._lon0[seg] + (self._lon1[seg] - self._lon0[seg]) * f
        # ~6 m of noise, and now and then a multipath outlier 80-250 m off (a stop with one
        # wild fix is still one stop)
        jitter = rng.normal(0.0, 6.0, (2, n))
        wild = rng.random(n) < 0.002
        jitter[:, wild] *= rng.uniform(13.0, 40.0, int(wild.sum()))
        if m > n:
            jitter = np.concatenate([jitter, r2.normal(0.0, 6.0, (2, m - n))], axis=1)
        if more and term.jumps:
            jump = r2.random(m) < term.jumps
            k = int(jump.sum())
            dist, ang = r2.uniform(500.0, 20_000.0, k), r2.uniform(0, 2 * np.pi, k)
            jitter[0, jump] += dist * np.cos(ang)
            jitter[1, jump] += dist * np.sin(ang)
        lat = lat + jitter[0] / 111_320.0
        lon = lon + jitter[1] / (111_320.0 * np.cos(np.radians(lat)))
        if more and term.jumps:  # a jump stays in the region: it is a wrong fix, not a foreign one
            box = _REGION
            lat = np.where(jump, np.clip(lat, box.lat_min + 0.01, box.lat_max - 0.01), lat)
            lon = np.where(jump, np.clip(lon, box.lon_min + 0.01, box.lon_max - 0.01), lon)
        creep = np.abs(rng.normal(0.0, 0.8, n)) * (rng.random(n) < 0.3)
        sp = self._speed[seg][:n]
        speed = np.where(moving[:n], np.maximum(0.0, sp * (1.0 + rng.normal(0.0, 0.06, n))), creep)
        heading = np.where(
            moving[:n], self._heading[seg][:n] + rng.normal(0.0, 3.0, n), self._heading[seg][:n]
        )
        if m > n:
            speed = np.concatenate([speed, self._speed[seg][n:]])
            heading = np.concatenate([heading, self._heading[seg][n:]])
        heading = np.round(heading) % 360.0
        idx = np.flatnonzero(keep)
        vid = vidx[idx].tolist()
        tmpl = self._tmpl
        lines = [
            tmpl[v] % row
            for v, row in zip(
                vid,
                zip(
                    np.round(lat[idx], 6).tolist(),
                    np.round(lon[idx], 6).tolist(),
                    np.round(speed[idx], 1).tolist(),
                    heading[idx].tolist(),
                    ts[idx].tolist(),
                    strict=True,
                ),
                strict=True,
            )
        ]
        keys = [self.hashes[v] for v in vid]
        return Chunk(ts[idx].tolist(), keys, lines)
