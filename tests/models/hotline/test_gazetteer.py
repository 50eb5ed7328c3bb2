from __future__ import annotations

import random

import pytest

from citywatch.geo import haversine_m
from models.hotline.gazetteer import Gazetteer
from simulators import simulate
from simulators.addresses import STYLES


@pytest.fixture(scope="module")
def city():  # type: ignore[no-untyped-def]
    sim = simulate("hotline", seed=3, duration_s=3600)
    return sim.city, Gazetteer.from_registry(sim.registry)


def test_every_address_style_is_placed_in_its_district(city) -> None:  # type: ignore[no-untyped-def]
    c, gz = city
    rng = random.Random(5)
    ok = n = 0
    for _ in range(300):
        spot = c.addresses.spot(rng)
        for style in range(len(STYLES)):
            text = spot.describe(style, rng)
            p = gz.place(text)
            n += 1
            ok += p.district == spot.district
    # styles naming only a road number can be ambiguous (roads repeat across districts)
    assert ok / n >= 0.95


def test_point_placements_are_close_and_confident(city) -> None:  # type: ignore[no-untyped-def]
    c, gz = city
    rng = random.Random(6)
    for _ in range(100):
        spot = c.addresses.spot(rng)
        p = gz.place(f"{spot.district}{spot.town.name}{spot.community.name}{spot.building}栋")
        assert p.kind == "community"
        assert p.confidence >= 0.9
        assert p.precision_m <= 200
        assert p.lat is not None
        assert p.lon is not None
        assert haversine_m(p.lat, p.lon, spot.lat, spot.lon) < 1.0
        assert p.grid is not None
        assert p.town == spot.town.name


def test_two_roads_meet_at_their_corner(city) -> None:  # type: ignore[no-untyped-def]
    c, gz = city
    rng = random.Random(7)
    for _ in range(50):
        spot = c.addresses.spot(rng)
        p = gz.place(f"{spot.district}{spot.road.name}与{spot.cross.name}交叉口")
        assert p.kind == "corner"
        assert p.lat is not None
        assert p.lon is not None
        assert haversine_m(p.lat, p.lon, *spot.corner) < 50.0


def test_an_ambiguous_road_says_so_and_context_resolves_it(city) -> None:  # type: ignore[no-untyped-def]
    _, gz = city
    reg_roads = [e for e in gz._by_name.get("人民路", ()) if e.kind == "road"]
    districts = {e.district for e in reg_roads}
    if len(districts) < 2:
        pytest.skip("this seed's city has one 人民路 only")
    alone = gz.place("人民路88号门口")
    assert alone.confidence <= 0.5
    d = sorted(districts)[1]
    assert gz.place(f"{d}人民路88号").district == d


def test_unknown_places_are_not_placed(city) -> None:  # type: ignore[no-untyped-def]
    _, gz = city
    for text in ("我家楼下", "老街那边", "", "单位附近有人烧垃圾"):
        p = gz.place(text)
        assert not p.placed
        assert p.confidence == 0.0
        assert p.district is None


def test_traditional_characters_are_placed_too(city) -> None:  # type: ignore[no-untyped-def]
    c, gz = city
    import opencc

    conv = opencc.OpenCC("s2t")
    spot = c.addresses.spot(random.Random(8))
    simp = f"{spot.district}{spot.community.name}东门"
    assert gz.place(conv.convert(simp)).district == gz.place(simp).district == spot.district


def test_registry_sites_and_zones_are_landmarks(city) -> None:  # type: ignore[no-untyped-def]
    c, gz = city
    site = next(iter(c.registry.sites.values()))
    p = gz.place(f"{site.name}半夜还在施工")
    assert p.placed
    assert p.kind == "site"
    assert p.district == site.district
