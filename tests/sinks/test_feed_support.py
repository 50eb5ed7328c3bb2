"""Helpers for the feed tests (no tests here): alerts written the way the Redis sink writes
them, a feed server on a free port, and a small websocket client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import orjson
import redis
from websockets.asyncio.client import ClientConnection, connect

from citywatch.alerts import Alert, AlertState, Level, Subject, episode_id, fingerprint
from citywatch.keys import Keys
from citywatch.settings import Settings
from sinks.feed.server import FeedServer
from sinks.feed.store import FeedStore

TOKEN = "test-token-1"  # noqa: S105 - a test token


def make_alert(
    n: int,
    *,
    level: Level = Level.ORANGE,
    rule: str = "air.spike",
    district: str = "崇川区",
    title: str = "PM2.5 突增",
    state: AlertState = AlertState.FIRING,
    version: int = 1,
    evidence: dict[str, Any] | None = None,
    first_ts: int = 1_767_225_600_000,
) -> Alert:
    subject = Subject("station", f"S{n}")
    fp = fingerprint(rule, subject)
    return Alert(
        id=episode_id(fp, first_ts),
        fingerprint=fp,
        rule=rule,
        level=level,
        state=state,
        subject=subject,
        first_ts=first_ts,
        last_ts=first_ts + 60_000,
        lat=32.0 + n * 1e-3,
        lon=120.9,
        district=district,
        grid="G0034-0059",
        title=title,
        evidence=evidence or {"pm25": 180.0 + n},
        model="robust_z@1",
        version=version,
    )


def write_alert(r: redis.Redis, keys: Keys, alert: Alert, maxlen: int | None = None) -> str:
    """What the Redis sink writes: hash, stream entry (field ``a``), open set. Returns the id."""
    js = alert.to_json()
    pipe = r.pipeline()
    pipe.hset(
        keys.alert(alert.id),
        mapping={
            "a": js,
            "version": alert.version,
            "state": alert.state.value,
            "level": alert.level.colour,
            "rule": alert.rule,
            "district": alert.district or "",
            "first_ts": alert.first_ts,
            "last_ts": alert.last_ts,
        },
    )
    pipe.hsetnx(keys.alert(alert.id), "status", "new")
    if maxlen is None:
        pipe.xadd(keys.alerts, {"a": js})
    else:
        pipe.xadd(keys.alerts, {"a": js}, maxlen=maxlen, approximate=False)
    if alert.is_firing:
        pipe.zadd(keys.open, {alert.id: int(alert.level) * 10**13 + alert.first_ts})
    else:
        pipe.zrem(keys.open, alert.id)
    sid = pipe.execute()[2]
    return sid.decode() if isinstance(sid, bytes) else str(sid)


def feed_settings(settings: Settings, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "feed_tokens": (TOKEN, "another-token"),
        "feed_host": "127.0.0.1",
        "feed_port": 0,
        "feed_auth_timeout_s": 0.5,
        "feed_heartbeat_s": 30.0,
        "feed_queue": 1000,
        "feed_max_message": 4096,
    }
    base.update(changes)
    return settings.with_(**base)


@contextlib.asynccontextmanager
async def running(settings: Settings, **kwargs: Any) -> AsyncIterator[FeedServer]:
    assert settings.redis_url
    store = FeedStore.from_url(settings.redis_url, settings.keys)
    server = FeedServer(settings, store, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        await store.close()


async def connect_auth(server: FeedServer, token: str = TOKEN, **kw: Any) -> ClientConnection:
    ws = await connect(f"ws://127.0.0.1:{server.port}/feed", **kw)
    await ws.send(orjson.dumps({"op": "auth", "token": token}).decode())
    welcome = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    assert welcome["type"] == "welcome"
    return ws


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    msg: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
    return msg


async def recv_until(
    ws: ClientConnection, type_: str, timeout: float = 5.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Messages up to and including the first of ``type_``: (that one, the ones before)."""
    before: list[dict[str, Any]] = []
    while True:
        msg = await recv_json(ws, timeout)
        if msg["type"] == type_:
            return msg, before
        before.append(msg)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())
