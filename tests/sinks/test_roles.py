"""Who may do what, over the real websocket: every role boundary, the audit's actor taken from
the identity, revocation, development logins kept to direct loopback."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
import pytest
import redis
from websockets.asyncio.client import connect

from citywatch.alerts import Alert
from citywatch.errors import ConfigError
from citywatch.identity import Role, UserStore
from citywatch.settings import Settings
from tests.sinks.test_feed_support import (
    TOKEN,
    add_user,
    closed_code,
    feed_settings,
    make_alert,
    recv_json,
    run,
    running,
    write_alert,
)

pytestmark = pytest.mark.integration

ECO, TRAFFIC = "生态环境局", "交通运输局"


async def _login(srv: Any, token: str, **kw: Any) -> tuple[Any, dict[str, Any]]:
    ws = await connect(f"ws://127.0.0.1:{srv.port}/feed", **kw)
    await ws.send(orjson.dumps({"op": "auth", "token": token}).decode())
    welcome = await recv_json(ws)
    assert welcome["type"] == "welcome", welcome
    return ws, welcome["user"]


async def _act(ws: Any, alert_id: str, action: str, **fields: Any) -> dict[str, Any]:
    req = f"{action}-{id(fields)}"
    await ws.send(
        orjson.dumps({"op": "action", "action": action, "id": alert_id, "req": req, **fields})
    )
    while True:
        msg = await recv_json(ws)
        if msg.get("req") == req:
            return msg


def _audit(r: redis.Redis, s: Settings) -> list[dict[str, Any]]:
    return [orjson.loads(f[b"e"]) for _, f in r.xrange(s.keys.audit)]


@pytest.fixture
def staff(settings: Settings) -> tuple[Settings, dict[str, str]]:
    """A feed's settings with one user per role (and a second department's handler)."""
    s = feed_settings(settings)
    tokens = {
        "duty": add_user(s, "li", Role.DUTY_OFFICER, name="李值班"),
        "eco": add_user(s, "wang", Role.HANDLER, dept=ECO, name="王环保"),
        "traffic": add_user(s, "zhao", Role.HANDLER, dept=TRAFFIC, name="赵交通"),
        "leader": add_user(s, "zhou", Role.LEADER, name="周主任"),
        "admin": add_user(s, "root", Role.ADMIN, name="管理员"),
    }
    return s, tokens


@pytest.fixture
def alert(staff: tuple[Settings, dict[str, str]], redis_client: redis.Redis) -> Alert:
    """One new alert in the staff's feed."""
    a = make_alert(1)
    write_alert(redis_client, staff[0].keys, a)
    return a


def test_welcome_says_who_logged_in_and_what_they_may_do(
    staff: tuple[Settings, dict[str, str]],
) -> None:
    s, tokens = staff

    async def scenario() -> None:
        async with running(s) as srv:
            ws, user = await _login(srv, tokens["eco"])
            assert user == {
                "id": "wang",
                "name": "王环保",
                "role": "handler",
                "dept": ECO,
                "centre": None,
                "centre_id": "city",
                "scope": "city",
                "actions": ["sign", "reject", "handle", "feedback"],
                "dept_bound": True,
                "centre_bound": False,
            }
            await ws.close()
            ws, user = await _login(srv, tokens["leader"])
            assert (user["role"], user["actions"]) == ("leader", [])
            await ws.close()

    run(scenario())


def test_a_handler_acts_only_on_their_departments_orders(
    staff: tuple[Settings, dict[str, str]], redis_client: redis.Redis
) -> None:
    s, tokens = staff
    ours, theirs = make_alert(1), make_alert(2)
    for a in (ours, theirs):
        write_alert(redis_client, s.keys, a)

    async def scenario() -> None:
        async with running(s) as srv:
            duty, _ = await _login(srv, tokens["duty"])
            assert (await _act(duty, ours.id, "dispatch", dept=ECO))["type"] == "ack"
            assert (await _act(duty, theirs.id, "dispatch", dept=TRAFFIC))["type"] == "ack"
            eco, _ = await _login(srv, tokens["eco"])
            for action, extra in (("sign", {}), ("reject", {"reason": "不属本部门"})):
                refused = await _act(eco, theirs.id, action, **extra)
                assert refused["code"] == "forbidden", refused
                assert f"dispatched to {TRAFFIC}, not to {ECO}" in refused["message"]
            assert redis_client.hget(s.keys.alert(theirs.id), "status") == b"dispatched"
            for action, extra in (("sign", {}), ("handle", {}), ("feedback", {"note": "已处置"})):
                assert (await _act(eco, ours.id, action, **extra))["type"] == "ack"
            # a handler may not close, dispatch or shelve, even their own department's order
            for action, extra in (
                ("close", {}),
                ("dispatch", {"dept": ECO}),
                ("shelve", {"reason": "x", "until_ms": 2**41}),
            ):
                assert (await _act(eco, ours.id, action, **extra))["code"] == "forbidden"
            # the other department's handler signs theirs
            traffic, _ = await _login(srv, tokens["traffic"])
            assert (await _act(traffic, theirs.id, "sign"))["type"] == "ack"
            assert srv.stats.forbidden == 5
            for ws in (duty, eco, traffic):
                await ws.close()

    run(scenario())
    signed = [e for e in _audit(redis_client, s) if e["action"] == "sign"]
    assert [(e["actor"], e["actor_id"], e["role"], e["actor_dept"], e["dept"]) for e in signed] == [
        ("王环保", "wang", "handler", ECO, ECO),
        ("赵交通", "zhao", "handler", TRAFFIC, TRAFFIC),
    ]


def test_a_leader_reads_but_cannot_act(
    staff: tuple[Settings, dict[str, str]], redis_client: redis.Redis, alert: Alert
) -> None:
    s, tokens = staff

    async def scenario() -> None:
        async with running(s) as srv:
            leader, _ = await _login(srv, tokens["leader"])
            await leader.send(orjson.dumps({"op": "subscribe"}))
            snap = await recv_json(leader)
            assert [i["alert"]["id"] for i in snap["alerts"]] == [alert.id]
            assert (await recv_json(leader))["type"] == "live"
            for action in ("dispatch", "sign", "reject", "handle", "feedback", "close", "shelve"):
                msg = await _act(leader, alert.id, action, dept=ECO, reason="r", until_ms=2**41)
                assert msg["code"] == "forbidden", msg
                assert "a leader may take no action (read only)" in msg["message"]
            await leader.send(orjson.dumps({"op": "metrics", "req": "m"}))
            assert (await recv_json(leader))["type"] == "metrics"
            await leader.send(orjson.dumps({"op": "history", "id": alert.id, "req": "h"}))
            assert (await recv_json(leader))["events"] == []
            await leader.close()

    run(scenario())
    assert redis_client.xlen(s.keys.audit) == 0
    assert redis_client.hget(s.keys.alert(alert.id), "status") == b"new"


def test_a_duty_officer_dispatches_but_cannot_sign_for_a_department(
    staff: tuple[Settings, dict[str, str]], redis_client: redis.Redis, alert: Alert
) -> None:
    s, tokens = staff

    async def scenario() -> None:
        async with running(s) as srv:
            duty, _ = await _login(srv, tokens["duty"])
            bad = await _act(duty, alert.id, "dispatch", dept="<script>alert(1)</script>")
            assert bad["code"] == "unknown_department"
            nobody = await _act(duty, alert.id, "dispatch", dept=ECO, assignee="ghost")
            assert nobody["code"] == "unknown_assignee"
            wrong = await _act(duty, alert.id, "dispatch", dept=ECO, assignee="zhao")
            assert wrong["code"] == "unknown_assignee"  # zhao is in the traffic bureau
            ok = await _act(duty, alert.id, "dispatch", dept=ECO, assignee="wang")
            assert ok["wo"]["assignee"] == "wang"
            for action in ("sign", "reject", "handle", "feedback"):
                msg = await _act(duty, alert.id, action, reason="r", note="n")
                assert msg["code"] == "forbidden", msg
                assert "a duty officer may dispatch, close, shelve, reopen" in msg["message"]
            await duty.close()
            # an admin may do everything, in their own name
            admin, _ = await _login(srv, tokens["admin"])
            assert (await _act(admin, alert.id, "sign"))["type"] == "ack"
            await admin.close()

    run(scenario())
    audit = _audit(redis_client, s)
    assert [(e["action"], e["actor_id"], e["role"]) for e in audit] == [
        ("dispatch", "li", "duty_officer"),
        ("sign", "root", "admin"),
    ]
    metrics_depts = {e.get("dept") for e in audit}
    assert metrics_depts == {ECO}  # no markup became a department


def test_the_audit_names_the_identity_whatever_the_client_claims(
    staff: tuple[Settings, dict[str, str]], redis_client: redis.Redis, alert: Alert
) -> None:
    s, tokens = staff

    async def scenario() -> None:
        async with running(s) as srv:
            duty, _ = await _login(srv, tokens["duty"])
            msg = await _act(
                duty, alert.id, "dispatch", dept=ECO, actor="王环保", actor_id="wang", role="admin"
            )
            assert msg["wo"]["updated_by"] == "李值班"
            eco, _ = await _login(srv, tokens["eco"])
            msg = await _act(eco, alert.id, "sign", actor="李值班", actor_dept=TRAFFIC)
            assert msg["wo"]["updated_by"] == "王环保"
            for ws in (duty, eco):
                await ws.close()

    run(scenario())
    audit = _audit(redis_client, s)
    assert [(e["actor"], e["actor_id"], e["role"], e.get("actor_dept")) for e in audit] == [
        ("李值班", "li", "duty_officer", None),
        ("王环保", "wang", "handler", ECO),
    ]
    assert redis_client.hget(s.keys.alert(alert.id), "updated_by") == "王环保".encode()


def test_revoked_and_rotated_tokens_are_closed_and_refused(
    staff: tuple[Settings, dict[str, str]],
) -> None:
    s, tokens = staff
    store = UserStore(s.users_path)

    async def scenario() -> None:
        async with running(s, users_every_s=0.05) as srv:
            eco, _ = await _login(srv, tokens["eco"])
            duty, _ = await _login(srv, tokens["duty"])
            store.revoke("wang")
            assert await closed_code(eco) == 1008
            new = store.rotate("li")
            assert await closed_code(duty) == 1008
            for old in (tokens["eco"], tokens["duty"]):
                ws = await connect(f"ws://127.0.0.1:{srv.port}/feed")
                await ws.send(orjson.dumps({"op": "auth", "token": old}).decode())
                assert await closed_code(ws) == 1008
            ws, user = await _login(srv, new)
            assert user["id"] == "li"
            # a role changed in the file applies to the live session
            store.remove("li")
            store_token = store.add("li", "李值班", Role.LEADER)
            assert await closed_code(ws) == 1008  # removing it revoked the old token
            ws, user = await _login(srv, store_token)
            assert user["role"] == "leader"
            await ws.close()
            assert srv.stats.revoked == 3

    run(scenario())


def test_a_revocation_noticed_by_a_login_still_closes_the_revoked_session(
    staff: tuple[Settings, dict[str, str]],
) -> None:
    s, tokens = staff

    async def scenario() -> None:
        async with running(s, users_every_s=3600) as srv:  # no periodic check in this test
            eco, _ = await _login(srv, tokens["eco"])
            UserStore(s.users_path).revoke("wang")
            duty, _ = await _login(srv, tokens["duty"])  # this login reads the changed file
            assert await closed_code(eco) == 1008
            await duty.close()

    run(scenario())


def test_a_malformed_users_file_stops_the_start_and_later_keeps_the_last_good_one(
    staff: tuple[Settings, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    s, tokens = staff
    good = s.users_path.read_bytes()

    async def broken_at_start() -> None:
        s.users_path.write_text("{not json", encoding="utf-8")
        with pytest.raises(ConfigError, match="users_file"):
            async with running(s):
                pass

    async def broken_later() -> None:
        s.users_path.write_bytes(good)
        async with running(s, users_every_s=0.05) as srv:
            s.users_path.write_text('{"format": "something else"}', encoding="utf-8")
            await asyncio.sleep(0.3)
            ws, user = await _login(srv, tokens["eco"])  # still logs in
            assert user["id"] == "wang"
            await ws.close()

    run(broken_at_start())
    run(broken_later())
    assert sum("not a citywatch users file" in r.getMessage() for r in caplog.records) == 1


def test_development_logins_only_over_direct_loopback(settings: Settings) -> None:
    s = feed_settings(settings)

    async def scenario() -> None:
        async with running(s) as srv:
            ws, user = await _login(srv, TOKEN)
            assert (user["id"], user["role"]) == ("dev", "admin")
            await ws.close()
            # through a reverse proxy on this host: the proxy's headers give it away
            for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
                ws = await connect(
                    f"ws://127.0.0.1:{srv.port}/feed",
                    additional_headers={header: "203.0.113.9"},
                )
                await ws.send(orjson.dumps({"op": "auth", "token": TOKEN}).decode())
                assert await closed_code(ws) == 1008
            # the demo's published logins are off unless asked for
            ws = await connect(f"ws://127.0.0.1:{srv.port}/feed")
            await ws.send(orjson.dumps({"op": "auth", "token": "demo-duty"}).decode())
            assert await closed_code(ws) == 1008
        async with running(s, demo_logins=True) as srv:
            ws, user = await _login(srv, "demo-eco")
            assert (user["role"], user["dept"]) == ("handler", ECO)
            await ws.close()

    run(scenario())


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::"])  # noqa: S104 - the point
def test_no_development_token_beyond_loopback(settings: Settings, host: str) -> None:
    async def scenario() -> None:
        with pytest.raises(ConfigError, match="is not loopback and the development token is on"):
            async with running(feed_settings(settings, feed_host=host)):
                pass
        # with development logins off it binds (and nobody logs in without a user)
        async with running(feed_settings(settings, feed_host=host, feed_tokens=())) as srv:
            # srv.port is the first listening socket's; "" listens on IPv4 and IPv6 (each its
            # own port when asked for any), "::" on IPv6 only
            first = next(iter(srv._server.sockets)) if srv._server else None
            local = (
                "[::1]" if first is not None and first.family == socket.AF_INET6 else "127.0.0.1"
            )
            ws = await connect(f"ws://{local}:{srv.port}/feed")
            await ws.send(orjson.dumps({"op": "auth", "token": "dev-token"}).decode())
            assert await closed_code(ws) == 1008

    run(scenario())
