"""The work-order state machine, effectiveness metrics from a scripted audit stream, the
protocol parser, and ``citywatch report``."""

from __future__ import annotations

import argparse
import doctest
import io
import itertools
from contextlib import redirect_stdout
from typing import Any

import orjson
import pytest
import redis

from citywatch.settings import Settings
from sinks.feed import lifecycle, protocol
from sinks.feed.lifecycle import (
    Action,
    Command,
    Deadlines,
    IllegalTransition,
    Status,
    WorkOrder,
    allowed_actions,
    compute_metrics,
    plan,
)

DL = Deadlines(signoff_ms=1_000, handling_ms=10_000)
LEGAL = {
    ("new", "dispatch"): "dispatched",
    ("new", "close"): "closed",
    ("new", "shelve"): "shelved",
    ("dispatched", "sign"): "signed",
    ("dispatched", "reject"): "rejected",
    ("dispatched", "dispatch"): "dispatched",
    ("dispatched", "shelve"): "shelved",
    ("dispatched", "escalate"): "dispatched",
    ("rejected", "dispatch"): "dispatched",
    ("rejected", "close"): "closed",
    ("rejected", "shelve"): "shelved",
    ("signed", "handle"): "handling",
    ("signed", "feedback"): "feedback",
    ("signed", "shelve"): "shelved",
    ("signed", "escalate"): "signed",
    ("handling", "feedback"): "feedback",
    ("handling", "shelve"): "shelved",
    ("handling", "escalate"): "handling",
    ("feedback", "close"): "closed",
    ("feedback", "handle"): "handling",
    ("closed", "reopen"): "new",
    ("shelved", "reopen"): "new",
}


def _cmd(action: str) -> Command:
    return Command(
        action,
        "a1",
        actor="tester",
        dept="生态环境局",
        reason="理由",
        note="已处理",
        until_ms=50_000,
    )


def _order(status: str) -> WorkOrder:
    # deadline already passed so escalate is possible where the table allows it
    return WorkOrder(status=Status(status), dept="公安局", deadline_ms=500, rev=3)


@pytest.mark.parametrize(
    ("status", "action"),
    list(itertools.product([s.value for s in Status], [a.value for a in Action])),
)
def test_every_status_action_pair_is_legal_or_refused(status: str, action: str) -> None:
    before = _order(status)
    if (status, action) in LEGAL:
        t = plan(before, _cmd(action), now_ms=1_000, deadlines=DL, alert={"district": "崇川区"})
        assert t.order.status.value == LEGAL[(status, action)]
        assert t.order.rev == before.rev + 1
        assert (t.event["from"], t.event["to"], t.event["action"]) == (
            status,
            LEGAL[(status, action)],
            action,
        )
        assert t.event["district"] == "崇川区"
        assert t.event["actor"] == "tester"
    else:
        with pytest.raises(IllegalTransition, match=f"{action}: not allowed from {status}"):
            plan(before, _cmd(action), now_ms=1_000, deadlines=DL)
    assert before == _order(status)  # input never changed


def test_allowed_actions_match_the_table_and_the_console() -> None:
    for status in Status:
        expected = [a for (s, a) in LEGAL if s == status.value and a != "escalate"]
        assert allowed_actions(status) == expected
    js = lifecycle.__file__.rsplit("/feed/", 1)[0] + "/static/console.js"
    with open(js, encoding="utf-8") as fh:
        text = fh.read()
    for status in Status:  # the console's copy of the table must agree
        acts = ", ".join(f'"{a}"' for a in allowed_actions(status))
        assert f"{status.value}: [{acts}]" in text


@pytest.mark.parametrize(
    ("cmd", "match"),
    [
        (Command("dispatch", "a"), "needs a department"),
        (Command("reject", "a"), "needs a reason"),
        (Command("shelve", "a", reason="r"), "must be in the future"),
        (Command("shelve", "a", reason="r", until_ms=1_000), "must be in the future"),
        (Command("shelve", "a", until_ms=9_999), "needs a reason"),
        (Command("explode", "a"), "is not one of"),
    ],
)
def test_required_fields(cmd: Command, match: str) -> None:
    status = "dispatched" if cmd.action == "reject" else "new"
    with pytest.raises(IllegalTransition, match=match):
        plan(WorkOrder(status=Status(status)), cmd, now_ms=1_000, deadlines=DL)


def test_deadlines_follow_the_order() -> None:
    t = plan(WorkOrder(), Command("dispatch", "a", dept="D"), now_ms=0, deadlines=DL)
    assert t.order.deadline_ms == 1_000
    assert t.order.due_ms == 1_000
    with pytest.raises(IllegalTransition, match="not past"):
        plan(t.order, Command("escalate", "a"), now_ms=999, deadlines=DL)
    esc = plan(t.order, Command("escalate", "a"), now_ms=1_200, deadlines=DL)
    assert esc.order.overdue == "signoff"
    assert esc.event["late_ms"] == 200
    assert esc.order.due_ms == 0  # escalated once; nothing more to watch
    with pytest.raises(IllegalTransition):
        plan(esc.order, Command("escalate", "a"), now_ms=1_300, deadlines=DL)
    signed = plan(esc.order, Command("sign", "a"), now_ms=1_400, deadlines=DL).order
    assert (signed.overdue, signed.deadline_ms) == ("", 11_400)
    shelved = plan(
        signed, Command("shelve", "a", reason="r", until_ms=5_000), now_ms=2_000, deadlines=DL
    ).order
    assert shelved.due_ms == 5_000
    assert shelved.deadline_ms == 0
    reopened = plan(shelved, Command("reopen", "a"), now_ms=5_000, deadlines=DL).order
    assert (reopened.status, reopened.dept, reopened.due_ms) == (Status.NEW, "", 0)


def test_work_order_fields_round_trip_and_tolerate_junk() -> None:
    wo = WorkOrder(
        status=Status.HANDLING,
        dept="水利局",
        assignee="张",
        deadline_ms=9,
        updated_ms=3,
        updated_by="王",
        overdue="handling",
        rev=4,
    )
    raw = {k.encode(): v.encode() for k, v in wo.to_fields().items()}
    assert WorkOrder.from_fields(raw) == wo
    junk = WorkOrder.from_fields({b"status": b"exploded", b"rev": b"x", b"deadline_ms": None})
    assert junk == WorkOrder()


# -- metrics from a scripted audit stream ---------------------------------------------------

H = 3_600_000


def _script() -> list[dict[str, Any]]:
    """Four alerts, two departments, two districts; times in hours."""

    def ev(aid: str, action: str, h: float, **kw: Any) -> dict[str, Any]:
        return {"id": aid, "action": action, "ts_ms": int(h * H), **kw}

    return [
        # a: 生态环境局 signs in 0.5 h, feedback after 10 h, closed -> on time
        ev("a", "dispatch", 0, dept="生态环境局", district="崇川区", deadline_ms=1 * H),
        ev("a", "sign", 0.5, deadline_ms=int(0.5 * H) + 24 * H),
        ev("a", "handle", 1),
        ev("a", "feedback", 10.5),
        ev("a", "close", 11),
        # b: 生态环境局 rejects after 2 h (past the 1 h sign-off deadline: overdue),
        #    re-dispatched to 城市管理局 which signs in 0.25 h and is still handling
        ev("b", "dispatch", 0, dept="生态环境局", district="海门区", deadline_ms=1 * H),
        ev("b", "escalate", 1.01, kind="signoff"),
        ev("b", "reject", 2, reason="不属本部门"),
        ev("b", "dispatch", 2, dept="城市管理局", district="海门区", deadline_ms=3 * H),
        ev("b", "sign", 2.25, deadline_ms=int(2.25 * H) + 24 * H),
        # c: 城市管理局 never signs: overdue by now (no escalate event needed)
        ev("c", "dispatch", 5, dept="城市管理局", district="崇川区", deadline_ms=6 * H),
        # d: closed without dispatch (false alarm): no cycle, no figures
        ev("d", "close", 1, district="崇川区"),
        # junk the stream might hold: skipped
        {"action": "sign"},
        {"id": "z", "action": "sign", "ts_ms": "soon"},
        {},
    ]


def test_metrics_per_department_and_district() -> None:
    m = compute_metrics(_script(), now_ms=int(20 * H))
    env, city = m["by_dept"]["生态环境局"], m["by_dept"]["城市管理局"]
    assert (env["dispatched"], env["signed"], env["rejected"], env["closed"]) == (2, 1, 1, 1)
    assert env["signoff_ms_mean"] == 0.5 * H
    assert env["handling_ms_mean"] == 10 * H
    assert env["rejection_rate"] == 0.5
    assert env["overdue_rate"] == 0.5
    assert env["closure_rate"] == 0.5
    assert (city["dispatched"], city["signed"], city["closed"], city["overdue"]) == (2, 1, 0, 1)
    assert city["signoff_ms_median"] == 0.25 * H
    assert city["handling_ms_mean"] is None
    assert city["rejection_rate"] == 0.0
    assert city["closure_rate"] == 0.0
    cc, hm = m["by_district"]["崇川区"], m["by_district"]["海门区"]
    assert (cc["dispatched"], cc["overdue"], cc["closed"]) == (2, 1, 1)
    assert (hm["dispatched"], hm["overdue"], hm["rejected"]) == (2, 1, 1)
    total = m["total"]
    assert (total["dispatched"], total["overdue"]) == (4, 2)
    assert total["overdue_rate"] == 0.5
    assert total["closure_rate"] == 0.25
    assert total["signoff_ms_mean"] == pytest.approx((0.5 + 0.25) / 2 * H)


def test_metrics_at_an_earlier_time_do_not_count_future_overdue() -> None:
    m = compute_metrics(_script(), now_ms=int(5.5 * H))
    assert m["by_dept"]["城市管理局"]["overdue"] == 0  # c's deadline (6 h) not reached yet


def test_metrics_of_nothing() -> None:
    m = compute_metrics([], now_ms=0)
    assert m["total"]["dispatched"] == 0
    assert m["total"]["closure_rate"] is None
    assert m["by_dept"] == {}
    assert m["by_district"] == {}


@pytest.mark.integration
def test_report_command_prints_metrics_from_redis(
    settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from citywatch.commands import report

    for ev in _script():
        redis_client.xadd(settings.keys.audit, {"e": orjson.dumps(ev)})
    redis_client.xadd(settings.keys.audit, {"e": b"{broken"})
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("CW_PREFIX", settings.prefix)
    out = io.StringIO()
    with redirect_stdout(out):
        assert report.run(argparse.Namespace(config=None, json=True)) == 0
    m = orjson.loads(out.getvalue().strip().splitlines()[-1])
    assert m["by_dept"]["生态环境局"]["rejection_rate"] == 0.5
    assert m["total"]["dispatched"] == 4
    out = io.StringIO()
    with redirect_stdout(out):
        assert report.run(argparse.Namespace(config=None, json=False)) == 0
    text = out.getvalue()
    assert "生态环境局" in text
    assert "海门区" in text
    assert "50.0%" in text


# -- protocol ---------------------------------------------------------------------------------


def test_module_doctests() -> None:
    for mod in (lifecycle, protocol):
        result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0, mod.__name__
        assert result.failed == 0, mod.__name__


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 70_000])
def test_text_frames_are_what_websockets_would_send(size: int) -> None:
    from websockets.frames import OP_TEXT, Frame

    payload = b"x" * size
    expected = Frame(OP_TEXT, payload).serialize(mask=False, extensions=[])
    assert protocol.text_frame(payload) == expected


def test_action_messages_become_commands() -> None:
    msg = protocol.parse(
        orjson.dumps(
            {
                "op": "action",
                "action": "shelve",
                "id": "abc-19",
                "actor": "王",
                "reason": "夜间",
                "until_ms": 123,
                "req": 5,
            }
        )
    )
    assert isinstance(msg, protocol.Action)
    # the client's "actor" is not read: the server fills in who logged in
    assert msg.command == Command("shelve", "abc-19", actor="", reason="夜间", until_ms=123)
    assert msg.req == "5"
    with pytest.raises(protocol.ProtocolError, match="not one of"):
        protocol.parse(b'{"op":"action","action":"escalate","id":"a"}')  # system only
