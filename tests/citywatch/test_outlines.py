"""The operator's outline files: good ones (one file or one per level), GCJ-02 converted to
WGS-84 against published points, and bad ones refused with one line naming the problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from citywatch.errors import SchemaError
from citywatch.outlines import gcj02_to_wgs84, load_outlines, wgs84_to_gcj02

#: (WGS-84 lat, lon, GCJ-02 lat, lon): the reference points other implementations test with.
KNOWN = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), KNOWN)
def test_gcj02_conversion_matches_known_points(
    wlat: float, wlon: float, glat: float, glon: float
) -> None:
    assert wgs84_to_gcj02(wlon, wlat) == pytest.approx((glon, glat), abs=1e-9)
    assert gcj02_to_wgs84(glon, glat) == pytest.approx((wlon, wlat), abs=1e-8)  # ~1 mm
    assert gcj02_to_wgs84(0.5, 51.5) == (0.5, 51.5)  # outside China: no offset


def _square(lon: float, lat: float, d: float = 0.1) -> list[list[list[float]]]:
    return [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]


def _feature(level: str | None, geometry: Any = None, **props: Any) -> dict[str, Any]:
    if level:
        props["level"] = level
    geom = geometry or {"type": "Polygon", "coordinates": _square(120.8, 32.0)}
    return {"type": "Feature", "properties": props, "geometry": geom}


def _write(path: Path, features: list[Any], system: str | None = "WGS-84") -> Path:
    doc: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if system:
        doc["coordinate_system"] = system
    path.write_bytes(orjson.dumps(doc))
    return path


def test_one_file_with_all_three_levels(tmp_path: Path) -> None:
    multi = {"type": "MultiPolygon", "coordinates": [_square(120.5, 32.0), _square(121.0, 32.0)]}
    _write(
        tmp_path / "outlines.geojson",
        [
            _feature("district", multi, name="崇川区", code="320602"),
            _feature("town", id="T32060201", name="城东街道", district="崇川区"),
            _feature("grid", id="G0034-0059", town="T32060201", district="崇川区"),
        ],
    )
    o = load_outlines(tmp_path)
    assert o is not None
    assert [len(o.districts), len(o.towns), len(o.grids)] == [1, 1, 1]
    assert len(o.districts[0].polygons) == 2
    assert (o.towns[0].id, o.towns[0].name, o.towns[0].district) == (
        "T32060201",
        "城东街道",
        "崇川区",
    )
    assert o.grids[0].town == "T32060201"
    assert not o.simulated
    geo = o.geojson("district")
    assert geo["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert load_outlines(tmp_path / "nothing-here") is None


def test_per_level_files_and_gcj02_converted_on_load(tmp_path: Path) -> None:
    wlat, wlon, glat, glon = KNOWN[0]
    ring = [[glon, glat], [glon + 0.1, glat], [glon + 0.1, glat + 0.1], [glon, glat]]
    geom = {"type": "Polygon", "coordinates": [ring]}
    _write(tmp_path / "outlines-district.geojson", [_feature(None, name="A")], "WGS84")
    _write(tmp_path / "outlines-town.geojson", [_feature(None, geom, id="T1")], "GCJ-02")
    o = load_outlines(tmp_path)
    assert o is not None
    assert o.declared == ("WGS-84", "GCJ-02")
    assert o.towns[0].polygons[0][0][0] == pytest.approx((wlon, wlat), abs=1e-6)
    assert o.districts[0].polygons[0][0][0] == (120.8, 32.0)  # WGS-84 stays as it was


@pytest.mark.parametrize(
    ("features", "system", "message"),
    [
        ([_feature("district", name="A")], None, "outlines.geojson: no coordinate_system"),
        ([_feature("district", name="A")], "BD-09", "coordinate_system 'BD-09' is not WGS-84"),
        ([_feature("village", id="V1")], "WGS-84", "feature 0 (V1): level 'village' is not one"),
        ([_feature("town", name="城东")], "WGS-84", "feature 0 (城东): a town needs properties.id"),
        (
            [_feature("district", {"type": "LineString", "coordinates": []}, name="A")],
            "WGS-84",
            "feature 0 (A): geometry: type 'LineString' is not Polygon or MultiPolygon",
        ),
        (
            [
                _feature(
                    "district",
                    {"type": "Polygon", "coordinates": [[[120, 32], [121, 32], [121, 33]]]},
                    name="A",
                )
            ],
            "WGS-84",
            "polygon 0 ring 0 has 3 positions",
        ),
        (
            [
                _feature(
                    "district",
                    {"type": "Polygon", "coordinates": [[[120, 32], [121, 32], [121, 33], [9, 9]]]},
                    name="A",
                )
            ],
            "WGS-84",
            "polygon 0 ring 0 is not closed",
        ),
        (
            [
                _feature(
                    "district",
                    {"type": "Polygon", "coordinates": [[[320, 32], [1, 2], [3, 4], [320, 32]]]},
                    name="A",
                )
            ],
            "WGS-84",
            "position [320, 32] is not [longitude, latitude]",
        ),
        (
            [_feature("town", id="T1"), _feature("town", id="T1")],
            "WGS-84",
            "two town outlines have the id 'T1'",
        ),
        (["nonsense"], "WGS-84", "feature 0: not a GeoJSON Feature"),
    ],
)
def test_bad_files_are_refused_with_one_line_naming_the_feature(
    tmp_path: Path, features: list[Any], system: str | None, message: str
) -> None:
    _write(tmp_path / "outlines.geojson", features, system)
    with pytest.raises(SchemaError) as exc:
        load_outlines(tmp_path)
    assert message in str(exc.value)
    assert str(exc.value).startswith("outlines: outlines.geojson")
    assert "\n" not in str(exc.value)


def test_not_json_and_wrong_level_in_a_level_file(tmp_path: Path) -> None:
    (tmp_path / "outlines.geojson").write_text("{oops")
    with pytest.raises(SchemaError, match=r"outlines: outlines.geojson: not valid JSON"):
        load_outlines(tmp_path)
    (tmp_path / "outlines.geojson").unlink()
    _write(tmp_path / "outlines-grid.geojson", [_feature("town", id="T1")])
    with pytest.raises(SchemaError, match="level 'town' in a file of grid outlines"):
        load_outlines(tmp_path)
