"""Three-tier command: work orders routed to a centre by rule and place, per-tier deadlines,
escalation town -> county -> city, centre-bound duty officers, metrics per tier and centre.
Pure logic first, then over the real websocket."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from citywatch.identity import Role, UserStore
from citywatch.settings import Settings
from citywatch.tiers import Tier
from sinks.feed.lifecycle import (
    Command,
    Deadlines,
    IllegalTransition,
    WorkOrder,
    compute_metrics,
    plan,
    routed_centre,
    rule_table,
)
from tests.sinks.test_feed_support import (
    feed_settings,
    make_alert,
    recv_json,
    recv_until,
    run,
    running,
    write_alert,
)

TOWN, DISTRICT = "T32060201", "崇川区"
HOTLINE = {"rule": "hotline.duplicate", "district": DISTRICT, "town": TOWN, "level": "red"}
DL = Deadlines(1_000, 10_000, by_tier={Tier.TOWN: (100, 1_000), Tier.COUNTY: (300, 0)})


def _do(order: WorkOrder, action: str, now: int, **kw: Any) -> Any:
    return plan(order, Command(action, "a", **kw), now_ms=now, deadlines=DL, alert=HOTLINE)


def test_an_order_belongs_to_the_centre_its_rule_and_place_route_it_to() -> None:
    assert routed_centre(HOTLINE) == f"town:{TOWN}"
    assert routed_centre({**HOTLINE, "rule": "air.spike"}) == f"county:{DISTRICT}"
    assert routed_centre({**HOTLINE, "rule": "incident.correlated"}) == "city"
    assert routed_centre({**HOTLINE, "town": None}) == f"county:{DISTRICT}"  # no town: up
    s = Settings.load(env={"CW_RULE_TIERS": "hotline.=county,air.spike=city"})
    assert routed_centre(HOTLINE, rule_table(s)) == f"county:{DISTRICT}"
    assert routed_centre({**HOTLINE, "rule": "air.spike"}, rule_table(s)) == "city"
    t = _do(WorkOrder(), "dispatch", 0, dept="城市管理局")
    assert (t.order.centre, t.event["centre"], t.event["tier"]) == (
        f"town:{TOWN}",
        t.order.centre,
        "town",
    )
    assert t.order.deadline_ms == 100  # the town's sign-off deadline


def test_per_tier_deadlines_come_from_the_settings() -> None:
    s = Settings.load(
        env={
            "CW_SIGNOFF_DEADLINE_S": "60",
            "CW_TIER_SIGNOFF_DEADLINE_S": "town=900,county=1800",
            "CW_TIER_HANDLING_DEADLINE_S": "city=86400",
        }
    )
    d = Deadlines.from_settings(s)
    assert [d.signoff(t) for t in Tier] == [60_000, 1_800_000, 900_000]  # city county town
    assert d.handling(Tier.CITY) == 86_400_000
    assert d.handling(Tier.TOWN) == int(s.handling_deadline_s * 1000)
    with pytest.raises(Exception, match="tier_signoff_deadline_s: 'village=9' is not tier"):
        Settings.load(env={"CW_TIER_SIGNOFF_DEADLINE_S": "village=9"})


def test_an_overdue_order_climbs_town_county_city_then_stays_overdue() -> None:
    t = _do(WorkOrder(), "dispatch", 0, dept="城市管理局")
    with pytest.raises(IllegalTransition):
        _do(t.order, "escalate", 99)  # not yet
    up1 = _do(t.order, "escalate", 150)
    assert up1.event["from_centre"] == f"town:{TOWN}"
    assert up1.event["to_centre"] == up1.order.centre == f"county:{DISTRICT}"
    assert (up1.event["tier"], up1.order.overdue, up1.order.status.value) == (
        "county",
        "signoff",
        "dispatched",
    )
    assert up1.order.deadline_ms == up1.order.due_ms == 150 + 300  # the county's sign-off time
    with pytest.raises(IllegalTransition):
        _do(up1.order, "escalate", 449)
    up2 = _do(up1.order, "escalate", 460)
    assert (up2.event["from_centre"], up2.event["to_centre"]) == (f"county:{DISTRICT}", "city")
    assert up2.order.deadline_ms == 460 + 1_000  # the city: no tier entry, the default
    assert up2.order.due_ms == 0  # overdue at the top: nothing more to watch
    with pytest.raises(IllegalTransition):
        _do(up2.order, "escalate", 9_000)
    city = {**HOTLINE, "rule": "incident.correlated"}  # routed to the city from the start
    c = plan(
        WorkOrder(), Command("dispatch", "c", dept="公安局"), now_ms=0, deadlines=DL, alert=city
    )
    top = plan(c.order, Command("escalate", "c"), now_ms=1_001, deadlines=DL, alert=city)
    assert top.event["from_centre"] == top.event["to_centre"] == top.order.centre == "city"
    assert (top.order.overdue, top.order.due_ms) == ("signoff", 0)
    signed = _do(up2.order, "sign", 2_100)  # the handler answers: the city's handling time
    assert (signed.order.overdue, signed.order.deadline_ms, signed.event["centre"]) == (
        "",
        2_100 + 10_000,
        "city",
    )
    shelved = _do(signed.order, "shelve", 2_200, reason="待查", until_ms=5_000)
    back = _do(shelved.order, "reopen", 5_000)
    assert back.order.centre == f"town:{TOWN}"  # reopened: routed afresh


def test_metrics_by_tier_and_centre_charge_the_centre_that_was_late() -> None:
    events = []
    t = _do(WorkOrder(), "dispatch", 0, dept="城市管理局")
    events.append(t.event)
    up = _do(t.order, "escalate", 150)
    events.append(up.event)
    events.append(_do(up.order, "sign", 200).event)
    other = plan(
        WorkOrder(),
        Command("dispatch", "b", dept="生态环境局"),
        now_ms=0,
        deadlines=DL,
        alert={**HOTLINE, "rule": "air.spike"},
    )
    events.append(other.event)
    events.append(
        plan(other.order, Command("sign", "b"), now_ms=10, deadlines=DL, alert=HOTLINE).event
    )
    events.append({"id": "c", "action": "dispatch", "ts_ms": 0, "dept": "公安局"})  # old audit
    m = compute_metrics(events, now_ms=100)
    assert list(m["by_tier"]) == ["county", "town", "?"]
    town, county = m["by_tier"]["town"], m["by_tier"]["county"]
    assert (town["dispatched"], town["overdue"], town["escalated"], town["signed"]) == (1, 1, 1, 1)
    assert (county["dispatched"], county["overdue"], county["escalated"]) == (1, 0, 0)
    assert list(m["by_centre"]) == [f"county:{DISTRICT}", f"town:{TOWN}", "?"]
    assert m["by_centre"][f"town:{TOWN}"]["signoff_ms_median"] == 200.0
    assert m["total"]["escalated"] == 1


# -- over the real websocket -----------------------------------------------------------------


async def _login(srv: Any, token: str) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(f"ws://127.0.0.1:{srv.port}/feed")
    await ws.send(orjson.dumps({"op": "auth", "token": token}).decode())
    assert (await recv_json(ws))["type"] == "welcome"
    await ws.send(b'{"op":"subscribe"}')
    _live, before = await recv_until(ws, "live")
    snap = [i for m in before if m["type"] == "snapshot" for i in m["alerts"]]
    return ws, {i["alert"]["id"]: i["wo"]["centre"] for i in snap}


async def _act(ws: Any, aid: str, action: str, **fields: Any) -> dict[str, Any]:
    req = f"r{action}{aid[:6]}"
    await ws.send(orjson.dumps({"op": "action", "action": action, "id": aid, "req": req, **fields}))
    while True:
        msg = await recv_json(ws)
        if msg.get("req") == req:
            return msg


async def _drain(ws: Any) -> list[dict[str, Any]]:
    """Everything the server sent before it answers a ping (it answers in order)."""
    await ws.send(b'{"op":"ping","req":"p"}')
    _, before = await recv_until(ws, "pong")
    return before


def test_centre_queues_and_escalation_over_the_websocket(
    settings: Settings, redis_client: redis.Redis
) -> None:
    s = feed_settings(
        settings, tier_signoff_deadline_s=("town=60", "county=600"), signoff_deadline_s=3600
    )
    store = UserStore(s.users_path)
    tokens = {
        who: store.add(who, who.upper(), Role.DUTY_OFFICER, centre=centre)
        for who, centre in (
            ("zhang", f"town:{TOWN}"),
            ("qian", "town:T32060202"),
            ("sun", f"county:{DISTRICT}"),
            ("li", "city"),
        )
    }
    ours = make_alert(1, rule="hotline.duplicate").evolve(town=TOWN)
    county = make_alert(2, rule="air.spike").evolve(town=TOWN)
    theirs = make_alert(3, rule="hotline.duplicate").evolve(town="T32060202")
    for a in (ours, county, theirs):
        write_alert(redis_client, s.keys, a)
    now = [1_800_000_000_000]

    async def scenario() -> None:
        async with running(s, escalate_every_s=3600, clock=lambda: now[0]) as srv:
            zhang, z_snap = await _login(srv, tokens["zhang"])
            qian, q_snap = await _login(srv, tokens["qian"])
            sun, s_snap = await _login(srv, tokens["sun"])
            li, l_snap = await _login(srv, tokens["li"])
            assert z_snap == {ours.id: f"town:{TOWN}"}
            assert q_snap == {theirs.id: "town:T32060202"}
            assert (
                s_snap
                == l_snap
                == {
                    ours.id: f"town:{TOWN}",
                    county.id: f"county:{DISTRICT}",
                    theirs.id: "town:T32060202",
                }
            )
            refused = await _act(zhang, county.id, "dispatch", dept="生态环境局")
            assert (refused["type"], refused["code"]) == ("error", "forbidden")
            assert f"belongs to county:{DISTRICT}" in refused["message"]
            ack = await _act(zhang, ours.id, "dispatch", dept="城市管理局")
            assert ack["type"] == "ack"
            assert ack["wo"]["centre"] == f"town:{TOWN}"
            assert ack["wo"]["deadline_ms"] == now[0] + 60_000  # the town's sign-off time

            # a live alert reaches its town and county, not the neighbouring town
            fresh = make_alert(4, rule="worksite.resumption").evolve(town=TOWN)
            write_alert(redis_client, s.keys, fresh)
            got = {
                name: [m for m in await _drain(ws) if m["type"] == "alert"]
                for name, ws in (("zhang", zhang), ("qian", qian), ("sun", sun))
            }
            assert [(m["alert"]["id"], m["centre"]) for m in got["zhang"]] == [
                (fresh.id, f"town:{TOWN}")
            ]
            assert got["qian"] == []
            assert [m["alert"]["id"] for m in got["sun"]] == [fresh.id]

            # nobody signs within the town's minute: the order climbs to the county
            now[0] += 60_001
            assert await srv.escalate_due() == 1
            for ws in (zhang, sun, li):
                events = [m["event"] for m in await _drain(ws) if m["type"] == "lifecycle"]
                up = [e for e in events if e["action"] == "escalate"]
                assert len(up) == 1, events
                assert (up[0]["from_centre"], up[0]["to_centre"], up[0]["tier"]) == (
                    f"town:{TOWN}",
                    f"county:{DISTRICT}",
                    "county",
                )
            assert [m for m in await _drain(qian) if m["type"] == "lifecycle"] == []
            refused = await _act(zhang, ours.id, "dispatch", dept="公安局")
            assert refused["code"] == "forbidden"
            ack = await _act(sun, ours.id, "dispatch", dept="公安局")  # the county takes it over
            assert ack["type"] == "ack"
            assert ack["wo"]["centre"] == f"county:{DISTRICT}"
            assert ack["wo"]["deadline_ms"] == now[0] + 600_000

            # the order's next alert version goes to the county, no longer to the town
            write_alert(redis_client, s.keys, ours.evolve(version=2))
            assert [m for m in await _drain(zhang) if m["type"] == "alert"] == []
            assert [m["centre"] for m in await _drain(sun) if m["type"] == "alert"] == [
                f"county:{DISTRICT}"
            ]
            for ws in (zhang, qian, sun, li):
                await ws.close()

    run(scenario())
    audit = [orjson.loads(f[b"e"]) for _, f in redis_client.xrange(s.keys.audit)]
    assert [(e["action"], e["centre"], e["tier"], e.get("actor_id")) for e in audit] == [
        ("dispatch", f"town:{TOWN}", "town", "zhang"),
        ("escalate", f"county:{DISTRICT}", "county", None),
        ("dispatch", f"county:{DISTRICT}", "county", "sun"),
    ]


def test_the_report_text_has_tables_per_tier_and_centre() -> None:
    from citywatch.commands.report import format_report

    t = _do(WorkOrder(), "dispatch", 0, dept="城市管理局")
    text = format_report(compute_metrics([t.event], now_ms=50))
    assert "== by tier / 按层级\n" in text
    assert "== by centre / 按指挥中心\n" in text
    assert f"\ntown:{TOWN} " in text
    assert "\ntown " in text
