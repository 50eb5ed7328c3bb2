"""Work sites and the city's cameras and meters: video summaries and power readings every
minute, and suspension orders.

Activity of a site is a number in [0, 1] from its schedule: work days (Saturdays for about half
the sites, Sundays for a few), start 06:30-08:00, lunch dip, end 17:00-19:00, and for a few
active sites a legal night shift on some nights (concrete pours: looks odd, is normal).
Dormant sites are idle without any order; suspended sites are idle under an order, apart from
a guard walking by and detector flicker (a single window with machinery=1 now and then).

Street cameras follow the city's rhythm: morning and evening rush on weekdays, a late, flat
day on weekends, quiet nights. Counts are Poisson around those means.

Power meters: site meters draw an idle baseline plus load with activity; enterprise meters run
continuous (24 h), day-shift or two-shift patterns, lower on weekends.

Everything is vectorised per minute over all cameras and meters, formatted straight to bytes.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from citywatch.events import Order, encode
from citywatch.partitioning import partition_key
from simulators.city import City
from simulators.clock import DAY_MS, MINUTE_MS, TZ_OFFSET_MS, local_hour, weekday
from simulators.seeds import entity_hash, np_rng, py_rng
from simulators.stream import Chunk

__all__ = [
    "Lift",
    "OrderStream",
    "PowerStream",
    "Resumption",
    "SiteActivity",
    "Suspension",
    "VideoStream",
]

Arr = npt.NDArray[np.float64]
REASONS: Final = (
    "扬尘管控停工整改",
    "安全隐患停工整改",
    "重污染天气应急停工",
    "未批先建责令停工",
    "夜间违规施工停工整改",
)


@dataclass(frozen=True, slots=True)
class Resumption:
    """A suspended site works anyway in [t0, t1) at ``intensity`` of a normal day; with
    ``covered`` its cameras see nothing (lens covered): only power and complaints tell."""

    site: int
    t0: int
    t1: int
    intensity: float
    night: bool = False
    covered: bool = False


@dataclass(frozen=True, slots=True)
class Lift:
    """The order of suspended site ``site`` is lifted at ``t``: it may work legally after."""

    site: int
    t: int


@dataclass(frozen=True, slots=True)
class Suspension:
    """Active site ``site`` is suspended at ``t`` and stops within 30 minutes."""

    site: int
    t: int


class SiteActivity:
    """Activity level in [0, 1] of every site at a given minute (vectorised)."""

    def __init__(
        self,
        city: City,
        seed: int,
        resumptions: tuple[Resumption, ...] = (),
        lifts: tuple[Lift, ...] = (),
        suspensions: tuple[Suspension, ...] = (),
    ) -> None:
        s = city.sites
        self.seed = seed
        self.n = len(s)
        self.start_h = np.array([x.start_h for x in s])
        self.end_h = np.array([x.end_h for x in s])
        self.sat = np.array([x.sat for x in s])
        self.sun = np.array([x.sun for x in s])
        self.night = np.array([x.night_shift for x in s])
        self.state = np.array([{"active": 0, "dormant": 1, "suspended": 2}[x.state] for x in s])
        self.resumptions, self.lifts, self.suspensions = resumptions, lifts, suspensions
        self.hashes = np.array([entity_hash(x.id) for x in s], dtype=np.int64)

    def suspended_at(self, t: int) -> npt.NDArray[np.bool_]:
        """Which sites are under an order at ``t``."""
        susp = self.state == 2
        for lf in self.lifts:
            if t >= lf.t:
                susp[lf.site] = False
        for sp in self.suspensions:
            if t >= sp.t:
                susp[sp.site] = True
        return susp  # type: ignore[no-any-return]

    def covered_at(self, t: int) -> list[int]:
        """Sites whose cameras are covered at ``t``."""
        return [r.site for r in self.resumptions if r.covered and r.t0 <= t < r.t1]

    def at(self, t: int) -> Arr:
        h = local_hour(t)
        wd = weekday(t)
        day = (t + TZ_OFFSET_MS) // DAY_MS
        works_today = np.full(self.n, wd < 5)
        if wd == 5:
            works_today = self.sat.copy()
        elif wd == 6:
            works_today = self.sun.copy()
        ramp_in = np.clip((h - self.start_h) / 0.4, 0.0, 1.0)
        ramp_out = np.clip((self.end_h - h) / 0.4, 0.0, 1.0)
        a = np.minimum(ramp_in, ramp_out) * works_today
        if 11.5 <= h < 13.0:
            a *= 0.35
        # legal night shifts: two nights in seven, 21:00-03:00
        night_day = day if h >= 12 else day - 1
        tonight = ((self.hashes + night_day) % 7) < 2
        in_night = h >= 21.0 or h < 3.0
        if in_night:
            a = np.maximum(a, 0.6 * (self.night & tonight))
        active = self.state == 0
        for lf in self.lifts:
            if t >= lf.t:
                active[lf.site] = True
        for sp in self.suspensions:
            if t >= sp.t + 30 * MINUTE_MS:
                active[sp.site] = False
        a = a * active
        for r in self.resumptions:
            if r.t0 <= t < r.t1:
                a[r.site] = r.intensity
        return a  # type: ignore[no-any-return]


def _street_profile(h: float, wd: int) -> tuple[float, float]:
    """(people, traffic) multipliers of street cameras at local hour ``h``."""

    def bump(c: float, w: float) -> float:
        d = min(abs(h - c), 24 - abs(h - c))
        return float(np.exp(-0.5 * (d / w) ** 2))

    if wd < 5:
        people = 0.06 + 0.9 * bump(8.0, 1.0) + 0.6 * bump(12.5, 2.5) + 0.95 * bump(18.0, 1.4)
        traffic = 0.08 + 1.0 * bump(7.8, 0.9) + 0.5 * bump(13.0, 3.0) + 1.0 * bump(17.8, 1.2)
    else:
        people = 0.06 + 0.8 * bump(14.0, 3.5)
        traffic = 0.08 + 0.6 * bump(13.5, 3.5)
    return people, traffic


class VideoStream:
    kind = "video"

    def __init__(
        self, city: City, seed: int, start_ms: int, end_ms: int, activity: SiteActivity
    ) -> None:
        self.seed, self.start_ms, self.end_ms = seed, start_ms, end_ms
        self.activity = activity
        ids = city.camera_ids
        self.n = len(ids)
        self.site = city.camera_site
        self.is_site = self.site >= 0
        self.gate = city.camera_gate
        hashes = [entity_hash(c) for c in ids]
        site_ids = [s.id for s in city.sites]
        # A site's cameras go with its meters and orders (citywatch.partitioning).
        self.keys = [
            entity_hash(partition_key("video", c, site=site_ids[i] if i >= 0 else None))
            for c, i in zip(ids, self.site.tolist(), strict=True)
        ]
        self.phase = np.array([h % MINUTE_MS for h in hashes], dtype=np.int64)
        self.people = city.camera_people
        self.traffic = city.camera_traffic
        machines = np.array([s.machines for s in city.sites])
        crew = np.array([s.crew for s in city.sites])
        sidx = np.where(self.is_site, self.site, 0)
        self.site_people = np.where(self.is_site, crew[sidx] * np.where(self.gate, 0.4, 1.0), 0.0)
        self.site_mach = np.where(self.is_site, machines[sidx] * np.where(self.gate, 0.3, 1.0), 0.0)
        self.site_veh = np.where(self.is_site, np.where(self.gate, 2.5, 0.8), 0.0)
        self.sidx = sidx
        self.tmpl = [
            (
                b'{"kind":"video","camera":"%s","site":%s,"window_s":60,"ts":%%d,'
                b'"persons":%%d,"vehicles":%%d,"machinery":%%d}'
                % (c.encode(), (b'"%s"' % site_ids[s].encode()) if s >= 0 else b"null")
            )
            for c, s in zip(ids, self.site.tolist(), strict=True)
        ]
        # cameras in phase order: each minute's records come out sorted, which makes the
        # merge (a stable sort of already sorted runs) cheap
        perm = np.argsort(self.phase, kind="stable")
        for name in (
            "site",
            "is_site",
            "gate",
            "phase",
            "people",
            "traffic",
            "site_people",
            "site_mach",
            "site_veh",
            "sidx",
        ):
            setattr(self, name, getattr(self, name)[perm])
        order = perm.tolist()
        self.keys = [self.keys[i] for i in order]
        self.tmpl = [self.tmpl[i] for i in order]
        self.plate_tmpl = {
            i: self.tmpl[i][:-1] + b',"plates":[%s]}' for i in np.flatnonzero(self.gate).tolist()
        }
        prng = py_rng(seed, "site-plates")
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        self.plates = [
            [
                f'"苏F{prng.choice(letters)}{prng.randrange(10000, 99999)}"'.encode()
                for _ in range(6)
            ]
            for _ in city.sites
        ]

    def chunk(self, w0: int) -> Chunk:
        rng = np_rng(self.seed, "video", w0)
        a = self.activity.at(w0)[self.sidx]
        people_m, traffic_m = _street_profile(local_hour(w0), weekday(w0))
        lam_p = np.where(self.is_site, self.site_people * a + 0.08, self.people * people_m)
        lam_v = np.where(self.is_site, self.site_veh * a, self.traffic * traffic_m)
        lam_m = np.where(self.is_site, self.site_mach * a, 0.0)
        covered = self.activity.covered_at(w0)
        if covered:
            blind = self.is_site & np.isin(self.sidx, covered)
            lam_p, lam_v, lam_m = (np.where(blind, 0.0, x) for x in (lam_p, lam_v, lam_m))
        persons = rng.poisson(lam_p)
        vehicles = rng.poisson(lam_v)
        machinery = rng.poisson(lam_m) + (rng.random(self.n) < 0.0015)
        ts = w0 + self.phase
        keep = (ts >= self.start_ms) & (ts < self.end_ms)
        lines = list(
            map(
                operator.mod,
                self.tmpl,
                zip(
                    ts.tolist(),
                    persons.tolist(),
                    vehicles.tolist(),
                    machinery.tolist(),
                    strict=True,
                ),
            )
        )
        gates = np.flatnonzero(self.gate & (vehicles > 0) & (a > 0.2)).tolist()
        minute = w0 // MINUTE_MS
        for i in gates:
            pool = self.plates[int(self.sidx[i])]
            k = min(int(vehicles[i]), 3)
            plates = b",".join(pool[(minute + j) % len(pool)] for j in range(k))
            lines[i] = self.plate_tmpl[i] % (
                int(ts[i]),
                int(persons[i]),
                int(vehicles[i]),
                int(machinery[i]),
                plates,
            )
        out = Chunk(ts.tolist(), self.keys, lines)
        if not keep.all():
            idx = np.flatnonzero(keep).tolist()
            out = Chunk(
                [out.ts[i] for i in idx], [out.keys[i] for i in idx], [lines[i] for i in idx]
            )
        return out


class PowerStream:
    kind = "power"

    def __init__(
        self, city: City, seed: int, start_ms: int, end_ms: int, activity: SiteActivity
    ) -> None:
        self.seed, self.start_ms, self.end_ms = seed, start_ms, end_ms
        self.activity = activity
        ids = city.meter_ids
        self.n = len(ids)
        self.site = city.meter_site
        self.is_site = self.site >= 0
        self.sidx = np.where(self.is_site, self.site, 0)
        idle = np.array([s.idle_kw for s in city.sites])
        work = np.array([s.work_kw for s in city.sites])
        self.idle = np.where(self.is_site, idle[self.sidx], 0.0)
        self.work = np.where(self.is_site, work[self.sidx], 0.0)
        self.base = city.meter_kw
        self.pattern = city.meter_pattern
        hashes = [entity_hash(m) for m in ids]
        site_ids = [s.id for s in city.sites]
        self.keys = [
            entity_hash(partition_key("power", m, site=site_ids[i] if i >= 0 else None))
            for m, i in zip(ids, self.site.tolist(), strict=True)
        ]
        self.phase = np.array([h % MINUTE_MS for h in hashes], dtype=np.int64)
        self.tmpl = [
            b'{"kind":"power","meter":"%s","site":%s,"ts":%%d,"kw":%%.1f}'
            % (m.encode(), (b'"%s"' % site_ids[s].encode()) if s >= 0 else b"null")
            for m, s in zip(ids, self.site.tolist(), strict=True)
        ]
        perm = np.argsort(self.phase, kind="stable")  # records of a minute come out sorted
        for name in ("site", "is_site", "sidx", "idle", "work", "base", "pattern", "phase"):
            setattr(self, name, getattr(self, name)[perm])
        order = perm.tolist()
        self.keys = [self.keys[i] for i in order]
        self.tmpl = [self.tmpl[i] for i in order]

    def chunk(self, w0: int) -> Chunk:
        rng = np_rng(self.seed, "power", w0)
        a = self.activity.at(w0)[self.sidx]
        h = local_hour(w0)
        wd = weekday(w0)
        day = 8.0 <= h < 17.0 and wd < 5
        two = 6.0 <= h < 22.0 and wd < 5
        weekend = wd >= 5
        ent = np.select(
            [self.pattern == 0, self.pattern == 1],
            [np.ones(self.n), np.full(self.n, 1.0 if day else (0.3 if weekend else 0.25))],
            np.full(self.n, 1.0 if two else (0.6 if weekend else 0.35)),
        )
        noise = rng.normal(1.0, 0.04, self.n)
        kw = np.where(
            self.is_site,
            self.idle * noise + a * self.work * rng.normal(1.0, 0.08, self.n),
            self.base * ent * noise,
        )
        kw = np.maximum(kw, 0.0)
        ts = w0 + self.phase
        lines = list(map(operator.mod, self.tmpl, zip(ts.tolist(), kw.tolist(), strict=True)))
        out = Chunk(ts.tolist(), self.keys, lines)
        keep = (ts >= self.start_ms) & (ts < self.end_ms)
        if not keep.all():
            idx = np.flatnonzero(keep).tolist()
            out = Chunk(
                [out.ts[i] for i in idx], [out.keys[i] for i in idx], [lines[i] for i in idx]
            )
        return out


class OrderStream:
    """Suspension orders: the standing ones at the start, then issues and lifts as planned."""

    kind = "order"

    def __init__(
        self, city: City, seed: int, start_ms: int, end_ms: int, activity: SiteActivity
    ) -> None:
        rng = py_rng(seed, "orders")
        events: list[tuple[int, bytes, int]] = []
        for i, s in enumerate(city.sites):
            if s.state == "suspended":
                ts = start_ms + entity_hash(s.id) % 30_000
                until = start_ms + rng.randrange(5, 40) * DAY_MS
                events.append(
                    (
                        ts,
                        encode(
                            Order(
                                ts=ts,
                                site=s.id,
                                action="suspend",
                                until=until,
                                reason=rng.choice(REASONS),
                            )
                        ),
                        i,
                    )
                )
        for lf in activity.lifts:
            sid = city.sites[lf.site].id
            events.append(
                (
                    lf.t,
                    encode(Order(ts=lf.t, site=sid, action="lift", reason="整改完成，准予复工")),
                    lf.site,
                )
            )
        for sp in activity.suspensions:
            sid = city.sites[sp.site].id
            until = sp.t + rng.randrange(3, 20) * DAY_MS
            events.append(
                (
                    sp.t,
                    encode(
                        Order(
                            ts=sp.t,
                            site=sid,
                            action="suspend",
                            until=until,
                            reason=rng.choice(REASONS),
                        )
                    ),
                    sp.site,
                )
            )
        self.by_window: dict[int, Chunk] = {}
        for ts, line, i in sorted(events):
            if start_ms <= ts < end_ms:
                w = ts - ts % MINUTE_MS
                self.by_window.setdefault(w, Chunk()).add(ts, entity_hash(city.sites[i].id), line)

    def chunk(self, w0: int) -> Chunk:
        return self.by_window.get(w0, Chunk())
