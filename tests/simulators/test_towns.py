"""The simulated towns and grids: Nantong-scale counts, outlines that tile each district."""

from __future__ import annotations

from citywatch.tiers import Locator
from simulators.geography import DISTRICTS
from simulators.towns import TOWN_NAMES, build_grids, build_towns


def test_about_96_towns_and_14000_grids_in_every_district() -> None:
    towns = build_towns()
    grids = build_grids(towns)
    assert 90 <= len(towns) <= 100
    assert 13_000 <= len(grids) <= 15_000
    assert {t.district for t in towns} == {d.name for d in DISTRICTS}
    assert len({t.id for t in towns}) == len(towns)
    assert sum(len(v) for v in TOWN_NAMES.values()) == len(towns)
    per_town: dict[str, int] = {}
    for g in grids.values():
        per_town[g.town] = per_town.get(g.town, 0) + 1
    assert set(per_town) == {t.id for t in towns}  # every town has grids


def test_town_outlines_agree_with_the_grids_towns() -> None:
    towns = build_towns()
    grids = build_grids(towns)
    loc = Locator([(d.name, (d.ring,)) for d in DISTRICTS], {t.id: t for t in towns}, {})
    checked = 0
    for g in list(grids.values())[::11]:
        where = loc.locate(g.lat, g.lon)
        if where.district == g.district:
            assert where.town == g.town, g
            checked += 1
    assert checked > 1000


def test_the_simulated_registry_carries_the_tiers() -> None:
    from simulators import simulate

    reg = simulate("hotline", seed=3).registry
    assert len(reg.towns) == len(build_towns())
    loc = reg.locator()
    where = loc.locate(32.02, 120.87)
    assert where.district == "崇川区"
    assert where.town is not None
    assert reg.towns[where.town].district == "崇川区"
    assert where.grid == "G0035-0057"
