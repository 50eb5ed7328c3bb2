"""Placing a ticket from its address in words, with the registry as the gazetteer.

Most 12345 tickets say where in words (``崇川区和平桥街道幸福小区3栋``, ``人民路与工农路交叉口``,
``文峰公园旁边``) and carry no coordinates. :class:`Gazetteer` reads every name the registry
knows: districts (``崇川区`` and ``崇川``), towns (``和平桥街道`` and ``和平桥``), localities
(communities, roads with their centre lines, landmarks), work sites, registered places and
sensitive zones (schools, hospitals). :meth:`Gazetteer.place` finds the names in a text
(longest match first, non-overlapping) and picks the reading in which they agree:

1. every entry of every mentioned name is a candidate anchor; the most specific ones win
   (a community, landmark or site: a point; two roads that meet: their corner; a road; a
   town; a district);
2. an anchor gains support from each other mention with an entry in the same district (more
   in the same town, or within 1.5 km): ``人民路`` is in four districts, ``人民路`` next to
   ``和平桥街道`` is in one;
3. ties are broken by nothing: the first reading is taken and the confidence says how many
   there were.

The result (:class:`Placement`) has the district, town, grid, approximate coordinates,
``precision_m`` (how far off the point may be: 150 m for a community, half a road's length
for a road, the district's size for a district) and ``confidence``: the estimated probability
that the district is right (the anchor's specificity times one over the number of equally
supported readings in other districts). A text with no known name is not placed
(``placed`` is False): the ticket is kept and flagged, never dropped.

>>> from citywatch.registry import District, Locality, Registry
>>> ring = ((120.0, 32.0), (121.0, 32.0), (121.0, 33.0), (120.0, 33.0), (120.0, 32.0))
>>> ring2 = ((121.0, 32.0), (122.0, 32.0), (122.0, 33.0), (121.0, 33.0), (121.0, 32.0))
>>> reg = Registry(districts=[District(name="崇川区", code="1", rings=(ring,)),
...                           District(name="海门区", code="2", rings=(ring2,))])
>>> reg.localities = {
...     "C1": Locality(id="C1", name="幸福小区", kind="community", lat=32.5, lon=120.5,
...                    district="崇川区", town="和平桥街道"),
...     "R1": Locality(id="R1", name="人民路", kind="road", lat=32.5, lon=120.5,
...                    district="崇川区", town="和平桥街道"),
...     "R2": Locality(id="R2", name="人民路", kind="road", lat=32.5, lon=121.5,
...                    district="海门区", town="海门街道")}
>>> gz = Gazetteer.from_registry(reg)
>>> p = gz.place("我家在幸福小区3栋，楼下噪音")
>>> p.placed, p.district, p.kind, p.confidence >= 0.9
(True, '崇川区', 'community', True)
>>> p = gz.place("人民路12号")
>>> p.district in ("崇川区", "海门区"), p.confidence
(True, 0.45)
>>> gz.place("海门区人民路12号").district
'海门区'
>>> gz.place("我家楼下").placed
False
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Final

from citywatch.geo import grid_id, haversine_m
from citywatch.registry import Registry
from models.hotline.text import normalize

__all__ = ["Entry", "Gazetteer", "Mention", "Placement"]

#: kind -> (specificity rank, P(district right | unambiguous), precision in metres)
_KIND: Final[dict[str, tuple[int, float, float]]] = {
    "point": (4, 0.97, 150.0),  # community, landmark, site, place, zone
    "corner": (4, 0.95, 120.0),  # two roads that meet
    "road": (2, 0.9, 1500.0),
    "town": (1, 0.95, 4000.0),
    "district": (0, 0.97, 15000.0),
}
_NEAR_M: Final = 1500.0
_CORNER_M: Final = 300.0
_MIN_NAME: Final = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One gazetteer entry: a name's meaning (there may be several per name)."""

    id: str
    name: str
    kind: str  # community | landmark | site | place | zone | road | town | district
    lat: float
    lon: float
    district: str
    town: str = ""
    #: roads: the centre line as (lat, lon) points; half its length as the precision
    line: tuple[tuple[float, float], ...] = ()
    precision_m: float = 150.0


@dataclass(frozen=True, slots=True)
class Mention:
    """A known name found in a text: where, and every entry it may mean."""

    start: int
    end: int
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a ticket is, as far as its words tell (``placed`` False: nowhere known)."""

    placed: bool
    district: str | None = None
    town: str | None = None
    lat: float | None = None
    lon: float | None = None
    grid: str | None = None
    kind: str = ""
    precision_m: float = math.inf
    confidence: float = 0.0
    #: the names the placement rests on
    names: tuple[str, ...] = ()
    #: ids of the entries used (shared ids are strong evidence of one place)
    ids: tuple[str, ...] = ()
    #: spans of every known name in the normalised text (to mask place words elsewhere)
    spans: tuple[tuple[int, int], ...] = field(default=(), repr=False)

    def evidence(self) -> dict[str, object]:
        return {
            "placed": self.placed,
            "district": self.district,
            "town": self.town,
            "kind": self.kind or None,
            "precision_m": None if math.isinf(self.precision_m) else round(self.precision_m),
            "confidence": round(self.confidence, 3),
            "names": list(self.names),
        }


UNPLACED: Final = Placement(placed=False)


class Gazetteer:
    """Names -> entries, with a first-character index for one pass over a text."""

    def __init__(self, entries: list[Entry]) -> None:
        by_name: dict[str, list[Entry]] = {}
        for e in entries:
            if len(e.name) >= _MIN_NAME:
                by_name.setdefault(e.name, []).append(e)
        self._by_name = {k: tuple(v) for k, v in by_name.items()}
        index: dict[str, list[str]] = {}  # first two characters -> names, longest first
        for name in self._by_name:
            index.setdefault(name[:2], []).append(name)
        self._index = {k: tuple(sorted(v, key=len, reverse=True)) for k, v in index.items()}
        # the characters a name can start with: the scan jumps between them (in C)
        firsts = sorted({k[0] for k in self._index})
        self._first = (
            re.compile("[" + "".join(re.escape(c) for c in firsts) + "]") if firsts else None
        )
        self.districts = sorted({e.district for e in entries if e.kind == "district"})
        self._corners: dict[tuple[str, str], tuple[float, float] | None] = {}

    def __len__(self) -> int:
        return len(self._by_name)

    @classmethod
    def from_registry(cls, reg: Registry) -> Gazetteer:
        entries: list[Entry] = []
        for d in reg.districts:
            if not d.rings or not d.rings[0]:
                continue
            ring = d.rings[0]
            lon = sum(p[0] for p in ring) / len(ring)
            lat = sum(p[1] for p in ring) / len(ring)
            span = max(
                haversine_m(lat, lon, p[1], p[0]) for p in ring
            )  # centre to the farthest corner
            names = {d.name}
            if len(d.name) >= 3 and d.name[-1] in "区县市":
                names.add(d.name[:-1])
            for n in names:
                entries.append(Entry(f"D:{d.name}", n, "district", lat, lon, d.name, "", (), span))
        for t in reg.towns.values():
            for n in {t.name, _short_town(t.name)}:
                entries.append(
                    Entry(t.id, n, "town", t.lat, t.lon, t.district, t.name, (), _KIND["town"][2])
                )
        for x in reg.localities.values():
            kind = x.kind
            line = tuple((p[1], p[0]) for p in x.line)
            prec = _KIND[_class(kind)][2]
            if line:
                prec = max((haversine_m(x.lat, x.lon, p[0], p[1]) for p in line), default=prec)
            for n in (x.name, *x.aliases):
                entries.append(Entry(x.id, n, kind, x.lat, x.lon, x.district, x.town, line, prec))
        for s in reg.sites.values():
            entries.append(Entry(s.id, s.name, "site", s.lat, s.lon, s.district or ""))
        for p in reg.places.values():
            entries.append(Entry(p.id, p.name, "place", p.lat, p.lon, p.district or ""))
        for z in reg.zones.values():
            entries.append(Entry(z.id, z.name, "zone", z.lat, z.lon, z.district or ""))
        if reg.districts:  # fill districts the registry left empty from the outlines
            entries = [
                e
                if e.district
                else Entry(
                    e.id,
                    e.name,
                    e.kind,
                    e.lat,
                    e.lon,
                    reg.district_of(e.lat, e.lon) or "",
                    e.town,
                    e.line,
                    e.precision_m,
                )
                for e in entries
            ]
        return cls(entries)

    # -- finding names -----------------------------------------------------------------------

    def mentions(self, text: str) -> list[Mention]:
        """Known names in the normalised ``text``, longest first, not overlapping."""
        out: list[Mention] = []
        index, by_name, first = self._index, self._by_name, self._first
        if first is None:
            return out
        i, n = 0, len(text) - 1
        while i < n:
            hit = first.search(text, i, n)
            if hit is None:
                break
            i = hit.start()
            names = index.get(text[i : i + 2])
            if names is not None:
                for name in names:
                    if text.startswith(name, i):
                        out.append(Mention(i, i + len(name), by_name[name]))
                        i += len(name)
                        break
                else:
                    i += 1
                continue
            i += 1
        return out

    # -- placing -----------------------------------------------------------------------------

    def place(self, *texts: str | None) -> Placement:
        """Place by the names in all ``texts`` (e.g. the address and the body) read together.

        ``spans`` are the known names' spans in the *last* non-empty text, normalised (the
        body, whose place words a text similarity may mask).
        """
        return self.place_normalized(*(normalize(t) for t in texts if t))

    def place_normalized(self, *texts: str) -> Placement:
        """:meth:`place` for texts already passed through ``text.normalize``."""
        found: list[Mention] = []
        spans: tuple[tuple[int, int], ...] = ()
        for t in texts:
            if t:
                ms = self.mentions(t)
                found += ms
                spans = tuple((m.start, m.end) for m in ms)
        if not found:
            return UNPLACED
        return _with_spans(self._resolve(found), spans)

    def spans_only(self, text: str) -> Placement:
        """Not a placement: the known names' spans in the normalised ``text``, and the id of
        the first name that means exactly one point (a community, landmark or site), for a
        ticket whose coordinates already say where it is."""
        ms = self.mentions(text)
        if not ms:
            return UNPLACED
        ids: tuple[str, ...] = ()
        names: tuple[str, ...] = ()
        for m in ms:
            if len(m.entries) == 1 and _class(m.entries[0].kind) == "point":
                ids, names = (m.entries[0].id,), (m.entries[0].name,)
                break
        return Placement(
            placed=False,
            kind="point" if ids else "",
            names=names,
            ids=ids,
            spans=tuple((m.start, m.end) for m in ms),
        )

    def _corner(self, a: Entry, b: Entry) -> tuple[float, float] | None:
        """:func:`_corner`, remembered per pair of roads (the registry does not change, and
        the same few crossings are named ticket after ticket)."""
        cache = self._corners
        key = (a.id, b.id)
        if key in cache:
            return cache[key]
        out = cache[key] = _corner(a, b)
        return out

    def _resolve(self, ms: list[Mention]) -> Placement:
        anchors: list[tuple[float, Entry, Entry | None]] = []  # (score, entry, cross road)
        roads = [(k, e) for k, m in enumerate(ms) for e in m.entries if e.kind == "road"]
        for k, m in enumerate(ms):
            for e in m.entries:
                spec = _KIND[_class(e.kind)][0]
                support = sum(_support(e, o) for j, o in enumerate(ms) if j != k)
                anchors.append((spec * 10.0 + support, e, None))
        for (k1, r1), (k2, r2) in _pairs(roads):
            if k1 != k2 and r1.district == r2.district and r1.name != r2.name:
                corner = self._corner(r1, r2)
                if corner is not None:
                    sup = sum(_support(r1, o) for j, o in enumerate(ms) if j not in (k1, k2))
                    anchors.append((_KIND["corner"][0] * 10.0 + 2.0 + sup, r1, r2))
        if not anchors:
            return UNPLACED
        top = max(a[0] for a in anchors)
        best = [a for a in anchors if a[0] == top]
        _, e, cross = best[0]
        rivals = {(a[1].district) for a in best}
        kind = "corner" if cross is not None else e.kind
        p_right = _KIND[_class(kind)][1] / len(rivals)
        corner = self._corner(e, cross) if cross is not None else None
        if cross is not None and corner is not None:
            lat, lon = corner
            prec = _KIND["corner"][2]
            names: tuple[str, ...] = (e.name, cross.name)
            ids: tuple[str, ...] = (e.id, cross.id)
        else:
            lat, lon, prec = e.lat, e.lon, e.precision_m
            names, ids = (e.name,), (e.id,)
        town = e.town or None
        if town is None:  # a town named alongside a less specific anchor still counts
            towns = [
                x.town
                for m in ms
                for x in m.entries
                if x.kind == "town" and x.district == e.district
            ]
            town = towns[0] if towns else None
        return Placement(
            placed=True,
            district=e.district or None,
            town=town,
            lat=round(lat, 6),
            lon=round(lon, 6),
            grid=grid_id(lat, lon),
            kind=kind,
            precision_m=prec,
            confidence=round(p_right, 3),
            names=names,
            ids=ids,
        )


def _short_town(name: str) -> str:
    """How people say a town: 和平桥街道 -> 和平桥, 狼山镇街道 -> 狼山, 西亭镇 -> 西亭."""
    for suffix in ("镇街道", "街道", "镇", "乡"):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _class(kind: str) -> str:
    """community, landmark, site, place, zone -> point; the rest are their own class."""
    return kind if kind in _KIND else "point"


def _pairs(xs: list[tuple[int, Entry]]) -> list[tuple[tuple[int, Entry], tuple[int, Entry]]]:
    return [(a, b) for i, a in enumerate(xs) for b in xs[i + 1 :]]


def _support(e: Entry, other: Mention) -> float:
    """How much a second mention agrees with reading ``e`` (0 if it points elsewhere)."""
    best = 0.0
    for o in other.entries:
        if o.district != e.district:
            continue
        s = 1.0
        if e.town and o.town == e.town:
            s = 2.0
        if o.kind not in ("district", "town"):
            near = max(_NEAR_M, e.precision_m, o.precision_m)
            dy = (e.lat - o.lat) * 111_320.0
            dx = (e.lon - o.lon) * 111_320.0 * math.cos(math.radians(e.lat))
            if dx * dx + dy * dy < near * near:
                s += 1.0
        best = max(best, s)
    return best


def _corner(a: Entry, b: Entry) -> tuple[float, float] | None:
    """Where roads ``a`` and ``b`` meet (closest points of their lines within 300 m)."""
    la, lb = a.line or ((a.lat, a.lon),), b.line or ((b.lat, b.lon),)
    best: tuple[float, tuple[float, float]] | None = None
    for i in range(max(1, len(la) - 1)):
        for j in range(max(1, len(lb) - 1)):
            p = _closest(la[i], la[min(i + 1, len(la) - 1)], lb[j], lb[min(j + 1, len(lb) - 1)])
            d = haversine_m(*p[0], *p[1])
            if best is None or d < best[0]:
                mid = ((p[0][0] + p[1][0]) / 2, (p[0][1] + p[1][1]) / 2)
                best = (d, mid)
    if best is None or best[0] > _CORNER_M:
        return None
    return best[1]


def _closest(
    p1: tuple[float, float],
    p2: tuple[float, float],
    q1: tuple[float, float],
    q2: tuple[float, float],
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Closest points of segments p1-p2 and q1-q2 (planar in degrees; fine below 50 km)."""
    k = math.cos(math.radians(p1[0]))

    def xy(p: tuple[float, float]) -> tuple[float, float]:
        return p[1] * k, p[0]

    def back(x: float, y: float) -> tuple[float, float]:
        return y, x / k

    (ax, ay), (bx, by), (cx, cy), (dx, dy) = xy(p1), xy(p2), xy(q1), xy(q2)
    # candidate pairs: each end point against the other segment, and the crossing point
    cands: list[tuple[tuple[float, float], tuple[float, float]]] = [
        ((ax, ay), _proj(ax, ay, cx, cy, dx, dy)),
        ((bx, by), _proj(bx, by, cx, cy, dx, dy)),
        (_proj(cx, cy, ax, ay, bx, by), (cx, cy)),
        (_proj(dx, dy, ax, ay, bx, by), (dx, dy)),
    ]
    den = (bx - ax) * (dy - cy) - (by - ay) * (dx - cx)
    if abs(den) > 1e-15:
        t = ((cx - ax) * (dy - cy) - (cy - ay) * (dx - cx)) / den
        u = ((cx - ax) * (by - ay) - (cy - ay) * (bx - ax)) / den
        if 0.0 <= t <= 1.0 and 0.0 <= u <= 1.0:
            x, y = ax + t * (bx - ax), ay + t * (by - ay)
            cands.append(((x, y), (x, y)))
    best = min(((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2, p, q) for p, q in cands)
    return back(*best[1]), back(*best[2])


def _proj(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> tuple[float, float]:
    vx, vy = bx - ax, by - ay
    ll = vx * vx + vy * vy
    t = 0.0 if ll <= 0 else max(0.0, min(1.0, ((px - ax) * vx + (py - ay) * vy) / ll))
    return ax + t * vx, ay + t * vy


def _with_spans(p: Placement, spans: tuple[tuple[int, int], ...]) -> Placement:
    return dataclasses.replace(p, spans=spans)
