"""Helpers for the feed tests (no tests here): alerts written the way the Redis sink writes
them, a feed server on a free port, and a small websocket client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import orjson
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from citywatch.alerts import Alert, AlertState, Level, Subject, episode_id, fingerprint
from citywatch.identity import Role, UserStore
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
    """Settings for a test feed: two development tokens (admins, loopback only) and a users
    file of its own, empty until :func:`add_user`."""
    users_dir = tempfile.mkdtemp(prefix="cw-users-")
    base: dict[str, Any] = {
        "feed_tokens": (TOKEN, "another-token"),
        "users_file": Path(users_dir) / "users.json",
        "feed_host": "127.0.0.1",
        "feed_port": 0,
        "feed_auth_timeout_s": 0.5,
        "feed_heartbeat_s": 30.0,
        "feed_queue": 1000,
        "feed_max_message": 4096,
    }
    base.update(changes)
    return settings.with_(**base)


def add_user(
    settings: Settings, user_id: str, role: Role | str, dept: str | None = None, name: str = ""
) -> str:
    """Add a user to the settings' users file; returns their token."""
    return UserStore(settings.users_path).add(
        user_id, name or user_id.upper(), role, dept=dept, departments=settings.departments
    )


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


async def closed_code(ws: ClientConnection, timeout: float = 5.0) -> int | None:
    """Read until the connection closes: the close code it got (None: no close frame)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


async def stalled_client(server: FeedServer) -> ClientConnection:
    """A subscribed client that never reads, with a 4 KiB receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    ws = await connect_auth(server, sock=sock, max_queue=1)
    await ws.send(orjson.dumps({"op": "subscribe"}).decode())
    return ws


def run(coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())
