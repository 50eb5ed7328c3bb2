"""The city a run happens in: registry (what the flows load) plus the hidden attributes the
generators need (activity levels, schedules, workshops). Pure function of (seed, profile, scale).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from citywatch.geo import grid_id, haversine_m
from citywatch.registry import Place, Registry, Site, Station, Vehicle, Zone
from simulators.addresses import AddressBook
from simulators.geography import LAT_MAX, LAT_MIN, LON_MAX, LON_MIN, Geography, Roads
from simulators.labels import Workshop
from simulators.scenario import Profile
from simulators.seeds import derive, np_rng, py_rng
from simulators.towns import build_grids, build_towns

__all__ = ["City", "SiteInfo", "SpatialIndex", "build_city"]

UN_CARGO: Final = (
    ("1203", "汽油"),
    ("1202", "柴油"),
    ("1230", "甲醇"),
    ("1090", "丙酮"),
    ("1789", "盐酸"),
    ("1830", "硫酸"),
    ("1005", "液氨"),
    ("1017", "氯气"),
    ("1075", "液化石油气"),
    ("1294", "甲苯"),
)
ZONE_RADIUS_M: Final = {"school": 300.0, "hospital": 300.0, "residential": 250.0, "water": 500.0}
_PLATE_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_ZONE_SUFFIX: Final = {
    "school": ("小学", "中学", "实验学校", "幼儿园"),
    "hospital": ("人民医院", "中医院", "社区卫生服务中心"),
    "water": ("水厂取水口", "水源地保护区"),
}
_FUEL_BRANDS: Final = ("中石化", "中石油", "壳牌")
_TRADES: Final = ("化工", "新材料", "精细化工", "涂料", "医药化工")


class SpatialIndex:
    """Points bucketed in ~2 km cells, for "anything within d metres?" questions."""

    CELL: Final = 0.02

    def __init__(self) -> None:
        self._cells: dict[tuple[int, int], list[tuple[float, float, float]]] = defaultdict(list)

    def add(self, lat: float, lon: float, radius_m: float = 0.0) -> None:
        self._cells[(int(lat / self.CELL), int(lon / self.CELL))].append((lat, lon, radius_m))

    def near(self, lat: float, lon: float, distance_m: float) -> bool:
        """True if a point is within ``distance_m`` plus its own radius."""
        r, c = int(lat / self.CELL), int(lon / self.CELL)
        reach = 1 + int(distance_m / 2000.0)
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                for plat, plon, prad in self._cells.get((r + dr, c + dc), ()):
                    if haversine_m(lat, lon, plat, plon) < distance_m + prad:
                        return True
        return False


@dataclass(slots=True)
class SiteInfo:
    """Hidden per-site attributes: how it works when nobody breaks the rules."""

    id: str
    state: str  # active | dormant | suspended
    start_h: float
    end_h: float
    sat: bool
    sun: bool
    night_shift: bool
    idle_kw: float
    work_kw: float
    crew: float  # persons seen at full activity
    machines: float


@dataclass(slots=True)
class City:
    seed: int
    profile: Profile
    scale: float
    geo: Geography
    roads: Roads
    registry: Registry
    workshops: list[Workshop]
    station_ids: list[str]
    station_district: list[int]
    station_national: npt.NDArray[np.bool_]
    sites: list[SiteInfo]
    # cameras (vectorised): id, site index (-1 = street camera), activity scale
    camera_ids: list[str]
    camera_site: npt.NDArray[np.int64]
    camera_gate: npt.NDArray[np.bool_]
    camera_people: npt.NDArray[np.float64]
    camera_traffic: npt.NDArray[np.float64]
    # meters: id, site index (-1 = enterprise meter), base load, shift pattern
    meter_ids: list[str]
    meter_site: npt.NDArray[np.int64]
    meter_kw: npt.NDArray[np.float64]
    meter_pattern: npt.NDArray[np.int64]
    vehicle_ids: list[str]
    addresses: AddressBook
    places_by_cat: dict[str, list[Place]] = field(default_factory=dict)

    def site_index(self) -> dict[str, int]:
        return {s.id: i for i, s in enumerate(self.sites)}


def build_city(seed: int, profile: Profile, scale: float) -> City:
    geo = Geography()
    roads = Roads(geo, derive(seed, "roads"))
    rng = py_rng(seed, "city")
    towns = build_towns()
    reg = Registry(
        districts=list(geo.districts),
        towns={t.id: t for t in towns},
        grids=build_grids(towns),
        region=(LAT_MIN, LAT_MAX, LON_MIN, LON_MAX),
    )
    addresses = AddressBook.build(geo, seed, towns)
    reg.localities = {x.id: x for x in addresses.localities()}
    district_names = [d.name for d in geo.specs]
    taken = SpatialIndex()

    # sensitive zones first: everything else keeps its distance from them
    zones_idx = SpatialIndex()
    n_zones = profile.count("zones", scale, 12)
    cats = ["school", "hospital", "residential", "water"]
    for i in range(n_zones):
        cat = cats[i % 4] if i < 8 else rng.choices(cats, [0.4, 0.1, 0.4, 0.1])[0]
        lat, lon = geo.sample(rng, urban=0.2 if cat == "water" else 0.8)
        name = geo.community(rng)
        if cat != "residential":
            name = name[:2] + rng.choice(_ZONE_SUFFIX[cat])
        z = Zone(
            id=f"ZN{i + 1:05d}",
            name=name,
            lat=lat,
            lon=lon,
            category=cat,  # type: ignore[arg-type]
            radius_m=ZONE_RADIUS_M[cat],
            district=geo.district_at(lat, lon),
        )
        reg.zones[z.id] = z
        zones_idx.add(lat, lon, z.radius_m)

    def free_point(urban: float, zone_gap: float, place_gap: float) -> tuple[float, float]:
        for _ in range(60):
            lat, lon = geo.sample(rng, urban=urban)
            if not zones_idx.near(lat, lon, zone_gap) and not taken.near(lat, lon, place_gap):
                return lat, lon
        return lat, lon

    places_by_cat: dict[str, list[Place]] = {"enterprise": [], "depot": [], "fuel": []}
    specs = (
        ("depot", "DEP", profile.count("depots", scale, 3), 0.3),
        ("fuel", "FUEL", profile.count("fuel", scale, 4), 0.5),
        ("enterprise", "ENT", profile.count("enterprises", scale, 10), 0.35),
    )
    for cat, prefix, n, urban in specs:
        for i in range(n):
            lat, lon = free_point(urban, 700.0, 300.0)
            taken.add(lat, lon)
            town = geo.spec(geo.district_at(lat, lon)).town
            if cat == "depot":
                name = f"{town}危险货物运输停车场{i + 1}"
            elif cat == "fuel":
                name = f"{rng.choice(_FUEL_BRANDS)}{town}{geo.road(rng)}加油站"
            else:
                name = f"南通{geo.community(rng)[:2]}{rng.choice(_TRADES)}有限公司"
            p = Place(
                id=f"{prefix}{i + 1:05d}",
                name=name,
                lat=lat,
                lon=lon,
                category=cat,  # type: ignore[arg-type]
                radius_m={"depot": 200.0, "fuel": 100.0, "enterprise": 250.0}[cat],
                district=geo.district_at(lat, lon),
            )
            reg.places[p.id] = p
            places_by_cat[cat].append(p)

    # hidden truth: unregistered workshops, away from registered places and zones
    workshops = []
    for i in range(profile.count("workshops", scale, 6)):
        lat, lon = free_point(0.15, 900.0, 1500.0)
        taken.add(lat, lon)
        workshops.append(
            Workshop(id=f"WK{i + 1:04d}", lat=lat, lon=lon, district=geo.district_at(lat, lon))
        )

    # stations: a few national ones in the town centres, micro sensors spread with people
    n_st = profile.count("stations", scale, 12)
    n_nat = max(2, n_st // 100)
    station_ids, station_district, national = [], [], []
    for i in range(n_st):
        is_nat = i < n_nat
        if is_nat:
            spec = geo.specs[i % len(geo.specs)]
            lat, lon = geo.sample(rng, urban=1.0, district=spec.name)
        else:
            lat, lon = geo.sample(rng, urban=0.7)
        d = geo.district_at(lat, lon)
        sid = f"ST{i + 1:05d}"
        reg.stations[sid] = Station(
            id=sid,
            lat=lat,
            lon=lon,
            district=d,
            grid=grid_id(lat, lon),
            kind="national" if is_nat else "micro",
        )
        station_ids.append(sid)
        station_district.append(district_names.index(d))
        national.append(is_nat)

    # vehicles, each based at a depot
    vehicle_ids = []
    for i in range(profile.count("vehicles", scale, 12)):
        vid = f"HV{i + 1:05d}"
        depot = places_by_cat["depot"][i % len(places_by_cat["depot"])]
        un = rng.choice(UN_CARGO)[0]
        plate = f"苏F{rng.choice(_PLATE_LETTERS)}{rng.randrange(10000, 99999)}"
        reg.vehicles[vid] = Vehicle(id=vid, plate=plate, un=un, depot=depot.id)
        vehicle_ids.append(vid)

    # work sites with cameras (the first one watches the gate) and a meter
    sites: list[SiteInfo] = []
    n_sites = profile.count("sites", scale, 20)
    n_cam_total = profile.count("cameras", scale, 60)
    n_meter_total = profile.count("meters", scale, 40)
    cam_ids: list[str] = []
    cam_site: list[int] = []
    cam_gate: list[bool] = []
    meter_ids: list[str] = []
    meter_site: list[int] = []
    n_susp = max(3, round(n_sites * profile.suspended_share))
    for i in range(n_sites):
        lat, lon = geo.sample(rng, urban=0.55)
        sid = f"SITE{i + 1:05d}"
        state = (
            "suspended"
            if i % max(1, n_sites // n_susp) == 0 and (i // max(1, n_sites // n_susp)) < n_susp
            else rng.choices(["active", "dormant"], [0.72, 0.28])[0]
        )
        cams = []
        n_cams = rng.choice((1, 2, 2, 3))
        for k in range(n_cams):
            cid = f"CAM{len(cam_ids) + 1:06d}"
            cam_ids.append(cid)
            cam_site.append(i)
            cam_gate.append(k == 0 and n_cams > 1)  # a lone camera overlooks the site
            cams.append(cid)
        mid = f"MTR{len(meter_ids) + 1:06d}"
        meter_ids.append(mid)
        meter_site.append(i)
        idle = round(rng.uniform(3.0, 15.0), 1)
        info = SiteInfo(
            id=sid,
            state=state,
            start_h=rng.uniform(6.5, 8.0),
            end_h=rng.uniform(17.0, 19.0),
            sat=rng.random() < 0.5,
            sun=rng.random() < 0.15,
            night_shift=state == "active" and rng.random() < 0.04,
            idle_kw=idle,
            work_kw=rng.uniform(40.0, 250.0),
            crew=rng.uniform(6.0, 30.0),
            machines=rng.uniform(1.0, 3.0),
        )
        sites.append(info)
        reg.sites[sid] = Site(
            id=sid,
            name=f"{geo.community(rng)}{rng.choice(['二期', '三期', '安置房', '改造'])}工程",
            lat=lat,
            lon=lon,
            district=geo.district_at(lat, lon),
            grid=grid_id(lat, lon),
            cameras=tuple(cams),
            meters=(mid,),
            idle_kw=idle,
        )

    nrng = np_rng(seed, "city-arrays")
    n_street = max(0, n_cam_total - len(cam_ids))
    for _ in range(n_street):
        cam_ids.append(f"CAM{len(cam_ids) + 1:06d}")
        cam_site.append(-1)
        cam_gate.append(False)
    n_ent_meters = max(0, n_meter_total - len(meter_ids))
    for _ in range(n_ent_meters):
        meter_ids.append(f"MTR{len(meter_ids) + 1:06d}")
        meter_site.append(-1)
    people = nrng.lognormal(math.log(8.0), 0.8, len(cam_ids))
    traffic = nrng.lognormal(math.log(6.0), 0.9, len(cam_ids))
    meter_kw = nrng.lognormal(math.log(120.0), 1.0, len(meter_ids))
    pattern = nrng.choice(3, size=len(meter_ids), p=[0.3, 0.5, 0.2])
    return City(
        seed=seed,
        profile=profile,
        scale=scale,
        geo=geo,
        roads=roads,
        registry=reg,
        workshops=workshops,
        station_ids=station_ids,
        station_district=station_district,
        station_national=np.array(national, dtype=bool),
        sites=sites,
        camera_ids=cam_ids,
        camera_site=np.array(cam_site, dtype=np.int64),
        camera_gate=np.array(cam_gate, dtype=bool),
        camera_people=people,
        camera_traffic=traffic,
        meter_ids=meter_ids,
        meter_site=np.array(meter_site, dtype=np.int64),
        meter_kw=meter_kw,
        meter_pattern=pattern.astype(np.int64),
        vehicle_ids=vehicle_ids,
        addresses=addresses,
        places_by_cat=places_by_cat,
    )
