"""The simulated Nantong: ten district outlines tiling the region box, where people and
things are, place names, and a road grid for vehicle routes.

The outlines are simple polygons that tile the region box (lat 31.6-32.7, lon 120.2-121.9)
in roughly the real arrangement: 海安 and 如东 in the north, 如皋 in the west, the city core
(崇川, 开发区, 通州) in the middle, 海门 and 启东 to the east, the riverside 苏锡通园区 in the south
and the coastal 通州湾 between 通州 and 如东.

>>> city = Geography()
>>> city.district_at(32.02, 120.87)
'崇川区'
>>> sorted(d.name for d in city.districts)[:3]
['启东市', '如东县', '如皋市']
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Final

from citywatch.geo import haversine_m, point_in_polygon
from citywatch.registry import District

__all__ = ["DISTRICTS", "Geography", "Roads"]

LAT_MIN: Final = 31.6
LAT_MAX: Final = 32.7
LON_MIN: Final = 120.2
LON_MAX: Final = 121.9


@dataclass(frozen=True, slots=True)
class DistrictSpec:
    name: str
    code: str
    ring: tuple[tuple[float, float], ...]  # (lon, lat), closed
    center: tuple[float, float]  # (lat, lon) of the main town
    weight: float  # share of population and activity
    town: str  # short name used in place names


def _rect(lon0: float, lat0: float, lon1: float, lat1: float) -> tuple[tuple[float, float], ...]:
    return ((lon0, lat0), (lon1, lat0), (lon1, lat1), (lon0, lat1), (lon0, lat0))


DISTRICTS: Final[tuple[DistrictSpec, ...]] = (
    DistrictSpec(
        "崇川区", "320602", _rect(120.75, 31.95, 120.98, 32.1), (32.02, 120.87), 0.22, "崇川"
    ),
    DistrictSpec(
        "通州区",
        "320612",
        (
            (120.75, 32.1),
            (120.98, 32.1),
            (120.98, 31.95),
            (121.2, 31.95),
            (121.2, 32.3),
            (120.75, 32.3),
            (120.75, 32.1),
        ),
        (32.07, 121.07),
        0.12,
        "金沙",
    ),
    DistrictSpec(
        "海门区", "320614", _rect(121.2, 31.8, 121.55, 32.1), (31.9, 121.2 + 0.15), 0.11, "海门"
    ),
    DistrictSpec(
        "如皋市", "320682", _rect(120.2, 31.95, 120.75, 32.3), (32.2, 120.56), 0.11, "如城"
    ),
    DistrictSpec(
        "海安市", "320685", _rect(120.2, 32.3, 120.65, 32.7), (32.54, 120.45), 0.08, "海安"
    ),
    DistrictSpec(
        "启东市", "320681", _rect(121.55, 31.6, 121.9, 32.1), (31.81, 121.66), 0.09, "汇龙"
    ),
    DistrictSpec("如东县", "320623", _rect(120.65, 32.3, 121.9, 32.7), (32.4, 121.1), 0.08, "掘港"),
    DistrictSpec(
        "开发区", "320671", _rect(120.9, 31.8, 121.2, 31.95), (31.9, 121.02), 0.08, "竹行"
    ),
    DistrictSpec(
        "苏锡通园区",
        "320691",
        (
            (120.2, 31.6),
            (121.55, 31.6),
            (121.55, 31.8),
            (120.9, 31.8),
            (120.9, 31.95),
            (120.2, 31.95),
            (120.2, 31.6),
        ),
        (31.85, 120.8),
        0.05,
        "江海",
    ),
    DistrictSpec(
        "通州湾示范区", "320693", _rect(121.2, 32.1, 121.9, 32.3), (32.2, 121.45), 0.06, "三余"
    ),
)

_SURNAME_CHARS: Final = (
    "幸福阳光金桥永兴和平新华钟秀文峰虹桥城东城南紫琅星湖东方濠河芦泾观音海港青年"
)
_COMMUNITY_SUFFIX: Final = ("小区", "花园", "新村", "家园", "公寓", "苑", "华府", "名都")
_ROAD_SUFFIX: Final = ("路", "大道", "街")
_ROAD_CHARS: Final = "人民工农青年通宁长江世纪崇川跃龙园林濠西钟秀永和外环江海啬园星湖益民"


class Geography:
    """District polygons, point sampling weighted by population, place names."""

    def __init__(self) -> None:
        self.specs = DISTRICTS
        self.districts = [District(name=d.name, code=d.code, rings=(d.ring,)) for d in DISTRICTS]
        self._weights = [d.weight for d in DISTRICTS]
        self._centres = [
            (d.center[0], d.center[1], 10.0 if d.weight >= 0.12 else 6.0) for d in DISTRICTS
        ]

    def district_at(self, lat: float, lon: float) -> str:
        """Name of the district holding the point (the nearest centre if on an edge)."""
        for d in self.specs:
            if point_in_polygon(lat, lon, list(d.ring)):
                return d.name
        best = min(self.specs, key=lambda d: haversine_m(lat, lon, *d.center))
        return best.name

    def spec(self, name: str) -> DistrictSpec:
        for d in self.specs:
            if d.name == name:
                return d
        msg = f"district: unknown {name!r}"
        raise KeyError(msg)

    def sample(
        self, rng: random.Random, *, urban: float = 0.65, district: str | None = None
    ) -> tuple[float, float]:
        """A random point: with probability ``urban`` near a town centre, else anywhere."""
        d = self.spec(district) if district else rng.choices(self.specs, self._weights)[0]
        lons = [p[0] for p in d.ring]
        lats = [p[1] for p in d.ring]
        for _ in range(200):
            if rng.random() < urban:
                lat = rng.gauss(d.center[0], 0.035)
                lon = rng.gauss(d.center[1], 0.045)
            else:
                lat = rng.uniform(min(lats), max(lats))
                lon = rng.uniform(min(lons), max(lons))
            lat = min(max(lat, LAT_MIN + 0.002), LAT_MAX - 0.002)
            lon = min(max(lon, LON_MIN + 0.002), LON_MAX - 0.002)
            if point_in_polygon(lat, lon, list(d.ring)):
                return round(lat, 6), round(lon, 6)
        return d.center

    def urbanness(self, lat: float, lon: float) -> float:
        """1 at a town centre falling to 0 about 8 km out (city core counts double)."""
        best = 0.0
        kx = 111.32 * math.cos(math.radians(lat))
        for clat, clon, scale in self._centres:
            dy, dx = (lat - clat) * 111.32, (lon - clon) * kx
            best = max(best, math.exp(-(dx * dx + dy * dy) / (scale * scale)))
        return best

    @staticmethod
    def community(rng: random.Random) -> str:
        a, b = rng.sample(_SURNAME_CHARS, 2)
        return f"{a}{b}{rng.choice(_COMMUNITY_SUFFIX)}"

    @staticmethod
    def road(rng: random.Random) -> str:
        a, b = rng.sample(_ROAD_CHARS, 2)
        return f"{a}{b}{rng.choice(_ROAD_SUFFIX)}"


class Roads:
    """A road grid: north-south roads at fixed longitudes, east-west roads at fixed latitudes,
    dense in the city core and the town centres, sparse in the countryside.

    Routes follow the grid (an access leg, then along roads with right-angle turns), which
    gives vehicles straight runs, turns and intersections with traffic lights.
    """

    def __init__(self, geo: Geography, seed: int) -> None:
        rng = random.Random(seed)
        self.geo = geo
        self.lons = self._lines(rng, LON_MIN, LON_MAX, [d.center[1] for d in geo.specs], 0.045)
        self.lats = self._lines(rng, LAT_MIN, LAT_MAX, [d.center[0] for d in geo.specs], 0.035)

    @staticmethod
    def _lines(
        rng: random.Random, lo: float, hi: float, centres: list[float], spread: float
    ) -> list[float]:
        out: list[float] = []
        x = lo + 0.005
        while x < hi - 0.005:
            out.append(round(x, 5))
            near = min(abs(x - c) for c in centres)
            step = 0.012 if near < spread else 0.035
            x += step * rng.uniform(0.7, 1.3)
        return out

    def nearest_lon(self, lon: float) -> float:
        return _nearest(self.lons, lon)

    def nearest_lat(self, lat: float) -> float:
        return _nearest(self.lats, lat)

    def route(
        self, a: tuple[float, float], b: tuple[float, float], rng: random.Random
    ) -> list[tuple[float, float]]:
        """Waypoints (lat, lon) from ``a`` to ``b`` along the grid."""
        ya = self.nearest_lat(a[0])
        yb = self.nearest_lat(b[0])
        if rng.random() < 0.5:
            xm = self.nearest_lon(b[1])
        else:
            xm = self.nearest_lon(a[1] + (b[1] - a[1]) * rng.uniform(0.2, 0.8))
        pts = [a, (ya, a[1]), (ya, xm), (yb, xm), (yb, b[1]), b]
        out: list[tuple[float, float]] = []
        for p in pts:
            if not out or haversine_m(*out[-1], *p) > 1.0:
                out.append(p)
        if len(out) == 1:
            out.append(b)
        return out

    def crossings(self, p: tuple[float, float], q: tuple[float, float]) -> list[float]:
        """Fractions along the straight leg p->q where it crosses another road."""
        if abs(p[0] - q[0]) < 1e-9:  # east-west leg crosses north-south roads
            lo, hi, lines, a, b = min(p[1], q[1]), max(p[1], q[1]), self.lons, p[1], q[1]
        elif abs(p[1] - q[1]) < 1e-9:
            lo, hi, lines, a, b = min(p[0], q[0]), max(p[0], q[0]), self.lats, p[0], q[0]
        else:
            return []
        i = bisect.bisect_right(lines, lo)
        j = bisect.bisect_left(lines, hi)
        return [(x - a) / (b - a) for x in lines[i:j]] if b != a else []


def _nearest(xs: list[float], x: float) -> float:
    i = bisect.bisect_left(xs, x)
    cands = xs[max(0, i - 1) : i + 1]
    return min(cands, key=lambda v: abs(v - x))
