"""The city's address book: towns, roads, communities and landmarks, and how callers name places.

Each of the registry's towns (街道/镇, ``simulators.towns``: Nantong's own names) gets a small
grid of roads (east-west and north-south segments), residential communities between them and
a few landmarks (markets, parks, malls). Road names repeat across districts as in real cities
(人民路 is everywhere), so a road alone does not place a ticket; community names are unique.
The book becomes the registry's ``localities`` (what the hotline gazetteer reads), and the hotline
simulator draws its ticket places (:class:`Spot`) and address phrases from it.

>>> from simulators.geography import Geography
>>> from simulators.towns import build_towns
>>> book = AddressBook.build(Geography(), seed=7, towns=build_towns())
>>> len(book.towns), len(book.communities) > 800
(97, True)
>>> import random
>>> spot = book.spot(random.Random(1))
>>> spot.district == Geography().district_at(spot.lat, spot.lon)
True
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from citywatch.geo import haversine_m
from citywatch.registry import Locality
from citywatch.tiers import Town as RegistryTown
from simulators.geography import LAT_MAX, LAT_MIN, LON_MAX, LON_MIN, DistrictSpec, Geography
from simulators.seeds import py_rng

__all__ = ["AddressBook", "Community", "Landmark", "Road", "Spot", "Town"]


def _unique(chars: str) -> str:
    return "".join(dict.fromkeys(chars))


_COMMUNITY_CHARS: Final = _unique(
    "幸福阳光金桥永兴和平新华钟秀文峰虹城东南紫琅星湖方濠河芦泾观音海港青年"
    "锦绣翠竹桂花梧桐碧水春晖朝福润嘉禾盛世怡景丽都庭"
)
_COMMUNITY_SUFFIX: Final = ("小区", "花园", "新村", "家园", "公寓", "苑", "华府", "名都")
#: Common road names: these repeat across districts (a road alone is ambiguous).
_COMMON_ROADS: Final = (
    "人民路",
    "长江路",
    "青年路",
    "工农路",
    "世纪大道",
    "中山路",
    "建设路",
    "解放路",
    "和平路",
    "通江路",
)
_ROAD_CHARS: Final = _unique("通宁崇川跃龙园林濠西钟秀永和外环江海啬星湖益民北南虹桥城山姚港")
_ROAD_SUFFIX: Final = ("路", "路", "大道", "街")
_LANDMARK_KINDS: Final = ("菜市场", "农贸市场", "公园", "广场", "商场", "超市", "公交站")
_GATES: Final = ("东门", "南门", "西门", "北门", "正门")


@dataclass(frozen=True, slots=True)
class Town:
    name: str  # 和平桥街道
    short: str  # 和平桥
    district: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Road:
    name: str
    district: str
    town: str
    #: End points (lat, lon); roads are straight east-west or north-south segments.
    a: tuple[float, float]
    b: tuple[float, float]

    @property
    def east_west(self) -> bool:
        return abs(self.a[0] - self.b[0]) < 1e-9

    def nearest(self, lat: float, lon: float) -> tuple[float, float]:
        """The point of the road closest to (lat, lon)."""
        if self.east_west:
            lo, hi = sorted((self.a[1], self.b[1]))
            return self.a[0], min(max(lon, lo), hi)
        lo, hi = sorted((self.a[0], self.b[0]))
        return min(max(lat, lo), hi), self.a[1]


@dataclass(frozen=True, slots=True)
class Community:
    name: str
    district: str
    town: str
    lat: float
    lon: float
    weight: float


@dataclass(frozen=True, slots=True)
class Landmark:
    name: str
    district: str
    town: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Spot:
    """Where a problem is, and every way a caller may name it."""

    lat: float
    lon: float
    district: str
    town: Town
    community: Community
    road: Road
    cross: Road
    corner: tuple[float, float]  # where road and cross meet
    landmark: Landmark | None
    number: int
    building: int
    #: the problem is at (lat, lon) whatever place the caller names (next to a site, a station)
    anchored: bool = False

    def describe(self, style: int, rng: random.Random) -> str:
        """One way to name the spot (``style`` 0..9; see :data:`STYLES`)."""
        c, t, d = self.community.name, self.town, self.district
        s = style % len(STYLES)
        if s == 0:
            return f"{d}{t.name}{c}"
        if s == 1:
            return f"{c}{self.building}栋"
        if s == 2:
            return f"{self.road.name}与{self.cross.name}交叉口"
        if s == 3:
            return f"{c}{_GATES[self.building % len(_GATES)]}"
        if s == 4:
            return f"{self.road.name}{self.number}号"
        if s == 5:
            return f"{t.short}{self.road.name}{c}附近"
        if s == 6 and self.landmark is not None:
            return f"{self.landmark.name}{rng.choice(('旁边', '附近', '对面', '后面'))}"
        if s == 7:
            return f"{d}{self.road.name}{self.number}号"
        if s == 8:
            return f"{t.name}{self.road.name}和{self.cross.name}路口"
        return f"{c}{self.building}号楼{rng.randrange(1, 4)}单元"


#: The address styles of :meth:`Spot.describe`, for documentation and tests.
STYLES: Final = (
    "区+街道+小区",
    "小区+栋",
    "路与路交叉口",
    "小区+门",
    "路+号",
    "街道+路+小区附近",
    "地标+方位",
    "区+路+号",
    "街道+路口",
    "小区+号楼+单元",
)


class AddressBook:
    """All named places of the city, drawn once per seed (independent of the run's scale)."""

    def __init__(
        self,
        towns: list[Town],
        roads: list[Road],
        communities: list[Community],
        landmarks: list[Landmark],
        geo: Geography,
    ) -> None:
        self.towns, self.roads, self.communities, self.landmarks = (
            towns,
            roads,
            communities,
            landmarks,
        )
        self.geo = geo
        self._town = {t.name: t for t in towns}
        self._roads_of: dict[str, list[Road]] = {}
        for r in roads:
            self._roads_of.setdefault(f"{r.district}/{r.town}", []).append(r)
        self._landmarks_of: dict[str, list[Landmark]] = {}
        for lm in landmarks:
            self._landmarks_of.setdefault(f"{lm.district}/{lm.town}", []).append(lm)
        self._weights = [c.weight for c in communities]

    @classmethod
    def build(cls, geo: Geography, seed: int, towns: list[RegistryTown]) -> AddressBook:
        """Roads, communities and landmarks around each of the registry's ``towns``."""
        rng = py_rng(seed, "addresses")
        out_towns: list[Town] = []
        roads: list[Road] = []
        communities: list[Community] = []
        landmarks: list[Landmark] = []
        used_comm: set[str] = set()
        specs = {s.name: s for s in geo.specs}
        first: set[str] = set()
        for rt in towns:
            spec = specs.get(rt.district)
            if spec is None:
                continue
            main = rt.district not in first
            first.add(rt.district)
            town = Town(rt.name, _short(rt.name), rt.district, rt.lat, rt.lon)
            out_towns.append(town)
            lat, lon = rt.lat, rt.lon
            taken = {r.name for r in roads if r.district == spec.name}
            t_roads = _roads(rng, geo, spec, town, taken)
            roads += t_roads
            n_comm = 5 + round(spec.weight * 30) + (8 if main else 0)
            for _ in range(n_comm):
                for _ in range(20):
                    la = lat + rng.uniform(-0.0125, 0.0125)
                    lo = lon + rng.uniform(-0.0145, 0.0145)
                    if geo.district_at(la, lo) == spec.name:
                        break
                else:
                    la, lo = lat, lon
                cname = _fresh(rng, _COMMUNITY_CHARS, used_comm, 2, _COMMUNITY_SUFFIX)
                used_comm.add(cname)
                w = spec.weight * (3.0 if main else 1.0) * rng.uniform(0.5, 1.5)
                la, lo = _inside_box(la, lo)
                communities.append(
                    Community(cname, spec.name, rt.name, round(la, 6), round(lo, 6), w)
                )
            for kind in rng.sample(_LANDMARK_KINDS, 3):
                la = lat + rng.uniform(-0.008, 0.008)
                lo = lon + rng.uniform(-0.01, 0.01)
                if geo.district_at(la, lo) != spec.name:
                    la, lo = lat, lon
                base = (
                    town.short
                    if kind in ("菜市场", "农贸市场", "公交站")
                    else rng.choice(t_roads).name[:2]
                )
                name = f"{base}{kind}"
                if any(x.name == name for x in landmarks):
                    name = f"{town.short}{base}{kind}"
                la, lo = _inside_box(la, lo)
                landmarks.append(Landmark(name, spec.name, rt.name, round(la, 6), round(lo, 6)))
        return cls(out_towns, roads, communities, landmarks, geo)

    # -- for the registry --------------------------------------------------------------------

    def localities(self) -> list[Locality]:
        """Roads, communities and landmarks (the towns are the registry's own)."""
        out: list[Locality] = []
        for i, r in enumerate(self.roads):
            mid = ((r.a[0] + r.b[0]) / 2, (r.a[1] + r.b[1]) / 2)
            out.append(
                Locality(
                    id=f"RD{i + 1:05d}",
                    name=r.name,
                    kind="road",
                    lat=round(mid[0], 6),
                    lon=round(mid[1], 6),
                    district=r.district,
                    town=r.town,
                    line=((r.a[1], r.a[0]), (r.b[1], r.b[0])),
                )
            )
        for i, c in enumerate(self.communities):
            out.append(
                Locality(
                    id=f"CM{i + 1:05d}",
                    name=c.name,
                    kind="community",
                    lat=c.lat,
                    lon=c.lon,
                    district=c.district,
                    town=c.town,
                )
            )
        for i, lm in enumerate(self.landmarks):
            out.append(
                Locality(
                    id=f"LM{i + 1:05d}",
                    name=lm.name,
                    kind="landmark",
                    lat=lm.lat,
                    lon=lm.lon,
                    district=lm.district,
                    town=lm.town,
                )
            )
        return out

    # -- for tickets -------------------------------------------------------------------------

    def spot(
        self,
        rng: random.Random,
        *,
        district: str | None = None,
        near: tuple[float, float] | None = None,
    ) -> Spot:
        """A place where people live, weighted by population (in ``district`` or nearest to
        ``near`` if given)."""
        if near is not None:
            lat, lon = near
            cands = sorted(self.communities, key=lambda c: haversine_m(lat, lon, c.lat, c.lon))[:3]
            c = rng.choice(cands)
        elif district is not None:
            pool = [c for c in self.communities if c.district == district]
            c = rng.choices(pool, [x.weight for x in pool])[0]
        else:
            c = rng.choices(self.communities, self._weights)[0]
        return self.spot_at(rng, c)

    def spot_at(self, rng: random.Random, c: Community) -> Spot:
        town = self._town[c.town]
        roads = self._roads_of[f"{c.district}/{c.town}"]
        ew = [r for r in roads if r.east_west]
        ns = [r for r in roads if not r.east_west]
        road_ew = min(ew, key=lambda r: abs(r.a[0] - c.lat))
        road_ns = min(ns, key=lambda r: abs(r.a[1] - c.lon))
        road, cross = (road_ew, road_ns) if rng.random() < 0.5 else (road_ns, road_ew)
        corner = (road_ew.a[0], road_ns.a[1])
        lms = self._landmarks_of.get(f"{c.district}/{c.town}", [])
        near_lms = [lm for lm in lms if haversine_m(c.lat, c.lon, lm.lat, lm.lon) < 700.0]
        return Spot(
            lat=c.lat,
            lon=c.lon,
            district=c.district,
            town=town,
            community=c,
            road=road,
            cross=cross,
            corner=corner,
            landmark=rng.choice(near_lms) if near_lms else None,
            number=rng.randrange(1, 300),
            building=rng.randrange(1, 40),
        )

    def spot_far(self, rng: random.Random, spot: Spot, min_m: float, max_m: float) -> Spot:
        """Another spot between ``min_m`` and ``max_m`` away (any district)."""
        cands = [
            c
            for c in self.communities
            if min_m <= haversine_m(spot.lat, spot.lon, c.lat, c.lon) <= max_m
        ]
        if not cands:
            cands = [c for c in self.communities if c.town != spot.community.town]
        return self.spot_at(rng, rng.choice(cands))

    def point_of(self, spot: Spot, style: int) -> tuple[float, float]:
        """Where a caller using address ``style`` would be placed (the named thing)."""
        s = style % len(STYLES)
        if spot.anchored:
            return spot.lat, spot.lon
        if s in (2, 8):
            return spot.corner
        if s in (4, 7):
            return spot.road.nearest(spot.lat, spot.lon)
        if s == 6 and spot.landmark is not None:
            return spot.landmark.lat, spot.landmark.lon
        return spot.lat, spot.lon


def _inside_box(lat: float, lon: float) -> tuple[float, float]:
    """The point moved inside the region box (towns at its edge), 6 decimals."""
    m = 0.002
    return (
        round(min(max(lat, LAT_MIN + m), LAT_MAX - m), 6),
        round(min(max(lon, LON_MIN + m), LON_MAX - m), 6),
    )


def _short(town: str) -> str:
    """How people say a town: 和平桥街道 -> 和平桥, 狼山镇街道 -> 狼山, 西亭镇 -> 西亭."""
    for suffix in ("镇街道", "街道", "镇"):
        if town.endswith(suffix) and len(town) - len(suffix) >= 2:
            return town[: -len(suffix)]
    return town


def _fresh(
    rng: random.Random,
    chars: str,
    used: set[str],
    n: int,
    suffixes: tuple[str, ...] = ("",),
) -> str:
    for _ in range(200):
        name = "".join(rng.sample(chars, n)) + rng.choice(suffixes)
        if name not in used and name[:n] not in used:
            return name
    msg = "addresses: ran out of fresh names"
    raise RuntimeError(msg)


def _roads(
    rng: random.Random, geo: Geography, spec: DistrictSpec, town: Town, taken: set[str]
) -> list[Road]:
    """Five east-west and five north-south roads through the town (~650 m apart)."""
    out: list[Road] = []
    names: set[str] = set(taken)
    for ew in (True, False):
        for k in (-2, -1, 0, 1, 2):
            for _ in range(50):
                if rng.random() < 0.3:
                    name = rng.choice(_COMMON_ROADS)
                else:
                    name = "".join(rng.sample(_ROAD_CHARS, 2)) + rng.choice(_ROAD_SUFFIX)
                if name not in names:
                    break
            names.add(name)
            if ew:
                lat = round(town.lat + k * 0.006 + rng.uniform(-0.001, 0.001), 6)
                a, b = _inside_box(lat, town.lon - 0.016), _inside_box(lat, town.lon + 0.016)
            else:
                lon = round(town.lon + k * 0.007 + rng.uniform(-0.001, 0.001), 6)
                a, b = _inside_box(town.lat - 0.013, lon), _inside_box(town.lat + 0.013, lon)
            out.append(Road(name, spec.name, town.name, a, b))
    return out
