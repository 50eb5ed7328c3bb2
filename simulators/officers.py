"""Simulated officers: what duty officers and departments do with alerts, and when.

The flow raises alerts; people work them through the work-order loop (docs/protocol.md). No
stream records that work, so a replayed week has alerts but no audit, and reports have no
effectiveness figures to show. :func:`simulate_officers` fills that gap: given alerts, it
returns the commands a duty officer and each department's handler would send, with their
event times, drawn from seeded per-department behaviour (:class:`DeptBehaviour`):

- the duty officer dispatches after a short delay, to the department that handles the rule
  (:data:`ROUTES`); a blue alert may be dismissed as a false alarm (closed undispatched), a
  blue or yellow one may first be shelved for a few hours (the system reopens it);
- the department signs after a log-normal delay (a share ``late_sign_p`` past the sign-off
  deadline) or rejects it (``reject_p``: not ours), then the duty officer re-dispatches to
  the alternate department;
- the handler starts, then gives feedback after a log-normal handling time (a share past the
  handling deadline); the duty officer sends a share back for rework (``rework_p``), closes
  the rest, and reopens a share days later (``reopen_p``: the problem came back), which
  starts another dispatch.

Deadlines are not the simulator's business: whoever applies the commands runs the real
state machine, whose escalator marks late orders. Commands after ``until_ms`` are dropped,
so the end of a simulated week leaves orders open, as a real week does. Everything is a pure
function of (seed, alert id): the same alert gets the same story in any order or batch.

>>> alerts = [{"id": "a1", "rule": "air.spike", "level": "orange", "first_ts": 0}]
>>> acts = simulate_officers(alerts, seed=1, until_ms=30 * 86_400_000)
>>> [a.action for a in acts][:3], acts[0].dept
(['dispatch', 'sign', 'handle'], '生态环境局')
>>> acts == simulate_officers(alerts, seed=1, until_ms=30 * 86_400_000)
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from citywatch.identity import Identity, Role
from citywatch.settings import DEFAULT_DEPARTMENTS
from simulators.seeds import entity_hash, py_rng

__all__ = [
    "DEFAULT_BEHAVIOUR",
    "ROUTES",
    "DeptBehaviour",
    "DutyBehaviour",
    "OfficerAction",
    "Officers",
    "handler_of",
    "simulate_officers",
]

MINUTE_S: Final = 60.0
HOUR_S: Final = 3600.0
DAY_S: Final = 86_400.0

#: Rule (exact, or family ending in ".") -> the department a duty officer dispatches it to.
ROUTES: Final[Mapping[str, str]] = {
    "air.": "生态环境局",
    "vehicle.dwell": "交通运输局",
    "vehicle.workshop": "应急管理局",
    "worksite.": "住房和城乡建设局",
    "hotline.": "城市管理局",
    "incident.": "应急管理局",
    "water.": "水利局",
}
#: Where a rejected order goes next (the town or street on the spot handles what is left).
FALLBACK_DEPT: Final = "属地街道"


@dataclass(frozen=True, slots=True)
class DeptBehaviour:
    """How one department answers its orders. Delays are log-normal: ``median`` seconds and
    ``spread`` the sigma of the log; probabilities are per dispatch."""

    sign_median_s: float = 10 * MINUTE_S
    sign_spread: float = 0.8
    #: share of sign-offs after the sign-off deadline (delay: deadline x U(1.2, 4))
    late_sign_p: float = 0.05
    reject_p: float = 0.05
    handle_median_s: float = 6 * HOUR_S
    handle_spread: float = 0.9
    #: share of feedbacks after the handling deadline (deadline x U(1.05, 1.5))
    late_handle_p: float = 0.02
    rework_p: float = 0.08
    reopen_p: float = 0.03


@dataclass(frozen=True, slots=True)
class DutyBehaviour:
    """How the duty officers work: dispatch and closing delays, dismissals and shelving."""

    dispatch_median_s: float = 5 * MINUTE_S
    dispatch_spread: float = 0.7
    close_median_s: float = 40 * MINUTE_S
    close_spread: float = 0.8
    #: a blue alert closed without dispatch (false alarm, checked on the spot)
    dismiss_p: float = 0.1
    #: a blue or yellow alert shelved first (watch a while), for ``shelve_s``
    shelve_p: float = 0.1
    shelve_s: float = 4 * HOUR_S
    #: a closed order that comes back is reopened this long after closing (uniform)
    reopen_after_s: tuple[float, float] = (1 * DAY_S, 3 * DAY_S)


#: Departments differ, so their figures and ranking differ (and a report has something to say).
DEFAULT_BEHAVIOUR: Final[Mapping[str, DeptBehaviour]] = {
    "生态环境局": DeptBehaviour(sign_median_s=8 * MINUTE_S, reject_p=0.03, rework_p=0.06),
    "应急管理局": DeptBehaviour(sign_median_s=5 * MINUTE_S, late_sign_p=0.02, reject_p=0.02),
    "交通运输局": DeptBehaviour(
        sign_median_s=18 * MINUTE_S, late_sign_p=0.15, reject_p=0.08, handle_median_s=10 * HOUR_S
    ),
    "住房和城乡建设局": DeptBehaviour(
        sign_median_s=12 * MINUTE_S, handle_median_s=20 * HOUR_S, late_handle_p=0.08, rework_p=0.15
    ),
    "城市管理局": DeptBehaviour(sign_median_s=10 * MINUTE_S, reject_p=0.12, reopen_p=0.08),
    "属地街道": DeptBehaviour(
        sign_median_s=15 * MINUTE_S, late_sign_p=0.1, handle_median_s=4 * HOUR_S
    ),
}


@dataclass(frozen=True, slots=True)
class OfficerAction:
    """One command an officer sends at event time ``ts_ms`` on the work order of alert ``id``."""

    ts_ms: int
    action: str
    id: str
    actor: Identity
    dept: str | None = None
    reason: str | None = None
    note: str | None = None
    until_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Officers:
    """The simulated centre: duty officers, departments and the deadlines they work to."""

    depts: Mapping[str, DeptBehaviour] = field(default_factory=lambda: dict(DEFAULT_BEHAVIOUR))
    duty: DutyBehaviour = DutyBehaviour()
    routes: Mapping[str, str] = field(default_factory=lambda: dict(ROUTES))
    signoff_deadline_s: float = 1800.0
    handling_deadline_s: float = 7 * DAY_S

    def route(self, rule: str) -> str:
        """The department for ``rule``: an exact entry, else its family, else the fallback."""
        if rule in self.routes:
            return self.routes[rule]
        return self.routes.get(rule.split(".", 1)[0] + ".", FALLBACK_DEPT)

    def behaviour(self, dept: str) -> DeptBehaviour:
        return self.depts.get(dept) or DeptBehaviour()


DUTY: Final = Identity("sim-duty", "模拟值班员", Role.DUTY_OFFICER, centre="city")


def handler_of(dept: str) -> Identity:
    """The simulated handler of ``dept`` (one per department)."""
    if dept in DEFAULT_DEPARTMENTS:
        code = str(DEFAULT_DEPARTMENTS.index(dept))
    else:
        code = f"{entity_hash(dept):08x}"
    return Identity(f"sim-h{code}", f"{dept}办理员", Role.HANDLER, dept=dept)


def _lognormal(rng: random.Random, median_s: float, spread: float) -> float:
    return median_s * math.exp(rng.gauss(0.0, spread))


class _Story:
    """The commands of one alert's work order, built in time order."""

    def __init__(self, alert_id: str, start_ms: int, until_ms: int) -> None:
        self.id = alert_id
        self.t = start_ms
        self.until_ms = until_ms
        self.actions: list[OfficerAction] = []
        self.done = False

    def at(self, delay_s: float) -> int:
        """Event time ``delay_s`` after the last command (at least 1 s later)."""
        return self.t + max(1000, int(delay_s * 1000))

    def add(self, ts_ms: int, action: str, actor: Identity, **fields: Any) -> bool:
        """Append a command at ``ts_ms``; False (and the story ends) past the horizon."""
        if self.done or ts_ms > self.until_ms:
            self.done = True
            return False
        self.t = ts_ms
        self.actions.append(OfficerAction(ts_ms, action, self.id, actor, **fields))
        return True


def simulate_officers(
    alerts: Iterable[Mapping[str, Any]],
    *,
    seed: int,
    until_ms: int,
    officers: Officers | None = None,
) -> list[OfficerAction]:
    """The officers' commands on ``alerts`` (dicts with ``id``, ``rule``, ``level``,
    ``first_ts``), ordered by time; none after ``until_ms``. Alerts without an id or time
    are skipped."""
    office = officers or Officers()
    out: list[OfficerAction] = []
    for a in alerts:
        try:
            aid, first = str(a["id"]), int(a["first_ts"])
        except (KeyError, TypeError, ValueError):
            continue
        rng = py_rng(seed, "officers", aid)
        story = _Story(aid, first, until_ms)
        _work(story, rng, office, str(a.get("rule") or ""), str(a.get("level") or ""))
        out.extend(story.actions)
    out.sort(key=lambda x: (x.ts_ms, x.id))
    return out


def _work(s: _Story, rng: random.Random, office: Officers, rule: str, level: str) -> None:
    duty = office.duty
    # draw every choice up front, in a fixed order: a knob changes only what it governs
    dismiss, shelve, reject, rework, reopen = (rng.random() for _ in range(5))
    dispatch_in = _lognormal(rng, duty.dispatch_median_s, duty.dispatch_spread)
    if level == "blue" and dismiss < duty.dismiss_p:
        s.add(s.at(dispatch_in), "close", DUTY, reason="核实为误报，关闭")
        return
    if level in ("blue", "yellow") and shelve < duty.shelve_p:
        t = s.at(dispatch_in)
        until = t + int(duty.shelve_s * 1000)
        if not s.add(t, "shelve", DUTY, reason="持续观察", until_ms=until):
            return
        s.t = until  # the system reopens it at ``until``
    dept = office.route(rule)
    rejected = reopened = False
    while True:
        if not s.add(s.at(dispatch_in), "dispatch", DUTY, dept=dept):
            return
        b = office.behaviour(dept)
        handler = handler_of(dept)
        if not rejected and reject < b.reject_p:
            rejected = True
            delay = _prompt(rng, b, office)
            if not s.add(s.at(delay), "reject", handler, reason="不属本部门职责"):
                return
            dept = FALLBACK_DEPT if dept != FALLBACK_DEPT else "城市管理局"
            dispatch_in = _lognormal(rng, duty.dispatch_median_s, duty.dispatch_spread)
            continue
        if rng.random() < b.late_sign_p:
            sign_in = office.signoff_deadline_s * rng.uniform(1.2, 4.0)
        else:
            sign_in = _prompt(rng, b, office)
        if not s.add(s.at(sign_in), "sign", handler):
            return
        if not s.add(s.at(rng.uniform(1, 15) * MINUTE_S), "handle", handler):
            return
        if not _feedback(s, rng, b, office, handler, b.handle_median_s):
            return
        close_in = _lognormal(rng, duty.close_median_s, duty.close_spread)
        if rework < b.rework_p:
            rework = 1.0  # once
            # the duty officer sends the feedback back; the handler takes it up again
            if not s.add(s.at(close_in), "handle", handler, note="值班员退回：反馈不充分，重办"):
                return
            if not _feedback(s, rng, b, office, handler, b.handle_median_s / 3):
                return
        if not s.add(s.at(close_in), "close", DUTY, reason="办结"):
            return
        if reopened or reopen >= b.reopen_p:
            return
        reopened = True
        lo, hi = duty.reopen_after_s
        if not s.add(s.at(rng.uniform(lo, hi)), "reopen", DUTY, reason="问题复发，群众再次反映"):
            return
        dispatch_in = _lognormal(rng, duty.dispatch_median_s, duty.dispatch_spread)


def _prompt(rng: random.Random, b: DeptBehaviour, office: Officers) -> float:
    """A sign-off (or rejection) delay within the deadline."""
    delay = _lognormal(rng, b.sign_median_s, b.sign_spread)
    return min(delay, 0.95 * office.signoff_deadline_s)


def _feedback(
    s: _Story,
    rng: random.Random,
    b: DeptBehaviour,
    office: Officers,
    handler: Identity,
    median_s: float,
) -> bool:
    if rng.random() < b.late_handle_p:
        took = office.handling_deadline_s * rng.uniform(1.05, 1.5)
    else:
        took = min(_lognormal(rng, median_s, b.handle_spread), 0.95 * office.handling_deadline_s)
    return s.add(s.at(took), "feedback", handler, note="已现场处置")
