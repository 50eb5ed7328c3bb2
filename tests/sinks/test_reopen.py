"""A reopened alert (resolved, then firing again with the same id) through the real Redis sink,
the work order and the feed service, against a real Redis."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from citywatch.alerts import Alert, AlertState, Level
from citywatch.settings import Settings
from sinks.feed.lifecycle import Command, dispatch_cycles
from sinks.redis_sink import RedisSink, RedisSinkPartition
from tests.sinks.test_feed_support import (
    connect_auth,
    feed_settings,
    make_alert,
    recv_json,
    recv_until,
    run,
    running,
)

pytestmark = pytest.mark.integration


def _sink(settings: Settings) -> RedisSinkPartition:
    part = RedisSink(settings.redis_url or "", settings.keys, run_id="reopen").build("o", 0, 1)
    assert isinstance(part, RedisSinkPartition)
    return part


def _versions(a: Alert) -> tuple[Alert, Alert, Alert]:
    """An alert firing (1), resolved (2) and reopened (3, firing again, later, red)."""
    resolved = a.evolve(state=AlertState.RESOLVED, version=2)
    back = a.evolve(version=3, level=Level.RED, last_ts=a.last_ts + 3_600_000, count=2)
    return a, resolved, back


def _audit(r: redis.Redis, settings: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(f[b"e"]) for _, f in r.xrange(settings.keys.audit)]


def test_a_reopen_is_open_again_and_its_closed_order_comes_back_new(
    settings: Settings, redis_client: redis.Redis
) -> None:
    keys = settings.keys
    sink = _sink(settings)
    fired, resolved, back = _versions(make_alert(1))
    working, working_resolved, working_back = _versions(make_alert(2))
    untouched, untouched_resolved, untouched_back = _versions(make_alert(3))

    async def scenario() -> None:
        async with running(feed_settings(settings)) as srv:
            sink.write_batch([fired, working, untouched])
            await srv.act(Command("dispatch", fired.id, dept="生态环境局"))
            for action in ("sign", "handle", "feedback", "close"):
                await srv.act(Command(action, fired.id, actor="王环保"))
            await srv.act(Command("dispatch", working.id, dept="生态环境局"))
            sink.write_batch([resolved, working_resolved, untouched_resolved])
            assert redis_client.zscore(keys.open, fired.id) is None
            before = redis_client.xlen(keys.audit)

            ws = await connect_auth(srv)
            await ws.send(orjson.dumps({"op": "subscribe"}).decode())
            await recv_until(ws, "live")
            sink.write_batch([back, working_back, untouched_back])

            # The console gets the alert firing again, and the order's reopen.
            seen: dict[str, Any] = {}
            while "reopen" not in seen or len(seen) < 4:
                msg = await recv_json(ws)
                if msg["type"] == "alert":
                    seen[msg["alert"]["id"]] = msg["alert"]
                elif msg["type"] == "lifecycle":
                    seen[msg["event"]["action"]] = msg["event"]
            assert (seen[fired.id]["state"], seen[fired.id]["version"]) == ("firing", 3)
            ev = seen["reopen"]
            assert (ev["id"], ev["from"], ev["to"], ev["actor"], ev["rev"]) == (
                fired.id,
                "closed",
                "new",
                "system",
                6,
            )
            assert (ev["reason"], ev["rule"], ev["level"], ev["dept"]) == (
                "alert fired again",
                "air.spike",
                "red",
                "生态环境局",
            )
            assert ev["district"] == "崇川区"
            assert redis_client.xlen(keys.audit) == before + 1  # only the closed order moved
            await ws.close()

            # A fresh console lists it open, as a new order to dispatch again.
            fresh = await connect_auth(srv)
            await fresh.send(orjson.dumps({"op": "subscribe"}).decode())
            snap = (await recv_until(fresh, "snapshot"))[0]
            listed = {i["alert"]["id"]: i for i in snap["alerts"]}
            assert listed[fired.id]["alert"]["version"] == 3
            assert listed[fired.id]["wo"]["status"] == "new"
            assert listed[fired.id]["wo"]["centre"]  # routed, as a new order is
            assert listed[working.id]["wo"]["status"] == "dispatched"
            await fresh.close()
            t, _ = await srv.act(Command("dispatch", fired.id, dept="生态环境局"))
            assert (t.before.status.value, t.order.status.value) == ("new", "dispatched")

    run(scenario())

    h = redis_client.hgetall(keys.alert(fired.id))
    assert (h[b"state"], h[b"version"], h[b"level"]) == (b"firing", b"3", b"red")
    assert redis_client.zscore(keys.open, fired.id) is not None
    # The order being worked on and the one never acted on are left as they were.
    assert redis_client.hget(keys.alert(working.id), "status") == b"dispatched"
    assert redis_client.hget(keys.alert(untouched.id), "status") == b"new"
    # Written again (a replay after a crash): nothing moves twice.
    n = redis_client.xlen(keys.audit)
    sink.write_batch([fired, resolved, back])
    assert redis_client.xlen(keys.audit) == n
    assert [a.version for a in _stream(redis_client, settings, fired.id)] == [1, 2, 3]
    # The effectiveness figures see one cycle closed and reopened (the problem came back),
    # then a second dispatch.
    audit = _audit(redis_client, settings)
    cycles = [c for c in dispatch_cycles(audit, now_ms=0) if c.id == fired.id]
    assert [(c.close_ms is not None, c.reopened) for c in cycles] == [(True, True), (False, False)]


def _stream(r: redis.Redis, settings: Settings, aid: str) -> list[Alert]:
    out = [Alert.from_json(f[b"a"]) for _, f in r.xrange(settings.keys.alerts)]
    return [a for a in out if a.id == aid]


def test_a_reopen_after_redis_lost_data_is_republished_open(
    settings: Settings, redis_client: redis.Redis
) -> None:
    fired, resolved, back = _versions(make_alert(1))
    sink = _sink(settings)
    sink.write_batch([fired])
    sink.write_batch([resolved])
    sink.write_batch([back])
    assert list(sink.open_alerts.resolved) == []  # open again: not among the resolved
    assert [a.version for a in sink.open_alerts] == [3]
    redis_client.delete(settings.keys.alert(fired.id), settings.keys.open)
    assert sink.republish() == 1
    assert redis_client.hget(settings.keys.alert(fired.id), "state") == b"firing"
    assert redis_client.zscore(settings.keys.open, fired.id) is not None
