from __future__ import annotations

from pathlib import Path

import pytest

from citywatch.errors import SchemaError
from citywatch.registry import District, Place, Registry, Site, Station, Vehicle, Zone

SQUARE = (((120.0, 31.0), (121.0, 31.0), (121.0, 32.0), (120.0, 32.0), (120.0, 31.0)),)


def _registry() -> Registry:
    return Registry(
        stations={"S1": Station(id="S1", lat=31.5, lon=120.5, district="甲区", kind="national")},
        places={"P1": Place(id="P1", name="化工厂", lat=31.4, lon=120.4, category="enterprise")},
        zones={"Z1": Zone(id="Z1", name="实验小学", lat=31.6, lon=120.6, category="school")},
        sites={
            "W1": Site(
                id="W1", name="工地", lat=31.2, lon=120.2, cameras=("C1", "C2"), meters=("M1",)
            )
        },
        vehicles={"V1": Vehicle(id="V1", plate="苏F12345", un="1203")},
        districts=[District(name="甲区", code="320601", rings=SQUARE)],
    )


def test_dump_load_round_trip(tmp_path: Path) -> None:
    reg = _registry()
    reg.dump(tmp_path / "reg")
    back = Registry.load(tmp_path / "reg")
    assert back == reg
    assert back.site_of_camera() == {"C1": "W1", "C2": "W1"}
    assert back.site_of_meter() == {"M1": "W1"}


def test_district_lookup() -> None:
    reg = _registry()
    assert reg.district_of(31.5, 120.5) == "甲区"
    assert reg.district_of(33.0, 120.5) is None


def test_missing_files_give_empty_parts(tmp_path: Path) -> None:
    assert Registry.load(tmp_path) == Registry()


def test_bad_lines_raise_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "stations.jsonl").write_text('{"id":"S1","lat":31,"lon":120}\n{"id":"S2"}\n')
    with pytest.raises(SchemaError, match=r"stations.jsonl line 2"):
        Registry.load(tmp_path)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not a directory"):
        Registry.load(tmp_path / "nope")
