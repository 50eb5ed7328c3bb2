"""Three-tier command: locating points in towns and grids, centres, escalation, rule tiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from citywatch.registry import District, Registry
from citywatch.tiers import (
    DEFAULT_RULE_TIERS,
    Grid,
    Location,
    Tier,
    Town,
    centre_id,
    centre_tier,
    escalation_chain,
    tier_for_rule,
)

SQUARE = ((120.0, 31.0), (121.0, 31.0), (121.0, 32.0), (120.0, 32.0), (120.0, 31.0))
WEST = ((120.0, 31.0), (120.5, 31.0), (120.5, 32.0), (120.0, 32.0), (120.0, 31.0))


def registry(*, rings: bool) -> Registry:
    towns = {
        "TW": Town(id="TW", name="西镇", district="D", lat=31.5, lon=120.25,
                   rings=(WEST,) if rings else ()),
        "TE": Town(id="TE", name="东镇", district="D", lat=31.5, lon=120.75),
    }  # fmt: skip
    return Registry(
        districts=[District(name="D", code="1", rings=(SQUARE,))],
        towns=towns,
        grids={"G0001-0001": Grid(id="G0001-0001", town="TE", district="D", lat=1, lon=1)},
    )


def test_a_point_gets_district_and_town_by_outline_or_nearest_centre() -> None:
    for reg in (registry(rings=True), registry(rings=False)):
        loc = reg.locator()
        assert loc.locate(31.5, 120.1) == Location("D", "TW", None)
        assert loc.locate(31.5, 120.9) == Location("D", "TE", None)
        assert loc.locate(40.0, 100.0) == Location(None, None, None)


def test_a_registered_lattice_grid_decides_the_town() -> None:
    from citywatch.geo import GRID_DEG

    reg = registry(rings=True)
    reg.grids = {"G0001-0002": Grid(id="G0001-0002", town="TE", district="D", lat=0.0, lon=0.0)}
    lat = 31.6 + 1.5 * GRID_DEG
    lon = 120.2 + 2.5 * GRID_DEG  # in the west town's outline, but the grid says TE
    assert reg.locate(lat, lon) == Location("D", "TE", "G0001-0002")


def test_grids_with_outlines_are_found_by_polygon() -> None:
    cell = ((120.30, 31.30), (120.31, 31.30), (120.31, 31.31), (120.30, 31.31), (120.30, 31.30))
    reg = registry(rings=True)
    reg.grids = {"g-a": Grid(id="g-a", town="TW", district="D", lat=31.305, lon=120.305,
                             rings=(cell,))}  # fmt: skip
    loc = reg.locator()
    assert loc.locate(31.305, 120.305) == Location("D", "TW", "g-a")
    assert loc.locate(31.5, 120.9) == Location("D", "TE", None)


def test_towns_and_grids_round_trip_through_both_registry_forms(tmp_path: Path) -> None:
    reg = registry(rings=True)
    reg.dump(tmp_path / "dir")
    reg.dump_file(tmp_path / "one.jsonl")
    for again in (Registry.load(tmp_path / "dir"), Registry.load(tmp_path / "one.jsonl")):
        assert again.towns == reg.towns
        assert again.grids == reg.grids


def test_centres_and_escalation() -> None:
    assert centre_id(Tier.TOWN, district="D", town="TW") == "town:TW"
    assert centre_id(Tier.TOWN, district="D") == "county:D"  # no town known: one tier up
    assert centre_id(Tier.COUNTY) == "city"
    assert centre_tier("county:D") is Tier.COUNTY
    assert centre_tier("city") is Tier.CITY
    assert escalation_chain("town:TW", district="D") == ["town:TW", "county:D", "city"]
    assert escalation_chain("county:D", district="D") == ["county:D", "city"]
    assert escalation_chain("city", district=None) == ["city"]


@pytest.mark.parametrize(
    ("rule", "tier"),
    [
        ("hotline.duplicate", Tier.TOWN),
        ("worksite.resumption", Tier.TOWN),
        ("vehicle.dwell", Tier.COUNTY),
        ("air.spike", Tier.COUNTY),
        ("air.episode", Tier.CITY),
        ("incident.correlated", Tier.CITY),
        ("something.new", Tier.CITY),
    ],
)
def test_rule_tiers(rule: str, tier: Tier) -> None:
    assert tier_for_rule(rule, DEFAULT_RULE_TIERS) is tier
