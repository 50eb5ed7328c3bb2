"""The officers simulator: deterministic per alert, legal stories, behaviour as configured."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from simulators.officers import (
    DeptBehaviour,
    DutyBehaviour,
    OfficerAction,
    Officers,
    simulate_officers,
)
from sinks.feed.lifecycle import Command, Deadlines, IllegalTransition, Status, WorkOrder, plan

DAY = 86_400_000
RULES = ("air.spike", "vehicle.dwell", "worksite.resumption", "hotline.duplicate", "x.other")


def _alerts(n: int, seed: int = 3) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"a{i}",
            "rule": RULES[i % len(RULES)],
            "level": ("blue", "yellow", "orange", "red")[rng.randrange(4)],
            "first_ts": 1_000_000 + rng.randrange(7 * DAY),
        }
        for i in range(n)
    ]


def _stories(actions: list[OfficerAction]) -> dict[str, list[OfficerAction]]:
    out: dict[str, list[OfficerAction]] = defaultdict(list)
    for a in actions:
        out[a.id].append(a)
    return out


def test_same_alert_same_story_whatever_the_batch() -> None:
    alerts = _alerts(200)
    whole = simulate_officers(alerts, seed=5, until_ms=30 * DAY)
    shuffled = alerts[::-1]
    assert simulate_officers(shuffled, seed=5, until_ms=30 * DAY) == whole
    one = simulate_officers(alerts[7:8], seed=5, until_ms=30 * DAY)
    assert one == [a for a in whole if a.id == "a7"]
    assert simulate_officers(alerts, seed=6, until_ms=30 * DAY) != whole
    assert [a.ts_ms for a in whole] == sorted(a.ts_ms for a in whole)


def test_every_story_is_legal_for_the_state_machine_and_the_roles() -> None:
    """Replay each alert's commands through the pure machine (with the system reopening a
    shelving at its end) and check who sends what."""
    deadlines = Deadlines(signoff_ms=1_800_000, handling_ms=7 * DAY)
    stories = _stories(simulate_officers(_alerts(600), seed=2, until_ms=40 * DAY))
    seen: Counter[str] = Counter()
    for aid, story in stories.items():
        order = WorkOrder()
        for a in story:
            if order.status is Status.SHELVED and a.ts_ms >= order.shelved_until:
                order = plan(
                    order, Command("reopen", aid), now_ms=order.shelved_until, deadlines=deadlines
                ).order
            cmd = Command(
                a.action, aid, actor=a.actor.name, dept=a.dept, reason=a.reason, note=a.note,
                until_ms=a.until_ms,
            )  # fmt: skip
            try:
                order = plan(order, cmd, now_ms=a.ts_ms, deadlines=deadlines).order
            except IllegalTransition as exc:
                pytest.fail(f"{aid}: {exc} in {[x.action for x in story]}")
            assert a.action in a.actor.actions, (a.action, a.actor)
            if a.actor.dept is not None:
                assert a.actor.dept == order.dept
            seen[a.action] += 1
    # every kind of command happens in 600 alerts
    assert set(seen) == {
        "dispatch",
        "sign",
        "reject",
        "handle",
        "feedback",
        "close",
        "shelve",
        "reopen",
    }


def test_shares_follow_the_behaviour() -> None:
    office = Officers(
        depts={
            "生态环境局": DeptBehaviour(reject_p=0.2, late_sign_p=0.3, rework_p=0.0, reopen_p=0.0)
        },
        duty=DutyBehaviour(dismiss_p=0.0, shelve_p=0.0),
        routes={"air.": "生态环境局"},
    )
    alerts = [
        {"id": f"a{i}", "rule": "air.spike", "level": "red", "first_ts": 0} for i in range(2000)
    ]
    stories = _stories(simulate_officers(alerts, seed=1, until_ms=60 * DAY, officers=office))
    first = [s for s in stories.values()]
    rejected = sum(1 for s in first if s[1].action == "reject")
    assert rejected / len(first) == pytest.approx(0.2, abs=0.03)
    # late: the sign-off of the first department after its 30 min deadline
    signs = [(s[0].ts_ms, s[1].ts_ms) for s in first if s[1].action == "sign"]
    late = sum(1 for d, sg in signs if sg - d > 1_800_000)
    assert late / len(signs) == pytest.approx(0.3, abs=0.03)
    # a rejected order goes to the fallback department and is not rejected again
    for s in first:
        if s[1].action == "reject":
            assert s[2].action == "dispatch"
            assert s[2].dept == "属地街道"
            assert s[3].action == "sign"


def test_nothing_after_the_horizon_and_bad_alerts_skipped() -> None:
    alerts = [*_alerts(50), {"id": "x"}, {"first_ts": 5}, {"id": "y", "first_ts": "soon"}]
    until = 1_000_000 + 2 * DAY
    acts = simulate_officers(alerts, seed=1, until_ms=until)
    assert acts
    assert max(a.ts_ms for a in acts) <= until
    assert {a.id for a in acts} <= {f"a{i}" for i in range(50)}
    # a story cut by the horizon is a prefix of the full one
    full = _stories(simulate_officers(alerts, seed=1, until_ms=60 * DAY))
    for aid, story in _stories(acts).items():
        assert story == full[aid][: len(story)]
