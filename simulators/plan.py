"""The anomaly planner: turns a scenario's counts into concrete injections and their labels.

Everything here is drawn from ``(seed, "plan", ...)`` streams, before any record exists, so
the labels are known up front and the generators only execute the plan.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field
from typing import Any

from citywatch.geo import haversine_m, offset
from simulators.addresses import Spot
from simulators.air import (
    LOWCOST_CHANNELS,
    STUCK_CHANNELS,
    Episode,
    Fault,
    Plume,
    regional_wind,
    station_kinds,
)
from simulators.air_realism import AIR_STATIONS
from simulators.city import City, SpatialIndex
from simulators.clock import HOUR_MS, MINUTE_MS, local_hour
from simulators.complaints import Incident
from simulators.hotline import Ticket, TicketWriter
from simulators.labels import Label
from simulators.scenario import Scenario
from simulators.seeds import py_rng
from simulators.sites import Lift, Resumption, Suspension
from simulators.vehicles import InjectedStop

__all__ = ["Plan", "make_plan"]

#: Shortest anomaly (minutes) at a station publishing hourly averages: a 20-minute fault is a
#: third of one hourly value, and a 2-hour flat line is two equal integers, which natural
#: hourly readings repeat all the time (real national stations: ~60 runs of 3+ a year).
HOURLY_FLOOR_MIN = {"spike": 90, "stuck": 360, "drift": 720, "range": 120, "inversion": 360}

_ZONE_LEVEL = {"school": "orange", "hospital": "orange", "water": "orange", "residential": "yellow"}


@dataclass(slots=True)
class Plan:
    plumes: list[Plume] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    stops: list[InjectedStop] = field(default_factory=list)
    #: label index -> the stop whose real [arrival, departure] fixes the label's times
    stop_labels: dict[int, InjectedStop] = field(default_factory=dict)
    resumptions: list[Resumption] = field(default_factory=list)
    lifts: list[Lift] = field(default_factory=list)
    suspensions: list[Suspension] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    #: Hard negatives (not anomalies): what they are and which records, for model authors.
    negatives: list[dict[str, Any]] = field(default_factory=list)


class _Planner:
    def __init__(self, city: City, sc: Scenario, seed: int) -> None:
        self.city, self.sc, self.seed = city, sc, seed
        self.rng = py_rng(seed, "plan")
        self.S, self.E = sc.start_ms, sc.end_ms
        self.plan = Plan()
        self.writer = TicketWriter(city, seed, ticket_salt(sc))
        self.free_stations = list(range(len(city.station_ids)))
        self.rng.shuffle(self.free_stations)
        realism = AIR_STATIONS.get(sc.air_stations, AIR_STATIONS["ideal"])
        self.hourly = [bool(x) and realism.hourly_national for x in city.station_national]
        kinds, _ = station_kinds(city, seed, realism)
        self.lowcost = [k == "lowcost" for k in kinds]
        self.free_vehicles = list(city.vehicle_ids)
        self.rng.shuffle(self.free_vehicles)
        self.used_vehicle_times: dict[str, list[int]] = {}
        self.n_tickets = 0

    # -- helpers -----------------------------------------------------------------------------

    def dur(self, lo_min: float, hi_min: float, floor_min: float = 3.0) -> int:
        m = self.rng.uniform(lo_min, hi_min) * self.sc.time_scale
        return round(max(m, floor_min) * MINUTE_MS)

    def when(self, dur_ms: int, hours: tuple[float, float] | None = None) -> int:
        """A start time for an anomaly lasting ``dur_ms``, inside the run."""
        # short runs keep their anomalies: the warm-up is at most a quarter of the run
        lo = self.S + min(self.sc.lead_s, self.sc.duration_s // 4) * 1000
        if self.sc.start_window_s > 0:
            return lo + self.rng.randrange(0, self.sc.start_window_s * 1000)
        hi = max(lo, self.E - dur_ms - 10 * MINUTE_MS)
        for _ in range(50):
            t = self.rng.randrange(lo, hi + 1)
            if hours is None:
                return t
            h = local_hour(t)
            a, b = hours
            if (a <= h < b) if a < b else (h >= a or h < b):
                return t
        return self.rng.randrange(lo, hi + 1)

    def station(self, *, avoid_districts: tuple[int, ...] = (), hourly_first: bool = False) -> int:
        """A station no other anomaly uses (outside ``avoid_districts`` when possible; an
        hourly one first if ``hourly_first`` and one is free)."""
        if not self.free_stations:
            msg = "plan: more air anomalies than stations; raise the scale or lower the counts"
            raise ValueError(msg)
        if hourly_first:
            for i, s in enumerate(self.free_stations):
                if self.hourly[s]:
                    return self.free_stations.pop(i)
        for i, s in enumerate(self.free_stations):
            if self.city.station_district[s] not in avoid_districts:
                return self.free_stations.pop(i)
        return self.free_stations.pop()

    def vehicle(self, t: int) -> str:
        if self.free_vehicles:
            v = self.free_vehicles.pop()
            self.used_vehicle_times[v] = [t]
            return v
        for v, times in sorted(self.used_vehicle_times.items()):
            if all(abs(t - x) > 16 * HOUR_MS for x in times):
                times.append(t)
                return v
        msg = "plan: not enough vehicles for the injected stops; raise the scale"
        raise ValueError(msg)

    def station_params(self, s: int) -> dict[str, Any]:
        st = self.city.registry.stations[self.city.station_ids[s]]
        return {"lat": st.lat, "lon": st.lon, "district": st.district}

    def label(self, rule: str, kind: str, sid: str, t0: int, t1: int, **params: Any) -> int:
        also = tuple(params.pop("also", ()))
        self.plan.labels.append(
            Label(
                rule=rule,
                subject_kind=kind,
                subject_id=sid,
                start_ms=t0,
                end_ms=min(t1, self.E),
                also=also,
                params=params,
            )
        )
        return len(self.plan.labels) - 1

    def key(self, prefix: str) -> str:
        self.n_tickets += 1
        return f"{prefix}{self.n_tickets}"

    # -- air ---------------------------------------------------------------------------------

    def air(self) -> None:
        sc, rng, ids = self.sc, self.rng, self.city.station_ids
        for _ in range(sc.air_episodes):
            specs = self.city.geo.specs
            main = rng.randrange(len(specs))
            c = specs[main].center
            near = sorted(range(len(specs)), key=lambda i: haversine_m(*c, *specs[i].center))
            cover = tuple(sorted(near[: rng.randint(3, 4)]))
            ramp, plateau = self.dur(90, 150, 8), self.dur(240, 420, 20)
            t0 = self.when(2 * ramp + plateau)
            e = Episode(
                cover,
                t0,
                t0 + ramp,
                t0 + ramp + plateau,
                t0 + 2 * ramp + plateau,
                rng.uniform(2.6, 3.6),
            )
            self.plan.episodes.append(e)
            names = [specs[i].name for i in cover]
            n_st = sum(1 for d in self.city.station_district if d in cover)
            self.label(
                "air.episode",
                "district",
                specs[main].name,
                e.t0,
                e.t1,
                also=[n for n in names if n != specs[main].name],
                districts=names,
                factor=round(e.factor, 2),
                stations=n_st,
                level="orange",
                lat=c[0],
                lon=c[1],
            )
        ep_d = tuple(d for e in self.plan.episodes for d in e.districts)
        for _ in range(sc.air_spikes):
            s = self.station(avoid_districts=ep_d)
            d = self.dur(40, 90, 10)
            if self.hourly[s]:
                d = max(d, HOURLY_FLOOR_MIN["spike"] * MINUTE_MS)
            t0 = self.when(d)
            peak = rng.uniform(60.0, 320.0)  # some plumes are subtle
            self.plan.plumes.append(Plume(s, t0, t0 + d, peak))
            self.label(
                "air.spike",
                "station",
                ids[s],
                t0,
                t0 + d,
                pollutant="pm25",
                peak_ugm3=round(peak),
                level="orange",
                **self.station_params(s),
            )
        faults = (
            # (minutes lo, hi, floor): floors keep compressed (demo) faults long enough for
            # run-length and persistence tests to fire
            ("stuck", sc.air_stuck, (120, 300, 30)),
            ("drift", sc.air_drift, (360, 720, 30)),
            ("range", sc.air_range, (20, 60, 10)),
            ("inversion", sc.air_inversion, (60, 180, 20)),
        )
        for kind, n, (lo, hi, floor) in faults:
            for _ in range(n):
                s = self.station()
                d = self.dur(lo, hi, floor)
                if self.hourly[s]:
                    d = max(d, HOURLY_FLOOR_MIN[kind] * MINUTE_MS)
                t0 = self.when(d)
                p = self.station_params(s)
                if kind == "stuck":
                    which = "all" if rng.random() < 0.5 else "pm"
                    f = Fault(s, "stuck", t0, t0 + d, which)
                    self.label(
                        "air.stuck",
                        "station",
                        ids[s],
                        t0,
                        t0 + d,
                        channels=self.reported(s, STUCK_CHANNELS[which]),
                        level="blue",
                        **p,
                    )
                elif kind == "drift":
                    rate = rng.uniform(0.08, 0.14) / max(sc.time_scale, 0.05)
                    f = Fault(s, "drift", t0, t0 + d, "pm25", rate)
                    self.label(
                        "air.drift",
                        "station",
                        ids[s],
                        t0,
                        t0 + d,
                        channel="pm25",
                        rate_per_h=round(rate, 3),
                        level="blue",
                        **p,
                    )
                elif kind == "range":
                    # a channel the station reports (a low-cost sensor has PM only)
                    ch = rng.choice(self.reported(s, ("pm25", "pm10", "no2", "co")))
                    val = (
                        rng.choice((-99.0, 9999.0, 1500.0))
                        if ch != "co"
                        else rng.choice((-9.9, 99.9))
                    )
                    f = Fault(s, "range", t0, t0 + d, ch, val)
                    self.label(
                        "air.range",
                        "station",
                        ids[s],
                        t0,
                        t0 + d,
                        check="gross_range",
                        channel=ch,
                        value=val,
                        level="blue",
                        **p,
                    )
                else:
                    f = Fault(s, "inversion", t0, t0 + d, "pm10")
                    self.label(
                        "air.range",
                        "station",
                        ids[s],
                        t0,
                        t0 + d,
                        check="pm25_gt_pm10",
                        channel="pm10",
                        level="blue",
                        **p,
                    )
                self.plan.faults.append(f)
        for _ in range(sc.air_shared_flat):
            self.shared_flat()

    def reported(self, s: int, channels: tuple[str, ...]) -> list[str]:
        """The ``channels`` station ``s`` reports (a low-cost sensor has PM only)."""
        return [c for c in channels if not self.lowcost[s] or c in LOWCOST_CHANNELS]

    def shared_flat(self) -> None:
        """Several stations repeat their last value from the same clock hour for 6-24 h: the
        publishing platform froze, not the analysers (real: two stations of two cities flat
        for 13 h from 2013-10-15 20:00). Hourly stations first. One ``air.stuck`` per station."""
        n = min(self.rng.randint(2, 3), len(self.free_stations))
        if n < 2:
            msg = "plan: a shared flat line needs two free stations; raise the scale"
            raise ValueError(msg)
        stations = [self.station(hourly_first=True) for _ in range(n)]
        d = self.dur(360, 1440, 60)
        d -= d % HOUR_MS if d >= HOUR_MS else 0
        t0 = self.when(d + HOUR_MS)
        t0 += (HOUR_MS - t0 % HOUR_MS) % HOUR_MS
        ids = [self.city.station_ids[s] for s in stations]
        for s, sid in zip(stations, ids, strict=True):
            self.plan.faults.append(Fault(s, "stuck", t0, t0 + d, "all"))
            self.label(
                "air.stuck",
                "station",
                sid,
                t0,
                t0 + d,
                channels=self.reported(s, STUCK_CHANNELS["all"]),
                shared_with=[x for x in ids if x != sid],
                level="blue",
                **self.station_params(s),
            )

    # -- vehicles ----------------------------------------------------------------------------

    def stop(self, vid: str, t: int, dwell_ms: int, lat: float, lon: float, label: int) -> None:
        s = InjectedStop(vid, t, dwell_ms // 1000, lat, lon)
        self.plan.stops.append(s)
        self.plan.stop_labels[label] = s

    def vehicles(self) -> None:
        sc, rng, reg = self.sc, self.rng, self.city.registry
        zones = sorted(reg.zones.values(), key=lambda z: z.id)
        rng.shuffle(zones)
        for i in range(sc.dwell_sensitive):
            z = zones[i % len(zones)]
            d = self.dur(30, 90, 25)
            t = self.when(d, hours=(7.0, 20.0))
            r = z.radius_m * 0.5 * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            lat, lon = offset(z.lat, z.lon, r * math.cos(a), r * math.sin(a))
            vid = self.vehicle(t)
            li = self.label(
                "vehicle.dwell",
                "vehicle",
                vid,
                t,
                t + d,
                reason="sensitive",
                zone=z.id,
                category=z.category,
                lat=round(lat, 6),
                lon=round(lon, 6),
                radius_m=z.radius_m,
                level=_ZONE_LEVEL[z.category],
            )
            self.stop(vid, t, d, lat, lon, li)
        shops = list(self.city.workshops)
        rng.shuffle(shops)
        for w in shops[: sc.workshops_visited]:
            visits: list[tuple[int, int]] = []
            for _ in range(max(2, sc.visits_per_workshop)):
                d = self.dur(40, 120, 25)
                for _ in range(20):
                    t = self.when(d, hours=(8.0, 19.0))
                    if all(abs(t - v) > d + 30 * MINUTE_MS for v, _ in visits):
                        break
                visits.append((t, d))
            visits.sort()
            vids = []
            for t, d in visits:
                lat, lon = offset(w.lat, w.lon, rng.gauss(0, 15.0), rng.gauss(0, 15.0))
                vid = self.vehicle(t)
                while vid in vids:
                    vid = self.vehicle(t)
                vids.append(vid)
                li = self.label(
                    "vehicle.dwell",
                    "vehicle",
                    vid,
                    t,
                    t + d,
                    reason="unregistered",
                    workshop=w.id,
                    lat=round(lat, 6),
                    lon=round(lon, 6),
                    radius_m=200.0,
                    level="yellow",
                )
                self.stop(vid, t, d, lat, lon, li)
            idx = self.city.workshops.index(w)
            self.city.workshops[idx] = type(w)(
                id=w.id,
                lat=w.lat,
                lon=w.lon,
                district=w.district,
                visits=len(visits),
                vehicles=tuple(vids),
            )
            self.label(
                "vehicle.workshop",
                "spot",
                w.id,
                visits[1][0],
                self.E,
                workshop=w.id,
                lat=w.lat,
                lon=w.lon,
                radius_m=300.0,
                visits=len(visits),
                vehicles=vids,
                level="yellow",
            )

    # -- sites -------------------------------------------------------------------------------

    def sites(self) -> None:
        sc, rng, city = self.sc, self.rng, self.city
        need = sc.resumptions + sc.night_resumptions + sc.lifts
        suspended = [i for i, s in enumerate(city.sites) if s.state == "suspended"]
        dormant = [i for i, s in enumerate(city.sites) if s.state == "dormant"]
        while len(suspended) < need + 1 and dormant:
            i = dormant.pop(rng.randrange(len(dormant)))
            city.sites[i].state = "suspended"
            suspended.append(i)
        rng.shuffle(suspended)
        reg = city.registry
        for k in range(sc.resumptions + sc.night_resumptions):
            night = k >= sc.resumptions
            i = suspended.pop()
            site = reg.sites[city.sites[i].id]
            d = _ceil_minute(self.dur(120, 240, 30))
            # activity changes per minute window: align, and the last window's records
            # (at the window start plus each camera's phase) still belong to the label
            t0 = _ceil_minute(self.when(d, hours=(21.5, 1.0) if night else (8.0, 15.0)))
            intensity = rng.uniform(0.35, 0.9)  # some work is half-hearted or hidden
            covered = k % 3 == 2  # every third crew covers the cameras: power tells
            self.plan.resumptions.append(Resumption(i, t0, t0 + d, intensity, night, covered))
            tickets: list[str] = []
            if night and "hotline" in sc.kinds:
                tickets = self.night_complaints(site.name, site.lat, site.lon, t0, d)
            self.label(
                "worksite.resumption",
                "site",
                site.id,
                t0,
                t0 + d + MINUTE_MS,
                night=night,
                cameras_covered=covered,
                intensity=round(intensity, 2),
                lat=site.lat,
                lon=site.lon,
                district=site.district,
                tickets=tickets,
                level="red" if night else "orange",
            )
        for _ in range(sc.lifts):
            if not suspended:
                break
            i = suspended.pop()
            t = self.when(0, hours=(8.0, 14.0)) if sc.start_window_s == 0 else self.S + 60_000
            t = _ceil_minute(t)
            self.plan.lifts.append(Lift(i, t))
            self.plan.negatives.append(
                {"kind": "lifted_then_working", "site": city.sites[i].id, "ts": t}
            )
        active = [i for i, s in enumerate(city.sites) if s.state == "active"]
        rng.shuffle(active)
        for i in active[: sc.new_suspensions]:
            t = _ceil_minute(self.when(0, hours=(9.0, 15.0)))
            self.plan.suspensions.append(Suspension(i, t))
            self.plan.negatives.append(
                {"kind": "newly_suspended_winding_down", "site": city.sites[i].id, "ts": t}
            )

    def night_complaints(
        self, site_name: str, lat: float, lon: float, t0: int, d: int
    ) -> list[str]:
        rng = py_rng(self.seed, "plan", "night", site_name, t0)
        n = rng.choice((1, 2, 2, 3))
        spot = self.writer.book.spot(rng, near=(lat, lon))
        # the callers live next to the site, whatever community they name
        spot = dataclasses.replace(
            spot,
            lat=lat + rng.uniform(-0.0012, 0.0012),
            lon=lon + rng.uniform(-0.0012, 0.0012),
            anchored=True,
        )
        times = sorted(
            t0 + rng.randrange(15 * MINUTE_MS, max(16 * MINUTE_MS, d - 5 * MINUTE_MS))
            for _ in range(n)
        )
        out = [self.writer.night_work(rng, self.key("night"), t, site_name, spot) for t in times]
        out = self.merged(out, rng)
        self.plan.tickets.extend(out)
        if len(out) >= 2:
            self.dup_label(out, "noise", spot, 250.0)
        return [t.id for t in out]

    # -- hotline -----------------------------------------------------------------------------

    def dup_label(self, tickets: list[Ticket], category: str, spot: Spot, radius: float) -> None:
        ids = [t.id for t in tickets]
        far = max(haversine_m(spot.lat, spot.lon, t.true_lat, t.true_lon) for t in tickets)
        self.label(
            "hotline.duplicate",
            "ticket",
            ids[0],
            tickets[0].ts,
            tickets[-1].ts,
            also=ids[1:],
            tickets=ids,
            size=len(ids),
            category=category,
            family=tickets[0].family,
            held_out=tickets[0].held_out,
            lat=spot.lat,
            lon=spot.lon,
            radius_m=max(radius, round(far + 150.0)),
            level="blue",
        )

    def merged(self, tickets: list[Ticket], rng: random.Random | None = None) -> list[Ticket]:
        """Officers merge most later callers of a cluster into its first ticket."""
        if len(tickets) < 2:
            return tickets
        rng = rng or self.rng
        first = tickets[0].id
        return [
            tickets[0],
            *(tk.with_merge(first) if rng.random() < 0.6 else tk for tk in tickets[1:]),
        ]

    def cluster(
        self,
        incident: Incident,
        spot: Spot,
        t0: int,
        span_ms: int,
        n: int,
        jitter_m: float = 250.0,
        text_only: bool | None = None,
    ) -> list[Ticket]:
        """``n`` callers reporting one incident at one place, each in their own words."""
        rng = self.rng
        times = [t0, *sorted(t0 + rng.randrange(60000, max(span_ms, 120000)) for _ in range(n - 1))]
        styles = rng.sample(range(10), min(n, 10))
        out: list[Ticket] = []
        first_caller: str | None = None
        for j, t in enumerate(times):
            again = j == n - 1 and n >= 3 and rng.random() < 0.3 and first_caller is not None
            tk = self.writer.make(
                rng,
                self.key("dup"),
                t,
                incident,
                spot,
                jitter_m=jitter_m,
                style=styles[j % len(styles)],
                caller=first_caller if again else None,
                text_only=text_only,
            )
            if again:
                tk = dataclasses.replace(tk, text="再次反映：" + tk.text)
            first_caller = first_caller or tk.caller
            out.append(tk)
        return self.merged(out)

    def hotline(self) -> None:
        sc, rng, w = self.sc, self.rng, self.writer
        for _ in range(sc.duplicate_clusters):
            span = self.dur(10, 90, 3)
            t0 = self.when(span, hours=(7.0, 23.0))
            spot = w.book.spot(rng)
            inc = w.incident(rng)
            tickets = self.cluster(inc, spot, t0, span, rng.randint(2, 5))
            self.plan.tickets.extend(tickets)
            self.dup_label(tickets, inc.family.category, spot, 300.0)
        for k in range(sc.hard_negatives):
            t0 = self.when(30 * MINUTE_MS, hours=(8.0, 21.0))
            spot = w.book.spot(rng)
            t1 = t0 + rng.randrange(60_000, 1_800_000)
            if k % 2 == 0:  # same place, other problem (two times in three in the same category)
                i1 = w.incident(rng)
                same_cat = [
                    f for f in w.families if f.category == i1.family.category and f != i1.family
                ]
                if k % 6 != 4 and same_cat:
                    i2 = Incident.draw(rng, rng.choice(same_cat))
                else:
                    i2 = w.incident(rng)
                    while i2.family.category == i1.family.category:
                        i2 = w.incident(rng)
                a = w.make(rng, self.key("neg"), t0, i1, spot, jitter_m=60.0)
                b = w.make(rng, self.key("neg"), t1, i2, spot, jitter_m=60.0)
                if rng.random() < 0.5:
                    b = b.with_merge("")  # an officer keeps them apart
                kind = "same_place_other_problem"
            else:  # same problem, other place (3-6 km away)
                inc = w.incident(rng)
                far = w.book.spot_far(rng, spot, 3000.0, 6000.0)
                a = w.make(rng, self.key("neg"), t0, inc, spot)
                b = w.make(rng, self.key("neg"), t1, inc, far)
                kind = "same_problem_other_place"
            self.plan.tickets.extend([a, b])
            self.plan.negatives.append({"kind": kind, "tickets": [a.id, b.id], "ts": a.ts})
        for _ in range(sc.surges):
            d = self.dur(60, 150, 10)
            t0 = self.when(d, hours=(8.0, 20.0))
            spec = rng.choice([s for s in self.city.geo.specs if s.weight >= 0.08])
            cat = rng.choice(("odor", "water", "noise", "garbage"))
            per_day = self.city.profile.count("tickets_per_day", self.city.scale, 60)
            base_per_h = per_day / 24 * spec.weight * 0.12
            n = max(10, round(8 * base_per_h * d / HOUR_MS))
            places = SpatialIndex()
            tickets = []
            inc = w.incident(rng, cat)  # one cause across the district
            for _ in range(n):
                for _ in range(20):
                    spot = w.book.spot(rng, district=spec.name)
                    if not places.near(spot.lat, spot.lon, 900.0):
                        break
                places.add(spot.lat, spot.lon)
                t = t0 + rng.randrange(0, d)
                tickets.append(w.make(rng, self.key("surge"), t, inc, spot))
            tickets.sort(key=lambda x: x.ts)
            self.plan.tickets.extend(tickets)
            self.label(
                "hotline.surge",
                "district",
                f"{spec.name}/{cat}",
                t0,
                t0 + d,
                district=spec.name,
                category=cat,
                tickets=[x.id for x in tickets],
                count=n,
                baseline_per_h=round(base_per_h, 3),
                level="yellow",
                lat=spec.center[0],
                lon=spec.center[1],
            )

    # -- cross-source ------------------------------------------------------------------------

    def cross_source(self) -> None:
        rng, reg = self.rng, self.city.registry
        ep_d = tuple(d for e in self.plan.episodes for d in e.districts)
        for k in range(self.sc.cross_source):
            s = self.station(avoid_districts=ep_d)
            st = reg.stations[self.city.station_ids[s]]
            lead = self.dur(20, 20, 2)
            spike = self.dur(60, 90, 10)
            t_truck = self.when(lead + spike)
            t_spike = t_truck + lead
            _, wdir = regional_wind(self.seed, t_spike)
            dist = rng.uniform(700.0, 1300.0)
            theta = math.radians(wdir)
            tlat, tlon = offset(st.lat, st.lon, dist * math.cos(theta), dist * math.sin(theta))
            vid = self.vehicle(t_truck)
            dwell = lead + spike + self.dur(10, 20, 3)
            li = self.label(
                "vehicle.dwell",
                "vehicle",
                vid,
                t_truck,
                t_truck + dwell,
                reason="unregistered",
                lat=round(tlat, 6),
                lon=round(tlon, 6),
                radius_m=200.0,
                level="orange",
                incident=f"INC{k + 1:04d}",
            )
            self.stop(vid, t_truck, dwell, tlat, tlon, li)
            peak = rng.uniform(180.0, 300.0)
            self.plan.plumes.append(Plume(s, t_spike, t_spike + spike, peak))
            p = {"lat": st.lat, "lon": st.lon, "district": st.district}
            self.label(
                "air.spike",
                "station",
                st.id,
                t_spike,
                t_spike + spike,
                pollutant="pm25",
                peak_ugm3=round(peak),
                level="orange",
                incident=f"INC{k + 1:04d}",
                **p,
            )
            near = offset(st.lat, st.lon, rng.uniform(-400, 400), rng.uniform(-400, 400))
            spot = self.writer.book.spot(rng, near=near)
            spot = dataclasses.replace(spot, lat=near[0], lon=near[1], anchored=True)
            n = rng.randint(3, 4)
            first = t_spike + self.dur(5, 10, 1)
            fams = [f for f in self.writer.families if f.category == "odor"]
            chem = [f for f in fams if f.code == "odor.chemical"]
            inc = Incident.draw(rng, (chem or fams)[0])
            tickets = self.cluster(
                inc, spot, first, self.dur(20, 40, 4), n, jitter_m=600.0, text_only=False
            )
            self.plan.tickets.extend(tickets)
            self.dup_label(tickets, "odor", spot, 1000.0)
            self.label(
                "incident.correlated",
                "incident",
                f"INC{k + 1:04d}",
                t_spike,
                t_spike + spike,
                lat=st.lat,
                lon=st.lon,
                radius_m=2000.0,
                level="red",
                station=st.id,
                vehicle=vid,
                tickets=[t.id for t in tickets],
                rules=["air.spike", "hotline.duplicate", "vehicle.dwell"],
                wind_from_deg=round(wdir, 1),
            )


def ticket_salt(sc: Scenario) -> str:
    """What keeps ticket ids of different runs (scenario, start) apart under one seed."""
    return f"{sc.name}@{sc.start_ms}"


def _ceil_minute(t: int) -> int:
    return t if t % MINUTE_MS == 0 else t - t % MINUTE_MS + MINUTE_MS


def make_plan(city: City, sc: Scenario, seed: int) -> Plan:
    p = _Planner(city, sc, seed)
    kinds = set(sc.kinds)
    if "air" in kinds:
        p.air()
    if "gps" in kinds:
        p.vehicles()
    if {"video", "power"} & kinds:
        p.sites()
    if "hotline" in kinds:
        # its own random stream: planning tickets does not move the other anomalies
        p.rng, rng = py_rng(seed, "plan", "hotline"), p.rng
        p.hotline()
        p.rng = rng
    if {"air", "gps", "hotline"} <= kinds:
        p.cross_source()
    return p.plan
