"""The console's map box when the settings set no region: the registry's, else the outlines'."""

from __future__ import annotations

from pathlib import Path

import orjson

from citywatch.registry import District, Registry, Station, districts_geojson
from citywatch.settings import Settings
from sinks.feed.server import FeedServer

SQUARE = (((120.0, 31.0), (121.0, 31.0), (121.0, 32.0), (120.0, 32.0), (120.0, 31.0)),)


def test_the_console_map_region_follows_the_registry_when_the_settings_have_none(
    tmp_path: Path,
) -> None:
    Registry(stations={"A": Station(id="A", lat=41.8, lon=123.4)}).dump(tmp_path / "reg")
    settings = Settings.load(env={})
    cfg = FeedServer(settings, None, registry_dir=tmp_path / "reg")._public_config()  # type: ignore[arg-type]
    assert cfg["region"]["lat_min"] < 41.8 < cfg["region"]["lat_max"]  # Shenyang, not Nantong
    fixed = settings.with_(region=(31.6, 32.7, 120.2, 121.9))
    cfg = FeedServer(fixed, None, registry_dir=tmp_path / "reg")._public_config()  # type: ignore[arg-type]
    assert cfg["region"] == {"lat_min": 31.6, "lat_max": 32.7, "lon_min": 120.2, "lon_max": 121.9}
    outlines = orjson.dumps(districts_geojson([District(name="甲区", code="1", rings=SQUARE)]))
    cfg = FeedServer(
        settings, None, registry_dir=tmp_path / "none", districts=outlines
    )._public_config()  # type: ignore[arg-type]
    assert cfg["region"] == {"lat_min": 31.0, "lat_max": 32.0, "lon_min": 120.0, "lon_max": 121.0}
