"""12345 hotline tickets: citizens' complaints at named places, and the officers' decisions.

Background tickets arrive with the day's rhythm (few at night, peaks late morning and
afternoon; noise complaints shift to the evening), at places drawn from the city's address
book (``simulators.addresses``) with the population. Texts are composed from parts
(``simulators.complaints``): 15 categories, 42 problem families, colloquial, with homophone
slips, some in traditional characters, many with a masked phone number.

Places: about a third of tickets carry only an address in words (no coordinates, no grid),
the rest coordinates near the named place; most carry the address text too, and the body
usually names the place again (often in other words). A few addresses are too vague to place
(``我家楼下``), as real ones are.

Decisions: each ticket is dispatched by an officer 3-90 minutes after intake: a second record
with the same ticket id, the confirmed ``category`` and the ``dept`` (department). One in
twelve first goes to a wrong department and is corrected by a third record later. Officers also
merge duplicates (``duplicate_of`` = the first ticket) and split same-place look-alikes
(``duplicate_of = ""``). At intake, 60% of tickets carry the call-taker's category.

Background tickets never accidentally duplicate one another: a ticket of the same family within
``BACKGROUND_GAP_M`` and ``BACKGROUND_GAP_MS`` of another is moved. So every real duplicate is a
planned one (clusters, by the planner), and tickets at one place about other problems, or about
the same problem elsewhere, are the hard negatives.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

import msgspec

from citywatch.events import Hotline, encode
from citywatch.geo import grid_id, haversine_m, offset
from citywatch.partitioning import partition_key
from simulators.addresses import AddressBook, Spot
from simulators.city import City
from simulators.clock import HOUR_MS, MINUTE_MS, TZ, local_hour, weekday
from simulators.complaints import (
    CATEGORIES,
    FAMILIES,
    Family,
    Incident,
    compose,
    families_for,
    misspell,
)
from simulators.geography import LAT_MAX, LAT_MIN, LON_MAX, LON_MIN
from simulators.seeds import derive, entity_hash, py_rng
from simulators.stream import Chunk

#: Every ticket travels in one partition (citywatch.partitioning).
HOTLINE_KEY = entity_hash(partition_key("hotline", ""))

__all__ = [
    "BACKGROUND_GAP_M",
    "BACKGROUND_GAP_MS",
    "CATEGORIES",
    "Decision",
    "HotlineStream",
    "Ticket",
    "TicketWriter",
]

_SHARES: Final = {
    "noise": 0.14,
    "garbage": 0.09,
    "traffic": 0.08,
    "construction": 0.07,
    "odor": 0.06,
    "water": 0.07,
    "vending": 0.07,
    "streetlight": 0.05,
    "labour": 0.08,
    "health": 0.05,
    "education": 0.04,
    "housing": 0.07,
    "transport": 0.05,
    "market": 0.05,
    "power": 0.03,
}
_HOURLY: Final = (
    0.15,
    0.1,
    0.08,
    0.08,
    0.1,
    0.2,
    0.4,
    0.7,
    0.95,
    1.0,
    1.0,
    0.9,
    0.7,
    0.85,
    0.95,
    1.0,
    0.95,
    0.85,
    0.75,
    0.75,
    0.7,
    0.55,
    0.4,
    0.25,
)
#: Share of tickets with an address in words only (no coordinates).
TEXT_ONLY_SHARE: Final = 0.33
#: Share of intake records carrying the call-taker's category.
INTAKE_CATEGORY_SHARE: Final = 0.6
#: Share of tickets first dispatched to a wrong department, then corrected.
REDISPATCH_SHARE: Final = 1 / 12
#: Addresses nobody can place.
_VAGUE: Final = ("我家楼下", "家门口", "我们村里", "老街那边", "小区里面", "单位附近", "菜场后面")
_NIGHT_WORK: Final = (
    "{place}的{site}半夜还在施工，机器轰隆隆响，吵得根本睡不着，不是说停工了吗？",
    "反映{site}夜间违规施工，{place}这边{time}挖掘机一直在响，请执法部门查处。",
    "{place}附近{site}明明贴了停工通知，晚上偷偷开工，噪音和灰尘都很大。",
)


@functools.cache
def _s2t() -> object:
    import opencc

    return opencc.OpenCC("s2t")


def traditional(text: str) -> str:
    """The text in traditional characters (as some callers from Hong Kong or Taiwan type)."""
    conv = _s2t()
    return str(conv.convert(text))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Decision:
    """An officer's decision about a ticket, sent as a second record with the ticket's id."""

    ts: int
    dept: str = ""
    category: str = ""
    #: merged into this ticket; "" = split from a wrong merge; None = no merge decision
    duplicate_of: str | None = None


@dataclass(frozen=True, slots=True)
class Ticket:
    """One ticket and its truth: what the intake record says, and what really holds."""

    ts: int
    id: str
    text: str
    category: str  # true category
    lat: float | None  # as sent (None: address in words only)
    lon: float | None
    caller: str
    address: str | None = None
    intake_category: str = ""
    family: str = ""
    dept: str = ""
    district: str = ""
    town: str = ""
    true_lat: float = 0.0
    true_lon: float = 0.0
    #: the address can be placed from its words (not a vague one)
    placeable: bool = True
    decisions: tuple[Decision, ...] = ()

    @property
    def held_out(self) -> bool:
        fam = FAMILIES.get(self.family)
        return fam is not None and fam.held_out

    def intake(self) -> Hotline:
        return Hotline(
            ts=self.ts,
            ticket=self.id,
            text=self.text,
            category=self.intake_category,
            lat=self.lat,
            lon=self.lon,
            grid=grid_id(self.lat, self.lon)
            if self.lat is not None and self.lon is not None
            else None,
            caller=self.caller,
            address=self.address,
        )

    def records(self) -> list[Hotline]:
        """The intake record and the decision records, in time order."""
        first = self.intake()
        out = [first]
        for d in self.decisions:
            out.append(
                msgspec.structs.replace(
                    first,
                    ts=d.ts,
                    category=d.category or self.category,
                    dept=d.dept or None,
                    duplicate_of=d.duplicate_of,
                )
            )
        return out

    def encode(self) -> bytes:
        return encode(self.intake())

    def with_merge(self, into: str | None) -> Ticket:
        """The ticket with an officer's merge (``into``) or split (``""``) on its dispatch."""
        if not self.decisions:
            return self
        first = replace(self.decisions[0], duplicate_of=into)
        return replace(self, decisions=(first, *self.decisions[1:]))


class TicketWriter:
    """Builds tickets; ids and callers are hashes, so they never reveal which are planned."""

    def __init__(self, city: City, seed: int, salt: str = "") -> None:
        # the salt (scenario and start) keeps ids of different runs apart
        self.city, self.seed, self.salt = city, seed, salt
        self.book: AddressBook = city.addresses
        self.families = families_for(seed)
        self._by_cat: dict[str, list[Family]] = {}
        for f in self.families:
            self._by_cat.setdefault(f.category, []).append(f)
        self.categories = [c for c in _SHARES if c in self._by_cat]
        self.depts = _all_depts(city)

    def family(self, rng: random.Random, category: str | None = None) -> Family:
        if category is None or category not in self._by_cat:
            category = rng.choices(self.categories, [_SHARES[c] for c in self.categories])[0]
        return rng.choice(self._by_cat[category])

    def incident(self, rng: random.Random, category: str | None = None) -> Incident:
        return Incident.draw(rng, self.family(rng, category))

    def ticket_id(self, ts: int, key: str) -> str:
        day = datetime.fromtimestamp(ts / 1000, TZ).strftime("%Y%m%d")
        return f"{day}{derive(self.seed, 'ticket', self.salt, key) % 10**10:010d}"

    def caller(self, key: str) -> str:
        return f"{derive(self.seed, 'caller', self.salt, key):016x}"

    def make(
        self,
        rng: random.Random,
        key: str,
        ts: int,
        incident: Incident,
        spot: Spot,
        *,
        jitter_m: float = 60.0,
        style: int | None = None,
        text: str | None = None,
        caller: str | None = None,
        text_only: bool | None = None,
    ) -> Ticket:
        """One caller's ticket about ``incident`` at ``spot``."""
        fam = incident.family
        style = rng.randrange(10) if style is None else style
        vague = rng.random() < 0.03
        place = rng.choice(_VAGUE) if vague else spot.describe(style, rng)
        body = text if text is not None else compose(rng, incident, place, local_hour(ts))
        if rng.random() < 0.35:
            body = misspell(rng, body, rng.choice((1, 1, 2)))
        trad = rng.random() < 0.07
        if trad:
            body = traditional(body)
        # the address field: the call-taker's transcription, fuller than the body's mention
        address: str | None = None
        if not vague and rng.random() < 0.85:
            address = spot.describe(rng.choice((0, 1, 4, 7, 9, 2, style)), rng)
            if rng.random() < 0.5 and not address.startswith(spot.district):
                address = spot.district + address
            if trad:
                address = traditional(address)
        elif vague:
            address = place
        plat, plon = self.book.point_of(spot, style)
        only_text = (rng.random() < TEXT_ONLY_SHARE) if text_only is None else text_only
        lat = lon = None
        if not only_text:
            # the platform geocodes the call (or the caller shares a location): near the place
            r = jitter_m * math.sqrt(rng.random())
            a = rng.uniform(0, 2 * math.pi)
            la, lo = offset(plat, plon, r * math.cos(a), r * math.sin(a))
            lat, lon = (
                round(_clamp(la, LAT_MIN, LAT_MAX), 6),
                round(_clamp(lo, LON_MIN, LON_MAX), 6),
            )
        cat = fam.category
        intake_cat = cat if rng.random() < INTAKE_CATEGORY_SHARE else ""
        dept = fam.department(spot.district)
        t_dispatch = ts + round(rng.lognormvariate(math.log(20), 0.7) * MINUTE_MS)
        t_dispatch = min(t_dispatch, ts + 3 * HOUR_MS)
        decisions: tuple[Decision, ...]
        if rng.random() < REDISPATCH_SHARE:
            wrong = rng.choice([d for d in self.depts if d != dept])
            t_fix = t_dispatch + rng.randrange(30, 180) * MINUTE_MS
            decisions = (Decision(t_dispatch, wrong, cat), Decision(t_fix, dept, cat))
        else:
            decisions = (Decision(t_dispatch, dept, cat),)
        return Ticket(
            ts=ts,
            id=self.ticket_id(ts, key),
            text=body,
            category=cat,
            lat=lat,
            lon=lon,
            caller=caller or self.caller(key),
            address=address,
            intake_category=intake_cat,
            family=fam.code,
            dept=dept,
            district=spot.district,
            town=spot.town.name,
            true_lat=plat,
            true_lon=plon,
            placeable=not vague,
            decisions=decisions,
        )

    def night_work(
        self, rng: random.Random, key: str, ts: int, site_name: str, spot: Spot
    ) -> Ticket:
        """A complaint about night work at a suspended site (for the incident correlator)."""
        text = rng.choice(_NIGHT_WORK).format(
            place=spot.describe(rng.randrange(10), rng),
            site=site_name,
            time=rng.choice(("现在", "半夜十二点了", "这会儿")),
        )
        inc = Incident.draw(rng, FAMILIES["noise.construction"])
        return self.make(rng, key, ts, inc, spot, jitter_m=150.0, text=text, text_only=False)


def _clamp(x: float, lo: float, hi: float) -> float:
    """Inside the region box (a town at its edge must not send callers out of it)."""
    return min(max(x, lo + 0.001), hi - 0.001)


def _all_depts(city: City) -> list[str]:
    from simulators.complaints import departments

    return departments([d.name for d in city.geo.specs])


#: Background tickets of one family are never this close in space and time: every closer
#: pair involves a planned (labelled or hard-negative) ticket.
BACKGROUND_GAP_M: Final = 800.0
BACKGROUND_GAP_MS: Final = 24 * HOUR_MS
_CELL: Final = 0.01  # degrees (about 1 km): 3 x 3 cells cover BACKGROUND_GAP_M


class _Recent:
    """Recent tickets per (family, cell), for the no-accidental-duplicate rule."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, int, int], list[tuple[int, float, float]]] = {}

    def add(self, fam: str, ts: int, lat: float, lon: float) -> None:
        key = (fam, int(lat / _CELL), int(lon / _CELL))
        self.cells.setdefault(key, []).append((ts, lat, lon))

    def clashes(self, fam: str, ts: int, lat: float, lon: float) -> bool:
        r, c = int(lat / _CELL), int(lon / _CELL)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                for t, la, lo in self.cells.get((fam, r + dr, c + dc), ()):
                    if (
                        abs(t - ts) < BACKGROUND_GAP_MS
                        and haversine_m(lat, lon, la, lo) < BACKGROUND_GAP_M
                    ):
                        return True
        return False


def background(
    city: City, seed: int, start_ms: int, end_ms: int, avoid: list[Ticket], salt: str = ""
) -> list[Ticket]:
    """The run's ordinary tickets (no accidental duplicates among them or with ``avoid``)."""
    rng = py_rng(seed, "hotline-background")
    writer = TicketWriter(city, seed, salt)
    per_day = city.profile.count("tickets_per_day", city.scale, 60)
    total_w = sum(_HOURLY)
    out: list[Ticket] = []
    recent = _Recent()
    for old in avoid:
        recent.add(old.family, old.ts, old.true_lat, old.true_lon)
    t = start_ms
    n = 0
    while True:
        h = local_hour(t)
        rate_per_ms = per_day * _HOURLY[int(h)] / total_w / HOUR_MS
        if weekday(t) >= 5:
            rate_per_ms *= 0.85
        t += max(1, round(rng.expovariate(rate_per_ms)))
        if t >= end_ms:
            break
        h = local_hour(t)
        night = h >= 21 or h < 6
        fam = writer.family(rng)
        if night and rng.random() < 0.5:
            fam = writer.family(rng, "noise")
        for _ in range(30):
            tk = writer.make(rng, f"bg{n + 1}", t, Incident.draw(rng, fam), writer.book.spot(rng))
            if not recent.clashes(fam.code, t, tk.true_lat, tk.true_lon):
                break
        else:
            continue  # the city is saturated with this complaint right now: nobody calls
        n += 1
        recent.add(fam.code, t, tk.true_lat, tk.true_lon)
        out.append(tk)
    return out


class HotlineStream:
    kind = "hotline"

    def __init__(
        self,
        city: City,
        seed: int,
        start_ms: int,
        end_ms: int,
        planned: list[Ticket],
        salt: str = "",
    ) -> None:
        tickets = [t for t in planned if start_ms <= t.ts < end_ms]
        tickets += background(city, seed, start_ms, end_ms, tickets, salt)
        tickets.sort(key=lambda t: (t.ts, t.id))
        self.tickets = tickets
        self.by_window: dict[int, Chunk] = {}
        records = [r for tk in tickets for r in tk.records() if r.ts < end_ms]
        records.sort(key=lambda r: (r.ts, r.ticket))
        for r in records:
            w = r.ts - r.ts % MINUTE_MS
            self.by_window.setdefault(w, Chunk()).add(r.ts, HOTLINE_KEY, encode(r))

    def chunk(self, w0: int) -> Chunk:
        return self.by_window.get(w0, Chunk())
