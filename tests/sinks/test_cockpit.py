"""The cockpit's data over HTTP and the websocket: token-protected, computed once for many
viewers, firing alerts and work orders per district, town and centre, tickets per town over
the last day, records per second; outlines served as WGS-84, a bad outline file stops
``serve`` with one line."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from citywatch.alerts import Level
from citywatch.registry import Registry
from citywatch.settings import Settings
from citywatch.tiers import Town
from sinks.feed.lifecycle import Command
from tests.sinks.test_feed import _get as get
from tests.sinks.test_feed_support import (
    TOKEN,
    connect_auth,
    feed_settings,
    make_alert,
    recv_until,
    run,
    running,
    write_alert,
)

pytestmark = pytest.mark.integration

RING = ((120.7, 31.9), (121.0, 31.9), (121.0, 32.1), (120.7, 32.1), (120.7, 31.9))


def _registry() -> Registry:
    from citywatch.registry import District

    towns = {
        "T1": Town(id="T1", name="城东街道", district="崇川区", lat=32.0, lon=120.8),
        "T2": Town(id="T2", name="和平桥街道", district="崇川区", lat=32.0, lon=120.95),
    }
    return Registry(districts=[District(name="崇川区", code="320602", rings=(RING,))], towns=towns)


def _get(url: str, token: str | None = None) -> tuple[int, Any]:
    code, _, body = get(url, {"Authorization": f"Bearer {token}"} if token else None)
    return code, orjson.loads(body)


def test_the_cockpit_picture_over_http_and_the_websocket(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    s = feed_settings(settings)
    keys = s.keys
    red = make_alert(1, level=Level.RED, rule="hotline.duplicate").evolve(town="T1")
    amber = make_alert(2, level=Level.ORANGE, rule="air.spike").evolve(town="T2")
    write_alert(redis_client, keys, red)
    write_alert(redis_client, keys, amber)
    now = int(time.time() * 1000)
    for n, (lat, lon, ts) in enumerate(
        [(32.0, 120.81, now), (32.0, 120.8, now - 3_600_000), (32.0, 120.95, now - 90_000_000)]
    ):
        t = {"kind": "hotline", "ticket": f"K{n}", "ts": ts, "text": "噪声", "lat": lat, "lon": lon}
        redis_client.xadd(keys.tickets, {"t": orjson.dumps(t)})
    again = {"kind": "hotline", "ticket": "K0", "ts": now, "lat": 32.0, "lon": 120.81}
    redis_client.xadd(keys.tickets, {"t": orjson.dumps(again)})  # at-least-once: a repeat
    redis_client.hset(keys.counts, mapping={"in:air": 100, "records": 100})

    async def scenario() -> None:
        async with running(
            s, registry_dir=tmp_path, registry=_registry(), cockpit_cache_s=0.5
        ) as srv:
            base = f"http://127.0.0.1:{srv.port}"
            await srv.act(Command("dispatch", amber.id, dept="生态环境局"))
            code, body = await asyncio.to_thread(_get, f"{base}/api/cockpit")
            assert (code, body["code"]) == (401, "auth")
            code, body = await asyncio.to_thread(_get, f"{base}/api/cockpit", "wrong")
            assert code == 401
            # many viewers at once: one computation
            before = srv.cockpit.computations
            results = await asyncio.gather(
                *(asyncio.to_thread(_get, f"{base}/api/cockpit", TOKEN) for _ in range(8))
            )
            assert srv.cockpit.computations - before == 1
            code, p = results[0]
            assert code == 200
            assert p["totals"]["firing"] == {"red": 1, "orange": 1, "yellow": 0, "blue": 0}
            assert (p["totals"]["open"], p["totals"]["overdue"]) == (2, 0)
            d = p["districts"]["崇川区"]
            assert (d["open"], d["tickets"], d["firing"]["red"]) == (2, 2, 1)
            assert p["towns"]["T1"]["tickets"] == 2  # the day-old ticket is out; K0 once
            assert p["centres"] == {
                "county:崇川区": {"open": 1, "new": 0, "overdue": 0},
                "town:T1": {"open": 1, "new": 1, "overdue": 0},
            }
            assert {a["id"] for a in p["alerts"]} == {red.id, amber.id}
            assert p["air"] == {"source": "alerts", "stations": []}
            assert p["rates"] is None  # one sample so far
            assert p["outlines"]["simulated"] is True
            assert p["outlines"]["levels"] == {"district": 1, "town": 0, "grid": 0}

            # the websocket op, a little later: rates from two samples
            await asyncio.sleep(0.6)
            redis_client.hincrby(keys.counts, "in:air", 60)
            ws = await connect_auth(srv)
            await ws.send(b'{"op":"cockpit","req":"c1"}')
            msg, _ = await recv_until(ws, "cockpit")
            assert msg["req"] == "c1"
            assert msg["cockpit"]["rates"]["air"] > 0
            await ws.close()

            code, geo = await asyncio.to_thread(_get, f"{base}/outlines/district.geojson")
            assert code == 200
            assert geo["features"][0]["properties"]["id"] == "崇川区"
            code, cfg = await asyncio.to_thread(_get, f"{base}/config.json")
            names = {c["id"]: c["name"] for c in cfg["centres"]}
            assert names["town:T2"] == "和平桥街道"
            assert names["county:崇川区"] == "崇川区"

    run(scenario())


def test_the_operators_outlines_replace_the_simulated_ones(
    settings: Settings, tmp_path: Path
) -> None:
    doc = {
        "type": "FeatureCollection",
        "coordinate_system": "GCJ-02",
        "features": [
            {
                "type": "Feature",
                "properties": {"level": "town", "id": "T1", "name": "城东街道"},
                "geometry": {"type": "Polygon", "coordinates": [[list(p) for p in RING]]},
            }
        ],
    }
    (tmp_path / "outlines.geojson").write_bytes(orjson.dumps(doc))

    async def scenario() -> None:
        async with running(feed_settings(settings), registry_dir=tmp_path) as srv:
            assert srv.outlines.summary()["simulated"] is False
            _code, geo = await asyncio.to_thread(
                _get, f"http://127.0.0.1:{srv.port}/outlines/town.geojson"
            )
            first = geo["features"][0]["geometry"]["coordinates"][0][0]
            assert first[0] < 120.7
            assert first[1] > 31.9

    run(scenario())


def test_serve_refuses_a_bad_outline_file_in_one_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from citywatch.cli import main

    (tmp_path / "outlines.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("CW_FEED_PORT", "0")
    assert main(["serve", "--registry", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "citywatch serve: error: outlines: outlines.geojson: no coordinate_system: declare "
        '"coordinate_system": "WGS-84" or "GCJ-02" at the top level'
    ]
