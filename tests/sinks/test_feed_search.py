"""Search through the feed service: the websocket ``search`` op and ``GET /api/search``, on
an index the service keeps caught up with the real streams."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from citywatch.registry import Registry
from citywatch.settings import Settings
from sinks.search.service import SearchService, parse_request
from sinks.search.sqlite_index import SqliteIndex
from tests.sinks.test_feed_support import (
    TOKEN,
    add_user,
    connect_auth,
    feed_settings,
    make_alert,
    recv_until,
    run,
    running,
    write_alert,
)

pytestmark = pytest.mark.integration


def _service(settings: Settings, tmp_path: Path) -> SearchService:
    assert settings.redis_url
    return SearchService(SqliteIndex(tmp_path / "s.sqlite"), settings.redis_url, settings.keys)


def _get(port: int, params: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/search?{urllib.parse.urlencode(params, doseq=True)}"
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def test_new_alerts_and_tickets_are_searchable_within_two_seconds(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    s = feed_settings(settings)
    handler = add_user(s, "zhang", "handler", dept=s.departments[0])
    service = _service(s, tmp_path)

    async def scenario() -> None:
        async with running(s, search=service, search_every_s=0.1) as srv:
            ws = await connect_auth(srv)
            write_alert(redis_client, s.keys, make_alert(1, title="化工园区异味扩散"))
            redis_client.xadd(s.keys.tickets, {"t": orjson.dumps({
                "kind": "hotline", "ticket": "T77", "ts": 1_767_225_600_000,
                "text": "晚上化工厂方向异味很重，头晕", "category": "odor"})})  # fmt: skip
            t0 = asyncio.get_running_loop().time()
            hits: list[dict[str, Any]] = []
            while len(hits) < 2:
                await ws.send(orjson.dumps({"op": "search", "q": "异味", "req": "s1"}).decode())
                msg, _ = await recv_until(ws, "search")
                assert msg["req"] == "s1"
                hits = msg["hits"]
                assert asyncio.get_running_loop().time() - t0 < 2.0
                await asyncio.sleep(0.05)
            assert {h["kind"] for h in hits} == {"alert", "ticket"}
            ticket = next(h for h in hits if h["kind"] == "ticket")
            assert ticket["ref"] == "T77"
            assert ["异味", True] in ticket["snippet"]
            # filters, and a bad request echoes req
            await ws.send(orjson.dumps({"op": "search", "q": "异味", "kinds": ["ticket"],
                                        "req": "s2"}).decode())  # fmt: skip
            msg, _ = await recv_until(ws, "search")
            assert [h["ref"] for h in msg["hits"]] == ["T77"]
            await ws.send(orjson.dumps({"op": "search", "q": "", "req": "s3"}).decode())
            err, _ = await recv_until(ws, "error")
            assert (err["code"], err["req"]) == ("bad_message", "s3")
            await ws.close()
            # HTTP: a user's token works, none or a wrong one is 401, a bad query 400
            port = srv.port
            status, body = await asyncio.to_thread(_get, port, {"q": "异味", "kinds": "alert"},
                                                   handler)  # fmt: skip
            assert status == 200
            assert [h["kind"] for h in body["hits"]] == ["alert"]
            status, body = await asyncio.to_thread(_get, port, {"q": "异味"}, None)
            assert (status, body["code"]) == (401, "auth")
            status, body = await asyncio.to_thread(_get, port, {"q": "异味"}, "wrong")
            assert status == 401
            status, body = await asyncio.to_thread(_get, port, {"q": "x", "limit": 999}, TOKEN)
            assert (status, body["code"]) == (400, "bad_request")
            assert "limit" in body["message"]

    run(scenario())
    service.close()


def test_without_an_index_search_says_it_is_unavailable(settings: Settings) -> None:
    s = feed_settings(settings)

    async def scenario() -> None:
        async with running(s) as srv:
            ws = await connect_auth(srv)
            await ws.send(orjson.dumps({"op": "search", "q": "异味", "req": "1"}).decode())
            err, _ = await recv_until(ws, "error")
            assert (err["code"], err["req"]) == ("search_unavailable", "1")
            await ws.close()
            status, body = await asyncio.to_thread(_get, srv.port, {"q": "x"}, TOKEN)
            assert (status, body["code"]) == (503, "search_unavailable")

    run(scenario())


def test_the_feed_places_tickets_with_the_registry_its_maps_use(
    settings: Settings, redis_client: redis.Redis, tmp_path: Path
) -> None:
    from simulators.geography import Geography
    from simulators.towns import build_grids, build_towns
    from sinks.feed.server import open_search

    towns = build_towns()
    reg = Registry(districts=list(Geography().districts), towns={t.id: t for t in towns},
                   grids=build_grids(towns))  # fmt: skip
    s = settings.with_(data_dir=tmp_path)
    service = open_search(s, tmp_path / "no-registry", reg)
    assert service is not None
    redis_client.xadd(s.keys.tickets, {"t": orjson.dumps({
        "kind": "hotline", "ticket": "T1", "ts": 1_767_225_600_000, "text": "路灯不亮",
        "lat": 32.02, "lon": 120.87})})  # fmt: skip
    service.catch_up()
    hit = service.search(parse_request({"q": "路灯"}))["hits"][0]
    assert (hit["district"], bool(hit["town"])) == ("崇川区", True)
    service.close()
