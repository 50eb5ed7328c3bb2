"""The feed service against a real Redis: auth, filters, backfill, slow clients, bad input,
the closed loop over the socket, HTTP on the same port, shutdown."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from citywatch.alerts import Level
from citywatch.settings import Settings
from tests.sinks.test_feed_support import (
    TOKEN,
    closed_code,
    connect_auth,
    feed_settings,
    make_alert,
    recv_json,
    recv_until,
    run,
    running,
    stalled_client,
    write_alert,
)

pytestmark = pytest.mark.integration


def _send(obj: dict[str, Any]) -> str:
    return orjson.dumps(obj).decode()


# -- auth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["none", "wrong", "slow", "not_auth", "garbage"])
def test_auth_failures_close_1008(
    settings: Settings, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    s = feed_settings(settings, feed_auth_timeout_s=0.3)

    async def scenario() -> None:
        async with running(s) as srv:
            ws = await connect(f"ws://127.0.0.1:{srv.port}/feed")
            if how == "wrong":
                await ws.send(_send({"op": "auth", "token": TOKEN + "x"}))
            elif how == "slow":
                await asyncio.sleep(0.6)
                with pytest.raises(ConnectionClosed):
                    await ws.send(_send({"op": "auth", "token": TOKEN}))
            elif how == "not_auth":
                await ws.send(_send({"op": "subscribe"}))
            elif how == "garbage":
                await ws.send("{{{")
            assert await closed_code(ws) == 1008
            assert srv.stats.auth_failed == 1
            server_logs = [
                r.getMessage() for r in caplog.records if not r.name.startswith("websockets.client")
            ]  # the test's own client may log what it sends; the server never logs a token
            assert server_logs
            assert not any(TOKEN in line for line in server_logs)
            # the server still serves a good client afterwards
            ok = await connect_auth(srv)
            await ok.close()

    run(scenario())


def test_any_configured_token_authenticates(settings: Settings) -> None:
    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            ws = await connect_auth(srv, token="another-token")  # noqa: S106
            await ws.send(_send({"op": "ping", "req": 7}))
            assert (await recv_json(ws))["type"] == "pong"
            await ws.close()

    run(scenario())


def test_heartbeats_carry_time_and_stream_heads(
    settings: Settings, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with running(feed_settings(settings, feed_heartbeat_s=0.1)) as srv:
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe"}))
            await recv_until(ws, "live")
            sid = write_alert(redis_client, settings.keys, make_alert(1))
            while True:
                hb = (await recv_until(ws, "heartbeat"))[0]
                if hb["sid"] == sid:
                    break
            assert abs(hb["ts_ms"] - time.time() * 1000) < 5_000
            assert hb["aid"] == "0-0"
            await ws.close()

    run(scenario())


# -- filters, snapshot, backfill ------------------------------------------------------------


def test_filters_select_levels_rules_districts(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            ws = await connect_auth(srv)
            await ws.send(
                _send(
                    {
                        "op": "subscribe",
                        "levels": ["red", "orange"],
                        "rules": ["air.*", "vehicle.dwell"],
                        "districts": ["崇川区"],
                    }
                )
            )
            await recv_until(ws, "live")
            wanted = [
                make_alert(1, level=Level.RED, rule="air.spike"),
                make_alert(2, level=Level.ORANGE, rule="vehicle.dwell"),
            ]
            unwanted = [
                make_alert(3, level=Level.BLUE, rule="air.spike"),
                make_alert(4, level=Level.RED, rule="hotline.surge"),
                make_alert(5, level=Level.RED, rule="air.spike", district="海门区"),
                make_alert(6, level=Level.RED, rule="airx.spike"),
            ]
            write_alert(redis_client, keys, unwanted[0])
            write_alert(redis_client, keys, wanted[0])
            for a in unwanted[1:]:
                write_alert(redis_client, keys, a)
            write_alert(redis_client, keys, wanted[1])
            got = [(await recv_json(ws))["alert"]["id"] for _ in wanted]
            assert got == [a.id for a in wanted]
            await ws.send(_send({"op": "ping"}))
            assert (await recv_json(ws))["type"] == "pong"  # nothing else was queued
            await ws.close()

    run(scenario())


def test_snapshot_has_open_alerts_with_their_work_orders(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    red, orange = make_alert(1, level=Level.RED), make_alert(2)
    resolved = make_alert(3).evolve(state=make_alert(3).state.RESOLVED, version=2)
    for a in (orange, red, resolved):
        write_alert(redis_client, keys, a)

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            await srv.act(
                __import__("sinks.feed.lifecycle").feed.lifecycle.Command(
                    "dispatch", red.id, dept="应急管理局"
                )
            )
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe", "since": None}))
            snap = await recv_json(ws)
            assert snap["type"] == "snapshot"
            assert snap["more"] is False
            ids = [i["alert"]["id"] for i in snap["alerts"]]
            assert ids == [red.id, orange.id]  # level first; resolved and not dispatched: out
            assert snap["alerts"][0]["wo"]["status"] == "dispatched"
            assert snap["alerts"][0]["wo"]["dept"] == "应急管理局"
            assert (await recv_json(ws))["type"] == "live"
            await ws.close()

    run(scenario())


def test_snapshots_shared_by_clients_never_miss_a_newer_alert(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    write_alert(redis_client, keys, make_alert(1))

    async def snapshot_ids(srv: Any) -> set[str]:
        ws = await connect_auth(srv)
        await ws.send(_send({"op": "subscribe"}))
        seen: set[str] = set()
        while (msg := await recv_json(ws))["type"] != "live":
            assert msg["type"] == "snapshot"
            seen |= {i["alert"]["id"] for i in msg["alerts"]}
        await ws.close()
        return seen

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            first = await asyncio.gather(*(snapshot_ids(srv) for _ in range(5)))
            assert all(s == {make_alert(1).id} for s in first)
            sid = write_alert(redis_client, keys, make_alert(2))
            while srv.pos_a != sid:  # the reader has seen it: the positions moved
                await asyncio.sleep(0.01)
            assert await snapshot_ids(srv) == {make_alert(1).id, make_alert(2).id}

    run(scenario())


def test_backfill_across_reconnect_has_no_gap_and_no_duplicate(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    sids: list[str] = []

    async def writer(start: int, n: int, pause: float) -> None:
        for i in range(start, start + n):
            sids.append(write_alert(redis_client, keys, make_alert(i)))
            await asyncio.sleep(pause)

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe"}))
            await recv_until(ws, "live")
            await writer(0, 5, 0)
            seen = [(await recv_json(ws))["sid"] for _ in range(5)]
            await ws.close()
            await writer(5, 40, 0)  # while disconnected
            # reconnect while the writer keeps going: backfill and live overlap
            task = asyncio.create_task(writer(45, 40, 0.002))
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe", "since": seen[-1]}))
            while len(seen) < 85:
                msg = await recv_json(ws)
                if msg["type"] == "alert":
                    seen.append(msg["sid"])
            await task
            await ws.send(_send({"op": "ping"}))
            last = await recv_until(ws, "pong")
            seen.extend(m["sid"] for m in last[1] if m["type"] == "alert")
            await ws.close()
            assert seen == sids

    run(scenario())


def test_since_older_than_the_trimmed_head_gets_a_snapshot(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    first = write_alert(redis_client, keys, make_alert(0), maxlen=3)
    for i in range(1, 6):
        write_alert(redis_client, keys, make_alert(i), maxlen=3)

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe", "since": first}))
            snap = await recv_json(ws)
            assert snap["type"] == "snapshot"
            assert len(snap["alerts"]) == 6
            await ws.close()
            # since within the retained part: a plain backfill
            kept = redis_client.xrange(keys.alerts)
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe", "since": kept[0][0].decode()}))
            _live, before = await recv_until(ws, "live")
            assert [m["sid"] for m in before] == [k[0].decode() for k in kept[1:]]
            await ws.close()
            # since from a stream that no longer exists (Redis was reset): a snapshot, not silence
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe", "since": "99999999999999-0"}))
            assert (await recv_json(ws))["type"] == "snapshot"
            await ws.close()

    run(scenario())


def test_unreadable_stream_entries_are_skipped_live_and_in_backfill(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe"}))
            live = (await recv_until(ws, "live"))[0]
            redis_client.xadd(keys.alerts, {"a": b"{not json"})
            redis_client.xadd(keys.alerts, {"x": b"no a field"})
            redis_client.xadd(keys.alerts, {"a": b"[1, 2]"})
            redis_client.xadd(keys.audit, {"e": b"\xff"})
            good = write_alert(redis_client, keys, make_alert(1))
            msg = await recv_json(ws)
            assert (msg["type"], msg["sid"]) == ("alert", good)
            await ws.close()
            again = await connect_auth(srv)
            await again.send(
                _send({"op": "subscribe", "since": live["sid"], "audit_since": live["aid"]})
            )
            _, before = await recv_until(again, "live")
            assert [m["sid"] for m in before] == [good]
            await again.close()

    run(scenario())


def test_a_burst_in_one_read_arrives_complete_and_in_order(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    payload = [make_alert(i).to_json() for i in range(300)]

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe"}))
            await recv_until(ws, "live")
            pipe = redis_client.pipeline()
            for js in payload:
                pipe.xadd(keys.alerts, {"a": js})
            sids = [s.decode() for s in pipe.execute()]
            got = [(await recv_json(ws))["sid"] for _ in sids]
            assert got == sids
            await ws.close()

    run(scenario())


# -- slow clients ---------------------------------------------------------------------------


def test_a_client_that_never_reads_is_dropped_with_1013_and_others_are_not(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    s = feed_settings(settings, feed_queue=8)
    big = {"blob": "x" * 30_000}
    n = 200

    async def scenario() -> None:
        async with running(s) as srv:
            stalled = await stalled_client(srv)
            good = await connect_auth(srv)
            await good.send(_send({"op": "subscribe"}))
            await recv_until(good, "live")
            got = 0
            for i in range(n):
                write_alert(redis_client, keys, make_alert(i, evidence=big))
                while True:  # the good client keeps up: read what is there
                    try:
                        msg = orjson.loads(await asyncio.wait_for(good.recv(), 0.001))
                    except TimeoutError:
                        break
                    got += msg["type"] == "alert"
            while got < n:
                msg = await recv_json(good)
                got += msg["type"] == "alert"
            assert srv.stats.dropped_slow == 1
            # once it reads again it finds the connection closed: 1013 if the close frame got
            # through its full buffers, else aborted after close_timeout (no close frame)
            assert await closed_code(stalled, timeout=10) in (1013, None)
            await good.close()

    run(scenario(), timeout=60)


def test_a_stalled_client_is_dropped_by_the_write_deadline_with_room_in_its_queue(
    settings: Settings, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """The queue never fills (100,000 messages of room): only the write deadline can drop
    it, and meanwhile the server holds a bounded backlog for it, whatever the interpreter's
    transport does with flow control."""
    from sinks.feed.server import BACKLOG_HIGH

    caplog.set_level(logging.INFO, logger="citywatch.feed")
    keys = settings.keys
    s = feed_settings(settings, feed_queue=100_000, feed_send_timeout_s=1.0)
    big = {"blob": "x" * 30_000}

    async def scenario() -> None:
        async with running(s) as srv:
            stalled = await stalled_client(srv)
            while srv._client_count() == 0:
                await asyncio.sleep(0.01)
            (client,) = [c for members in srv.by_filter.values() for c in members]
            t0 = time.monotonic()
            worst = 0
            for i in range(60):  # ~1.8 MB for a client that reads nothing
                write_alert(redis_client, keys, make_alert(i, evidence=big))
                await asyncio.sleep(0.01)
                worst = max(worst, client.ws.transport.get_write_buffer_size())
            while srv.stats.dropped_slow == 0:
                assert time.monotonic() - t0 < 8, "the stalled client was never dropped"
                await asyncio.sleep(0.05)
                worst = max(worst, client.ws.transport.get_write_buffer_size())
            assert client.queue.qsize() < 100
            assert worst <= 2 * BACKLOG_HIGH + 64 * 1024, worst
            stalled.transport.abort()

    run(scenario(), timeout=30)
    assert any("did not complete within 1 s" in r.getMessage() for r in caplog.records)


# -- bad input --------------------------------------------------------------------------------


def test_bad_messages_get_errors_and_the_connection_lives(settings: Settings) -> None:
    s = feed_settings(settings, feed_max_message=1000)

    async def scenario() -> None:
        async with running(s) as srv:
            ws = await connect_auth(srv)
            cases = [
                ("{not json", "bad_json"),
                ("[1,2]", "bad_message"),
                (_send({"op": "dance"}), "unknown_op"),
                (_send({"op": "subscribe", "levels": ["purple"]}), "bad_message"),
                (_send({"op": "subscribe", "since": "yesterday"}), "bad_message"),
                (_send({"op": "action", "action": "explode", "id": "x"}), "bad_action"),
                (_send({"op": "action", "action": "sign", "id": "../etc"}), "bad_message"),
                (_send({"op": "action", "action": "sign", "id": "nope-1"}), "unknown_alert"),
                (_send({"op": "ping", "pad": "x" * 2000}), "too_large"),
                (b"\xff\xfe binary garbage", "bad_json"),
                (_send({"op": "auth", "token": TOKEN}), "bad_message"),
            ]
            for raw, code in cases:
                await ws.send(raw)
                msg = await recv_json(ws)
                assert (msg["type"], msg["code"]) == ("error", code), raw
                assert "req" not in msg
            # every error echoes a valid req, as docs/protocol.md says
            with_req = [
                ({"op": "dance"}, "unknown_op"),
                ({"op": "subscribe", "levels": ["purple"]}, "bad_message"),
                ({"op": "action", "action": "explode", "id": "x"}, "bad_action"),
                ({"op": "action", "action": "sign", "id": "../etc"}, "bad_message"),
                ({"op": "action", "action": "sign", "id": "x", "until_ms": "soon"}, "bad_message"),
                ({"op": "history"}, "bad_message"),
                ({"op": "auth", "token": TOKEN}, "bad_message"),
            ]
            for n, (obj, code) in enumerate(with_req):
                req: int | str = n if n % 2 else f"r{n}"
                await ws.send(_send({**obj, "req": req}))
                msg = await recv_json(ws)
                assert (msg["code"], msg["req"]) == (code, str(req)), obj
            await ws.send(_send({"op": "dance", "req": ["not", "a", "req"]}))
            msg = await recv_json(ws)
            assert (msg["code"], "req" in msg) == ("bad_message", False)
            assert msg["message"] == "req: expected a short string or integer"
            await ws.send(_send({"op": "subscribe"}))
            await recv_until(ws, "live")
            await ws.send(_send({"op": "subscribe"}))
            assert (await recv_json(ws))["code"] == "already_subscribed"
            # beyond the hard cap websockets closes with 1009; the server goes on
            await ws.send("x" * 5000)
            assert await closed_code(ws) == 1009
            again = await connect_auth(srv)
            await again.send(_send({"op": "ping"}))
            assert (await recv_json(again))["type"] == "pong"
            await again.close()
            # unknown_alert, auth: valid ops
            assert srv.stats.bad_messages == len(cases) - 2 + len(with_req) - 1 + 1

    run(scenario())


# -- the closed loop over the socket --------------------------------------------------------


def test_actions_follow_the_state_machine_and_reach_every_feed_process(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    alert = make_alert(1, level=Level.RED)
    write_alert(redis_client, keys, alert)
    s = feed_settings(settings)

    async def act(ws: Any, req: str, **fields: Any) -> dict[str, Any]:
        await ws.send(
            _send({"op": "action", "id": alert.id, "req": req, "actor": "王五", **fields})
        )
        while True:
            msg = await recv_json(ws)
            if msg.get("req") == req:
                return msg

    async def scenario() -> None:
        async with running(s) as one, running(s) as two:
            officer = await connect_auth(one)
            await officer.send(_send({"op": "subscribe"}))
            await recv_until(officer, "live")
            watcher = await connect_auth(two)  # another feed process
            await watcher.send(_send({"op": "subscribe", "levels": ["red"]}))
            await recv_until(watcher, "live")

            # an action on a blue alert is not for the red-only watcher
            blue = make_alert(2, level=Level.BLUE)
            write_alert(redis_client, keys, blue)
            await officer.send(
                _send(
                    {"op": "action", "id": blue.id, "action": "close", "reason": "误报", "req": "b"}
                )
            )
            assert (await recv_until(officer, "ack"))[0]["req"] == "b"

            bad = await act(officer, "1", action="sign")
            assert bad["code"] == "illegal_transition"
            assert redis_client.hget(keys.alert(alert.id), "status") == b"new"
            assert redis_client.xlen(keys.audit) == 1  # only the blue one's close

            ok = await act(officer, "2", action="dispatch", dept="生态环境局")
            assert ok["type"] == "ack"
            assert ok["wo"]["status"] == "dispatched"
            ev = (await recv_until(watcher, "lifecycle"))[0]["event"]
            assert ev["id"] == alert.id  # the blue alert's close never reached this watcher
            # the client said it was 王五; the audit names who logged in (the dev admin)
            assert (ev["action"], ev["from"], ev["to"], ev["actor"], ev["actor_id"]) == (
                "dispatch",
                "new",
                "dispatched",
                "开发者",
                "dev",
            )
            assert ev["district"] == "崇川区"
            assert ev["level"] == "red"

            assert (await act(officer, "3", action="close"))["code"] == "illegal_transition"
            assert (await act(officer, "4", action="reject"))["code"] == "illegal_transition"
            for step, action in enumerate(["sign", "handle", "feedback", "close"]):
                extra = {"note": "已处置"} if action == "feedback" else {}
                msg = await act(officer, f"s{step}", action=action, **extra)
                assert msg["type"] == "ack", msg
                ev = (await recv_until(watcher, "lifecycle"))[0]["event"]
                assert ev["action"] == action
            h = redis_client.hgetall(keys.alert(alert.id))
            assert h[b"status"] == b"closed"
            assert h[b"dept"] == "生态环境局".encode()
            assert h[b"updated_by"] == "开发者".encode()
            assert h[b"rev"] == b"5"
            audit = [orjson.loads(f[b"e"]) for _, f in redis_client.xrange(keys.audit)]
            assert [e["to"] for e in audit] == [
                "closed",  # the blue one
                "dispatched",
                "signed",
                "handling",
                "feedback",
                "closed",
            ]
            await officer.send(_send({"op": "metrics", "req": "m"}))
            m = (await recv_until(officer, "metrics"))[0]["metrics"]
            assert m["by_dept"]["生态环境局"]["closure_rate"] == 1.0
            await officer.send(_send({"op": "history", "id": alert.id, "req": "h"}))
            hist = (await recv_until(officer, "history"))[0]
            assert [e["event"]["action"] for e in hist["events"]] == [
                "dispatch",
                "sign",
                "handle",
                "feedback",
                "close",
            ]
            assert [e["aid"] for e in hist["events"]] == [
                i.decode() for i, _ in redis_client.xrange(keys.audit)
            ][1:]
            await officer.close()
            await watcher.close()

    run(scenario())


def test_concurrent_actions_on_one_order_are_atomic(
    settings: Settings, redis_client: redis.Redis
) -> None:
    from sinks.feed.lifecycle import Command, IllegalTransition

    alert = make_alert(1)
    write_alert(redis_client, settings.keys, alert)

    async def scenario() -> None:
        async with running(feed_settings(settings)) as one, running(feed_settings(settings)) as two:
            await one.act(Command("dispatch", alert.id, dept="公安局"))
            results = await asyncio.gather(
                one.act(Command("sign", alert.id, actor="a")),
                two.act(Command("reject", alert.id, actor="b", reason="不属本部门")),
                one.act(Command("sign", alert.id, actor="c")),
                return_exceptions=True,
            )
            wins = [r for r in results if not isinstance(r, BaseException)]
            assert len(wins) == 1
            assert all(isinstance(r, IllegalTransition) for r in results if r not in wins)
            assert redis_client.xlen(settings.keys.audit) == 2

    run(scenario())


def test_deadlines_escalate_once_and_shelving_ends_by_itself(
    settings: Settings, redis_client: redis.Redis
) -> None:
    from sinks.feed.lifecycle import Command

    keys = settings.keys
    a, b = make_alert(1), make_alert(2)
    for x in (a, b):
        write_alert(redis_client, keys, x)
    s = feed_settings(settings, signoff_deadline_s=60, handling_deadline_s=3600)
    now = [1_800_000_000_000]

    async def scenario() -> None:
        async with running(s, escalate_every_s=3600, clock=lambda: now[0]) as srv:
            await srv.act(Command("dispatch", a.id, dept="交通运输局"))
            await srv.act(Command("shelve", b.id, reason="待核实", until_ms=now[0] + 100_000))
            now[0] += 59_999
            assert await srv.escalate_due() == 0
            now[0] += 100_001
            assert await srv.escalate_due() == 2
            assert await srv.escalate_due() == 0
            ha = redis_client.hgetall(keys.alert(a.id))
            assert ha[b"overdue"] == b"signoff"
            assert ha[b"status"] == b"dispatched"
            assert redis_client.hget(keys.alert(b.id), "status") == b"new"
            await srv.act(Command("sign", a.id))
            ha = redis_client.hgetall(keys.alert(a.id))
            assert ha[b"overdue"] == b""
            now[0] += 3_599_999
            assert await srv.escalate_due() == 0
            now[0] += 1
            assert await srv.escalate_due() == 1
            assert redis_client.hget(keys.alert(a.id), "overdue") == b"handling"
            actions = [orjson.loads(f[b"e"])["action"] for _, f in redis_client.xrange(keys.audit)]
            assert actions == ["dispatch", "shelve", "escalate", "reopen", "sign", "escalate"]

    run(scenario())


# -- HTTP on the same port ------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback only
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_console_files_geojson_and_origin_check(settings: Settings, tmp_path: Any) -> None:
    (tmp_path / "districts.geojson").write_text('{"type":"FeatureCollection","features":[]}')
    s = feed_settings(settings, feed_origins=("https://centre.example",))

    async def scenario() -> None:
        async with running(s, registry_dir=tmp_path) as srv:
            base = f"http://127.0.0.1:{srv.port}"
            status, headers, body = await asyncio.to_thread(_get, base + "/")
            assert status == 200
            assert b"<html" in body.lower()
            assert "script-src 'self'" in headers["Content-Security-Policy"]
            for path in ("/static/../server.py", "/static/%2e%2e/x", "/nope", "/static/"):
                assert (await asyncio.to_thread(_get, base + path))[0] == 404
            status, _, body = await asyncio.to_thread(_get, base + "/districts.geojson")
            assert status == 200
            assert orjson.loads(body)["type"] == "FeatureCollection"
            status, _, body = await asyncio.to_thread(_get, base + "/healthz")
            assert status == 200
            assert "clients" in orjson.loads(body)
            url = f"ws://127.0.0.1:{srv.port}/feed"
            with pytest.raises(InvalidStatus) as info:
                await connect(url, origin="https://evil.example")  # type: ignore[arg-type]
            assert info.value.response.status_code == 403
            for origin in (f"http://127.0.0.1:{srv.port}", "https://centre.example"):
                ws = await connect(url, origin=origin)  # type: ignore[arg-type]
                await ws.close()

    run(scenario())


def test_page_loads_are_access_lines_not_rejected_connections(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            base = f"http://127.0.0.1:{srv.port}"
            for path in ("/", "/static/console.js", "/config.json", "/nope"):
                await asyncio.to_thread(_get, base + path)
            with pytest.raises(InvalidStatus):  # a refused websocket is still a rejection
                await connect(f"ws://127.0.0.1:{srv.port}/feed", origin="https://evil.example")  # type: ignore[arg-type]

    run(scenario())
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("citywatch")]
    rejected = [m for _, m in lines if "connection rejected" in m]
    assert rejected == ["connection rejected (403 Forbidden)"]
    access = [m for lvl, m in lines if m.startswith("http ") and lvl == logging.DEBUG]
    assert len(access) == 4
    assert any(m.endswith("GET / 200") for m in access)
    assert any(m.endswith("GET /nope 404") for m in access)


# -- the process: SIGTERM closes clients with 1001 ------------------------------------------


def test_serve_command_shuts_down_gracefully_on_sigterm(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url or "",
        "CW_PREFIX": settings.prefix,
        "CW_FEED_TOKENS": TOKEN,
        "CW_DATA_DIR": str(tmp_path),  # no registry there: the simulated districts are served
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "citywatch", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
    )

    async def scenario() -> None:
        deadline = time.monotonic() + 15
        while True:
            try:
                ws = await connect(f"ws://127.0.0.1:{port}/feed")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        await ws.send(_send({"op": "auth", "token": TOKEN}))
        assert (await recv_json(ws))["type"] == "welcome"
        status, _, body = await asyncio.to_thread(
            _get, f"http://127.0.0.1:{port}/districts.geojson"
        )
        assert status == 200
        assert len(orjson.loads(body)["features"]) == 10
        proc.send_signal(signal.SIGTERM)
        assert await closed_code(ws) == 1001

    try:
        run(scenario())
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        assert TOKEN not in err


# -- Redis goes away and comes back -------------------------------------------------------


def test_redis_outage_gives_errors_and_the_feed_recovers(settings: Settings) -> None:
    from citywatch.redisconn import EmbeddedRedis

    server = EmbeddedRedis()
    url = server.start()
    port = server.port
    s = feed_settings(settings.with_(redis_url=url))
    alert = make_alert(1)

    async def scenario() -> None:
        r = redis.Redis.from_url(url)
        async with running(s) as srv:
            ws = await connect_auth(srv)
            await ws.send(_send({"op": "subscribe"}))
            await recv_until(ws, "live")
            server.stop()
            await ws.send(
                _send(
                    {
                        "op": "action",
                        "action": "dispatch",
                        "id": alert.id,
                        "dept": "公安局",
                        "req": "1",
                    }
                )
            )
            assert (await recv_json(ws))["code"] == "unavailable"
            await ws.send(_send({"op": "metrics", "req": "2"}))
            assert (await recv_json(ws))["code"] == "unavailable"
            await asyncio.sleep(0.3)  # the reader fails and backs off meanwhile
            again = EmbeddedRedis(port=port)
            again.start()
            try:
                r = redis.Redis.from_url(url)
                sid = write_alert(r, s.keys, alert)  # a fresh server: the stream starts anew
                msg = await recv_json(ws, timeout=10)
                assert (msg["type"], msg["sid"]) == ("alert", sid)
                assert srv.stats.reader_errors >= 1
                await ws.close()
            finally:
                r.close()
                again.stop()

    try:
        run(scenario(), timeout=40)
    finally:
        server.stop()
