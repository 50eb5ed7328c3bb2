from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from citywatch.errors import ConfigError, SchemaError
from citywatch.registry import (
    District,
    Place,
    Registry,
    Site,
    Station,
    Vehicle,
    WaterStation,
    Zone,
    districts_geojson,
    region_for,
)

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


def test_water_stations_round_trip_in_both_forms_and_are_not_air_stations(tmp_path: Path) -> None:
    reg = _registry()
    reg.water_stations["WS1"] = WaterStation(
        id="WS1", name="狼山水厂出厂水", lat=31.95, lon=120.9, kind="plant", district="甲区"
    )
    reg.dump(tmp_path / "dir")
    assert (tmp_path / "dir" / "water_stations.jsonl").exists()
    assert Registry.load(tmp_path / "dir") == reg
    reg.dump_file(tmp_path / "reg.jsonl")
    assert Registry.load(tmp_path / "reg.jsonl") == reg
    assert "WS1" not in reg.stations
    assert (31.95, 120.9) in set(reg.points())
    one = tmp_path / "one.json"
    one.write_text('{"water_stations": [{"id": "W2", "lat": 32.0, "lon": 121.0}]}')
    assert Registry.load(one).water_stations["W2"].kind == "network"


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


def test_missing_path_says_what_a_registry_is(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"not found \(expected a directory or a .json/.jsonl"):
        Registry.load(tmp_path / "nope")


def test_single_jsonl_file_round_trips_with_region_and_new_station_fields(tmp_path: Path) -> None:
    reg = _registry()
    reg.stations["S2"] = Station(id="S2", lat=31.6, lon=120.6, kind="lowcost", interval_s=148.0)
    reg.region = (30.0, 33.0, 119.0, 122.0)
    reg.dump_file(tmp_path / "reg.jsonl")
    lines = (tmp_path / "reg.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith('{"type":"region"')
    assert {orjson.loads(x)["type"] for x in lines} == {
        "region", "station", "place", "zone", "site", "vehicle", "district"
    }  # fmt: skip
    assert Registry.load(tmp_path / "reg.jsonl") == reg
    reg.dump(tmp_path / "dir")  # the directory form keeps the region too
    assert Registry.load(tmp_path / "dir") == reg


def test_single_json_object_with_lists_and_geojson_districts(tmp_path: Path) -> None:
    doc = {
        "region": [30.0, 33.0, 119.0, 122.0],
        "stations": [{"id": "S1", "lat": 31.5, "lon": 120.5, "interval_s": 3600}],
        "districts": districts_geojson(_registry().districts),
    }
    path = tmp_path / "reg.json"
    path.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(doc))  # a BOM is tolerated
    reg = Registry.load(path)
    assert reg.region == (30.0, 33.0, 119.0, 122.0)
    assert reg.stations["S1"].interval_s == 3600.0
    assert reg.stations["S1"].kind == "micro"
    assert reg.districts == _registry().districts


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"type":"station","id":"S1","lat":31}\n', r"reg.jsonl line 1: station: .*lon"),
        ('{"type":"truck","id":"T"}\n', r"line 1: unknown type 'truck'"),
        ('{"id":"S1"}\n', r"line 1: expected an object with a 'type' field"),
        ('{"type":"region","lat_min":33,"lat_max":32,"lon_min":1,"lon_max":2}\n', "lat_min <"),
        ('{"type":"station","id":"S","lat":1,"lon":2,"interval_s":0}\n', "interval_s"),
        ('{"type":"station","id":"S","lat":1,"lon":2}\n{oops\n', r"line 2: invalid JSON"),
        ('{"stations":[],"trucks":[]}', r"unknown key\(s\) trucks"),
    ],
)
def test_bad_single_files_name_the_line_and_problem(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "reg.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError, match=match):
        Registry.load(path)


def test_region_from_registry_settings_or_an_error_that_says_what_to_set() -> None:
    chengdu = Registry(stations={"A": Station(id="A", lat=30.63, lon=104.11)})
    derived = region_for(None, chengdu)
    assert derived.contains(30.63, 104.11)
    assert derived.contains(30.63 + 0.25, 104.11 - 0.3)  # ~30 km margin
    assert not derived.contains(32.0, 120.9)  # Nantong is not Chengdu
    explicit = Registry(stations=chengdu.stations, region=(30.0, 31.5, 103.5, 105.0))
    assert region_for(None, explicit).lat_max == 31.5
    assert region_for((1.0, 2.0, 3.0, 4.0), explicit).lat_min == 1.0  # settings win
    with pytest.raises(ConfigError, match=r"set region = .* \(or CW_REGION\)"):
        region_for(None, Registry(vehicles={"V": Vehicle(id="V", plate="P")}))
