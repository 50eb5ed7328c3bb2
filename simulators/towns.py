"""The simulated towns (镇/街道) and grids (网格) of Nantong: the two lower command tiers.

Town names are Nantong's own streets and towns, grouped under the simulated districts
(roughly where they are; the outlines are **simulated**: Voronoi cells of a fixed point per
town, clipped to the district's simulated outline, not the official boundaries, which are
not published in a form we can ship). Grids are the cells of the city lattice
(:func:`citywatch.geo.grid_id`, about 1.2 km): 13,870 over the region box, each in the town
whose point is nearest within its district, as the platform's ~14,000 grids are.

>>> towns = build_towns()
>>> len(towns), towns[0].name, towns[0].district
(97, '城东街道', '崇川区')
>>> grids = build_grids(towns)
>>> len(grids), grids["G0034-0059"].district, towns_by_id(towns)[grids["G0034-0059"].town].name
(13870, '崇川区', '城东街道')
"""

from __future__ import annotations

import math
import random
import zlib
from typing import Final

from citywatch.geo import GRID_DEG, point_in_polygon
from citywatch.tiers import Grid, Town
from simulators.geography import DISTRICTS, LAT_MAX, LAT_MIN, LON_MAX, LON_MIN, DistrictSpec

__all__ = ["TOWN_NAMES", "build_grids", "build_towns", "towns_by_id"]

#: District -> its towns and streets; the first is the district's main town (its centre).
TOWN_NAMES: Final[dict[str, tuple[str, ...]]] = {
    "崇川区": (
        "城东街道", "和平桥街道", "任港街道", "新城桥街道", "虹桥街道", "学田街道", "钟秀街道",
        "文峰街道", "观音山街道", "狼山镇街道", "幸福街道", "陈桥街道", "秦灶街道", "永兴街道",
        "唐闸镇街道",
    ),
    "通州区": (
        "金沙街道", "金新街道", "兴东街道", "西亭镇", "二甲镇", "东社镇", "十总镇", "石港镇",
        "刘桥镇", "平潮镇", "五接镇", "川姜镇",
    ),
    "海门区": (
        "海门街道", "三厂街道", "滨江街道", "三星镇", "常乐镇", "悦来镇", "四甲镇", "余东镇",
        "正余镇", "包场镇", "临江镇",
    ),
    "如皋市": (
        "如城街道", "城南街道", "城北街道", "东陈镇", "丁堰镇", "白蒲镇", "下原镇", "九华镇",
        "石庄镇", "长江镇", "吴窑镇", "江安镇", "搬经镇", "磨头镇",
    ),
    "海安市": (
        "海安街道", "城东镇", "孙庄街道", "曲塘镇", "李堡镇", "角斜镇", "大公镇", "雅周镇",
        "白甸镇", "南莫镇", "墩头镇",
    ),
    "启东市": (
        "汇龙镇", "南阳镇", "北新镇", "王鲍镇", "合作镇", "海复镇", "近海镇", "寅阳镇",
        "惠萍镇", "东海镇", "吕四港镇",
    ),
    "如东县": (
        "掘港街道", "城中街道", "苴镇街道", "大豫镇", "曹埠镇", "岔河镇", "双甸镇", "新店镇",
        "河口镇", "袁庄镇", "马塘镇", "丰利镇", "栟茶镇", "洋口镇",
    ),
    "开发区": ("竹行街道", "小海街道", "中兴街道", "新开街道"),
    "苏锡通园区": ("江海街道", "兴仁镇", "张芝山镇"),
    "通州湾示范区": ("三余镇", "海晏镇"),
}  # fmt: skip


def _points(spec: DistrictSpec, n: int) -> list[tuple[float, float]]:
    """``n`` fixed points (lat, lon) in the district, the first its centre, spread apart."""
    rng = random.Random(zlib.crc32(f"towns:{spec.code}".encode()))
    lons = [p[0] for p in spec.ring]
    lats = [p[1] for p in spec.ring]
    ring = list(spec.ring)
    pts = [spec.center]
    area_deg2 = (max(lats) - min(lats)) * (max(lons) - min(lons))
    min_sep = 0.6 * math.sqrt(area_deg2 / n)
    tries = 0
    while len(pts) < n:
        tries += 1
        lat = rng.uniform(min(lats), max(lats))
        lon = rng.uniform(min(lons), max(lons))
        if not point_in_polygon(lat, lon, ring):
            continue
        sep = min_sep if tries < 5000 else min_sep / 3
        if all(math.hypot(lat - a, (lon - b) * 0.85) >= sep for a, b in pts):
            pts.append((round(lat, 5), round(lon, 5)))
    return pts


def _clip(
    poly: list[tuple[float, float]], a: tuple[float, float], b: tuple[float, float]
) -> list[tuple[float, float]]:
    """The part of ``poly`` (lon, lat) nearer to seed ``a`` than to ``b`` (both lat, lon)."""
    k = 0.85  # ~cos(32°): distances in lon shrink
    ax, ay, bx, by = a[1] * k, a[0], b[1] * k, b[0]
    mx, my, dx, dy = (ax + bx) / 2, (ay + by) / 2, bx - ax, by - ay

    def side(p: tuple[float, float]) -> float:
        return (p[0] * k - mx) * dx + (p[1] - my) * dy

    out: list[tuple[float, float]] = []
    for i, p in enumerate(poly):
        q = poly[(i + 1) % len(poly)]
        sp, sq = side(p), side(q)
        if sp <= 0:
            out.append(p)
        if (sp <= 0) != (sq <= 0):
            t = sp / (sp - sq)
            out.append((round(p[0] + t * (q[0] - p[0]), 6), round(p[1] + t * (q[1] - p[1]), 6)))
    return out


def build_towns() -> list[Town]:
    """Every town, district by district (ids ``T<district code><nn>``), with its outline."""
    towns: list[Town] = []
    for spec in DISTRICTS:
        names = TOWN_NAMES[spec.name]
        pts = _points(spec, len(names))
        base = list(spec.ring[:-1])
        for i, (name, p) in enumerate(zip(names, pts, strict=True)):
            cell = base
            for j, q in enumerate(pts):
                if j != i and cell:
                    cell = _clip(cell, p, q)
            ring = (*cell, cell[0]) if cell else ()
            towns.append(
                Town(
                    id=f"T{spec.code}{i + 1:02d}",
                    name=name,
                    district=spec.name,
                    lat=p[0],
                    lon=p[1],
                    rings=(tuple(ring),) if ring else (),
                )
            )
    return towns


def towns_by_id(towns: list[Town]) -> dict[str, Town]:
    return {t.id: t for t in towns}


def build_grids(towns: list[Town]) -> dict[str, Grid]:
    """Every lattice cell of the region box, in its district and nearest town."""
    by_district: dict[str, list[Town]] = {}
    for t in towns:
        by_district.setdefault(t.district, []).append(t)
    rings = [(d.name, list(d.ring), d.center) for d in DISTRICTS]
    rows = math.ceil((LAT_MAX - LAT_MIN) / GRID_DEG)
    cols = math.ceil((LON_MAX - LON_MIN) / GRID_DEG)
    grids: dict[str, Grid] = {}
    for r in range(rows):
        lat = round(LAT_MIN + (r + 0.5) * GRID_DEG, 6)
        for c in range(cols):
            lon = round(LON_MIN + (c + 0.5) * GRID_DEG, 6)
            district = next((n for n, ring, _ in rings if point_in_polygon(lat, lon, ring)), None)
            if district is None:  # on an outline's edge: the nearest district centre
                district = min(rings, key=lambda x: math.hypot(lat - x[2][0], lon - x[2][1]))[0]
            town = min(
                by_district[district],
                key=lambda t: (lat - t.lat) ** 2 + ((lon - t.lon) * 0.85) ** 2,
            )
            gid = f"G{r:04d}-{c:04d}"
            grids[gid] = Grid(id=gid, town=town.id, district=district, lat=lat, lon=lon)
    return grids
