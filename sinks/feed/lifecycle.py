"""The work-order state machine on top of an alert, and the effectiveness metrics (pure, no I/O).

An alert becomes a work order (docs/protocol.md)::

    new --dispatch--> dispatched --sign--> signed --handle--> handling --feedback--> feedback
                          |  ^                |                                         |
                          |  +--dispatch--+   +----------------feedback-----------------+
                       reject             |                                          close
                          v               |                                           v
                       rejected --dispatch+                                         closed
    new | rejected | feedback --close--> closed;   feedback --handle--> handling (rework)
    new | dispatched | rejected | signed | handling --shelve(until, reason)--> shelved
    shelved | closed --reopen--> new;   a shelved order reopens by itself at ``until``

``escalate`` is the system's action when a deadline passes: sign-off (``dispatched`` for longer
than ``signoff_deadline_s``) or handling (``signed``/``handling`` for longer than
``handling_deadline_s``). It keeps the status and marks the order ``overdue``.

Three-tier command (:mod:`citywatch.tiers`): every order belongs to a centre (``centre``),
first the one its rule and place route it to, and deadlines are those of that centre's tier.
An escalation moves an order to the centre above (town -> county -> city), which gets a fresh
deadline of the same kind; at the city it only marks the order overdue. Every audit event
carries the order's ``centre`` and ``tier``; an ``escalate`` event also ``from_centre`` and
``to_centre``.

:func:`plan` checks one command against the machine and returns the new fields and the audit
event; the store writes both atomically (compare-and-set on ``rev``). :func:`compute_metrics`
folds an audit stream into the figures the centre is judged on.

>>> wo = WorkOrder()
>>> t = plan(wo, Command("dispatch", "a1", actor="张三", dept="生态环境局"), now_ms=1000,
...          deadlines=Deadlines(signoff_ms=60_000, handling_ms=600_000))
>>> t.order.status.value, t.order.dept, t.order.deadline_ms, t.event["from"], t.event["to"]
('dispatched', '生态环境局', 61000, 'new', 'dispatched')
>>> plan(t.order, Command("close", "a1"), now_ms=2000, deadlines=Deadlines(1, 1))
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
sinks.feed.lifecycle.IllegalTransition: close: not allowed from dispatched (allowed: sign, ...
"""

from __future__ import annotations

import enum
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from citywatch.errors import CitywatchError
from citywatch.settings import Settings
from citywatch.tiers import (
    DEFAULT_RULE_TIERS,
    Tier,
    centre_tier,
    escalation_chain,
    parse_rule_tiers,
    parse_tier_seconds,
    route,
)

__all__ = [
    "ACTIONS",
    "Action",
    "Command",
    "Cycle",
    "Deadlines",
    "IllegalTransition",
    "Status",
    "Transition",
    "WorkOrder",
    "allowed_actions",
    "compute_metrics",
    "dispatch_cycles",
    "plan",
]


class IllegalTransition(CitywatchError):
    """A command that the state machine does not allow from the current status."""


class Status(enum.StrEnum):
    NEW = "new"
    DISPATCHED = "dispatched"
    SIGNED = "signed"
    REJECTED = "rejected"
    HANDLING = "handling"
    FEEDBACK = "feedback"
    CLOSED = "closed"
    SHELVED = "shelved"


class Action(enum.StrEnum):
    DISPATCH = "dispatch"
    SIGN = "sign"
    REJECT = "reject"
    HANDLE = "handle"
    FEEDBACK = "feedback"
    CLOSE = "close"
    SHELVE = "shelve"
    REOPEN = "reopen"
    #: System only: a deadline passed. Officers cannot send it.
    ESCALATE = "escalate"


#: Actions an officer may send over the socket.
ACTIONS: Final[frozenset[str]] = frozenset(a.value for a in Action if a is not Action.ESCALATE)

S, A = Status, Action
_NEXT: Final[dict[tuple[Status, Action], Status]] = {
    (S.NEW, A.DISPATCH): S.DISPATCHED,
    (S.NEW, A.CLOSE): S.CLOSED,
    (S.NEW, A.SHELVE): S.SHELVED,
    (S.DISPATCHED, A.SIGN): S.SIGNED,
    (S.DISPATCHED, A.REJECT): S.REJECTED,
    (S.DISPATCHED, A.DISPATCH): S.DISPATCHED,
    (S.DISPATCHED, A.SHELVE): S.SHELVED,
    (S.DISPATCHED, A.ESCALATE): S.DISPATCHED,
    (S.REJECTED, A.DISPATCH): S.DISPATCHED,
    (S.REJECTED, A.CLOSE): S.CLOSED,
    (S.REJECTED, A.SHELVE): S.SHELVED,
    (S.SIGNED, A.HANDLE): S.HANDLING,
    (S.SIGNED, A.FEEDBACK): S.FEEDBACK,
    (S.SIGNED, A.SHELVE): S.SHELVED,
    (S.SIGNED, A.ESCALATE): S.SIGNED,
    (S.HANDLING, A.FEEDBACK): S.FEEDBACK,
    (S.HANDLING, A.SHELVE): S.SHELVED,
    (S.HANDLING, A.ESCALATE): S.HANDLING,
    (S.FEEDBACK, A.CLOSE): S.CLOSED,
    (S.FEEDBACK, A.HANDLE): S.HANDLING,
    (S.CLOSED, A.REOPEN): S.NEW,
    (S.SHELVED, A.REOPEN): S.NEW,
}
del S, A

#: Statuses in which the centre still waits for someone (a work order is "active").
ACTIVE: Final[frozenset[Status]] = frozenset(
    {
        Status.DISPATCHED,
        Status.SIGNED,
        Status.REJECTED,
        Status.HANDLING,
        Status.FEEDBACK,
        Status.SHELVED,
    }
)


def allowed_actions(status: Status | str) -> list[str]:
    """The actions an officer may take from ``status``, in table order."""
    st = Status(status)
    return [a.value for (s, a) in _NEXT if s is st and a is not Action.ESCALATE]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long a department has to sign (from dispatch) and to hand in feedback (from sign):
    ``signoff_ms``/``handling_ms``, unless ``by_tier`` has the tier of the order's centre
    (tier -> (signoff_ms, handling_ms); a 0 there falls back).

    >>> d = Deadlines(1_000, 9_000, by_tier={Tier.TOWN: (500, 0)})
    >>> d.signoff(Tier.TOWN), d.handling(Tier.TOWN), d.signoff(Tier.CITY), d.signoff(None)
    (500, 9000, 1000, 1000)
    """

    signoff_ms: int
    handling_ms: int
    by_tier: Mapping[Tier, tuple[int, int]] = field(default_factory=dict)

    def signoff(self, tier: Tier | None) -> int:
        own = self.by_tier.get(tier, (0, 0))[0] if tier is not None else 0
        return own or self.signoff_ms

    def handling(self, tier: Tier | None) -> int:
        own = self.by_tier.get(tier, (0, 0))[1] if tier is not None else 0
        return own or self.handling_ms

    @classmethod
    def from_settings(cls, settings: Settings) -> Deadlines:
        """``signoff_deadline_s``/``handling_deadline_s`` and the per-tier overrides."""
        sign = parse_tier_seconds(settings.tier_signoff_deadline_s)
        handle = parse_tier_seconds(settings.tier_handling_deadline_s)
        by_tier = {
            t: (int(sign.get(t, 0) * 1000), int(handle.get(t, 0) * 1000))
            for t in Tier
            if t in sign or t in handle
        }
        return cls(
            signoff_ms=int(settings.signoff_deadline_s * 1000),
            handling_ms=int(settings.handling_deadline_s * 1000),
            by_tier=by_tier,
        )


def rule_table(settings: Settings) -> dict[str, Tier]:
    """The rule -> tier table: :data:`citywatch.tiers.DEFAULT_RULE_TIERS` with the settings'
    ``rule_tiers`` over it."""
    return parse_rule_tiers(settings.rule_tiers)


def routed_centre(
    alert: Mapping[str, Any] | None, rules: Mapping[str, Tier] = DEFAULT_RULE_TIERS
) -> str:
    """The centre an alert's work order belongs to by rule and place ("" without an alert)."""
    if not alert:
        return ""
    district, town, rule = (_opt(alert.get(k)) for k in ("district", "town", "rule"))
    return route(rule or "", district=district, town=town, table=rules)


def _opt(v: Any) -> str | None:
    return _s(v) if v not in (None, "", b"") else None


@dataclass(frozen=True, slots=True)
class Command:
    """One officer (or system) action on the work order of alert ``id``.

    ``actor`` (a display name), ``actor_id``, ``role`` and ``actor_dept`` come from the
    identity that logged in (``citywatch.identity``), never from the client's message.
    """

    action: str
    id: str
    actor: str = "system"
    dept: str | None = None
    assignee: str | None = None
    reason: str | None = None
    note: str | None = None
    until_ms: int | None = None
    actor_id: str | None = None
    role: str | None = None
    actor_dept: str | None = None


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """The lifecycle fields of ``cw:alert:{id}`` (docs/contracts.md), as the feed service owns them.

    ``rev`` counts transitions: the store's compare-and-set key. ``overdue`` is ``""``,
    ``"signoff"`` or ``"handling"``. ``due_ms`` is when the store must look at the order again
    (a deadline, or the end of a shelving), 0 for never. ``centre`` is the centre that owns the
    order now ("" until its first transition: then the routed one).
    """

    status: Status = Status.NEW
    dept: str = ""
    assignee: str = ""
    shelved_until: int = 0
    deadline_ms: int = 0
    updated_ms: int = 0
    updated_by: str = ""
    overdue: str = ""
    rev: int = 0
    centre: str = ""

    @property
    def due_ms(self) -> int:
        if self.status is Status.SHELVED:
            return self.shelved_until
        if self.overdue and self.at_top:
            return 0  # escalated where nobody is above: nothing more to watch
        return self.deadline_ms

    @property
    def at_top(self) -> bool:
        """Whether no centre is above this order's (the city, or no centre known)."""
        return not self.centre or centre_tier(self.centre) is Tier.CITY

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @classmethod
    def from_fields(cls, raw: Mapping[Any, Any]) -> WorkOrder:
        """From a Redis hash (bytes or str keys/values); unknown or bad values fall back."""
        d = {_s(k): _s(v) for k, v in raw.items() if v is not None}
        try:
            status = Status(d.get("status") or "new")
        except ValueError:
            status = Status.NEW
        return cls(
            status=status,
            dept=d.get("dept", ""),
            assignee=d.get("assignee", ""),
            shelved_until=_int(d.get("shelved_until")),
            deadline_ms=_int(d.get("deadline_ms")),
            updated_ms=_int(d.get("updated_ms")),
            updated_by=d.get("updated_by", ""),
            overdue=d.get("overdue", ""),
            rev=_int(d.get("rev")),
            centre=d.get("centre", ""),
        )

    def to_fields(self) -> dict[str, str]:
        """Every lifecycle field as strings, for HSET."""
        return {
            "status": self.status.value,
            "dept": self.dept,
            "assignee": self.assignee,
            "shelved_until": str(self.shelved_until),
            "deadline_ms": str(self.deadline_ms),
            "updated_ms": str(self.updated_ms),
            "updated_by": self.updated_by,
            "overdue": self.overdue,
            "rev": str(self.rev),
            "centre": self.centre,
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON view sent to clients."""
        return {
            "status": self.status.value,
            "dept": self.dept or None,
            "assignee": self.assignee or None,
            "shelved_until": self.shelved_until or None,
            "deadline_ms": self.deadline_ms or None,
            "updated_ms": self.updated_ms or None,
            "updated_by": self.updated_by or None,
            "overdue": self.overdue or None,
            "rev": self.rev,
            "centre": self.centre or None,
        }


def _s(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)


def _int(v: str | None) -> int:
    try:
        return int(v) if v else 0
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of :func:`plan`: the order after the command and its audit event."""

    before: WorkOrder
    order: WorkOrder
    event: dict[str, Any]


def plan(
    order: WorkOrder,
    cmd: Command,
    *,
    now_ms: int,
    deadlines: Deadlines,
    alert: Mapping[str, Any] | None = None,
    rules: Mapping[str, Tier] = DEFAULT_RULE_TIERS,
) -> Transition:
    """Check ``cmd`` against the machine from ``order`` and compute the new order and audit event.

    ``alert`` (the hash's ``district``, ``rule``, ``level``) is copied into the event so metrics
    can be computed from the audit stream alone; with its ``town`` and ``rules`` it routes an
    order that has no centre yet. Raises :class:`IllegalTransition`.
    """
    if not cmd.actor:
        msg = f"{cmd.action}: no actor (the server names who acts)"
        raise IllegalTransition(msg)
    try:
        action = Action(cmd.action)
    except ValueError as exc:
        msg = f"action: {cmd.action!r} is not one of {', '.join(sorted(ACTIONS))}"
        raise IllegalTransition(msg) from exc
    nxt = _NEXT.get((order.status, action))
    if nxt is None:
        allowed = ", ".join(allowed_actions(order.status)) or "none"
        msg = f"{action.value}: not allowed from {order.status.value} (allowed: {allowed})"
        raise IllegalTransition(msg)
    centre = order.centre or routed_centre(alert, rules)
    tier = centre_tier(centre) if centre else None
    changes: dict[str, Any] = {
        "status": nxt,
        "updated_ms": now_ms,
        "updated_by": cmd.actor,
        "centre": centre,
    }
    extra: dict[str, Any] = {}
    if action is Action.DISPATCH:
        if not cmd.dept:
            msg = "dispatch: needs a department (dept)"
            raise IllegalTransition(msg)
        changes.update(
            dept=cmd.dept,
            assignee=cmd.assignee or "",
            overdue="",
            deadline_ms=now_ms + deadlines.signoff(tier),
        )
    elif action is Action.SIGN:
        changes.update(deadline_ms=now_ms + deadlines.handling(tier), overdue="")
        if cmd.assignee:
            changes["assignee"] = cmd.assignee
    elif action is Action.REJECT:
        if not cmd.reason:
            msg = "reject: needs a reason"
            raise IllegalTransition(msg)
        changes.update(deadline_ms=0, overdue="")
    elif action is Action.FEEDBACK:
        changes.update(deadline_ms=0)
    elif action is Action.HANDLE:
        if order.status is Status.FEEDBACK:  # rework: a fresh handling deadline
            changes.update(deadline_ms=now_ms + deadlines.handling(tier), overdue="")
    elif action is Action.CLOSE:
        changes.update(deadline_ms=0)
    elif action is Action.SHELVE:
        if not cmd.reason:
            msg = "shelve: needs a reason"
            raise IllegalTransition(msg)
        if cmd.until_ms is None or cmd.until_ms <= now_ms:
            msg = f"shelve: until_ms {cmd.until_ms!r} must be in the future (now {now_ms})"
            raise IllegalTransition(msg)
        changes.update(shelved_until=cmd.until_ms, deadline_ms=0)
        extra["until_ms"] = cmd.until_ms
    elif action is Action.REOPEN:  # back to the centre its rule and place route it to
        centre = routed_centre(alert, rules) or centre
        tier = centre_tier(centre) if centre else None
        changes.update(
            shelved_until=0, deadline_ms=0, overdue="", dept="", assignee="", centre=centre
        )
    elif action is Action.ESCALATE:
        due = replace(order, centre=centre)
        if not order.deadline_ms or order.deadline_ms > now_ms or not due.due_ms:
            msg = f"escalate: order is not past an open deadline ({order.deadline_ms})"
            raise IllegalTransition(msg)
        kind = "signoff" if order.status is Status.DISPATCHED else "handling"
        chain = escalation_chain(centre, district=_opt((alert or {}).get("district")))
        changes.update(overdue=kind)
        extra.update(kind=kind, late_ms=now_ms - order.deadline_ms, from_centre=centre or None)
        if centre and len(chain) > 1:  # the centre above takes it over, with its own deadline
            centre = chain[1]
            tier = centre_tier(centre)
            limit = deadlines.signoff(tier) if kind == "signoff" else deadlines.handling(tier)
            changes.update(centre=centre, deadline_ms=now_ms + limit)
        extra["to_centre"] = centre or None
    new = replace(order, rev=order.rev + 1, **changes)
    event: dict[str, Any] = {
        "id": cmd.id,
        "action": action.value,
        "actor": cmd.actor,
        "ts_ms": now_ms,
        "from": order.status.value,
        "to": new.status.value,
        "dept": new.dept or order.dept or None,
        "assignee": new.assignee or None,
        "deadline_ms": new.deadline_ms or None,
        "overdue": new.overdue or None,
        "rev": new.rev,
        "centre": new.centre or None,
        "tier": tier.value if tier is not None else None,
    }
    for name in ("reason", "note", "actor_id", "role", "actor_dept"):
        value = getattr(cmd, name)
        if value:
            event[name] = value
    event.update(extra)
    if alert is not None:
        for name in ("district", "rule", "level"):
            value = alert.get(name)
            event[name] = _s(value) if value is not None else None
    return Transition(before=order, order=new, event=event)


# -- metrics ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Cycle:
    """One dispatch of one alert to one department, until closure or the next dispatch.

    The unit every effectiveness figure counts (:func:`dispatch_cycles`). Times are the audit
    events' ``ts_ms``. ``feedback_ms`` holds every feedback of the cycle (a rework adds one);
    ``reworks`` counts feedbacks sent back for more handling; ``reopened`` is set when the
    cycle was closed and the order was later reopened from ``closed`` (the problem came
    back). ``centre`` and ``tier`` are those of the dispatch event ("" in audits written
    before they existed); ``escalated``: the order moved up to a higher centre.
    """

    id: str
    dept: str
    district: str
    dispatch_ms: int
    deadline_ms: int
    rule: str = ""
    level: str = ""
    centre: str = ""
    tier: str = ""
    sign_ms: int | None = None
    feedback_ms: list[int] = field(default_factory=list)
    reject_ms: int | None = None
    close_ms: int | None = None
    reworks: int = 0
    reopened: bool = False
    overdue: bool = False
    escalated: bool = False
    ended: bool = False

    @property
    def signoff_ms(self) -> int | None:
        """Dispatch -> sign, or None (not signed)."""
        return None if self.sign_ms is None else self.sign_ms - self.dispatch_ms

    @property
    def handling_ms(self) -> int | None:
        """Sign -> first feedback, or None."""
        if self.sign_ms is None or not self.feedback_ms:
            return None
        return self.feedback_ms[0] - self.sign_ms


def dispatch_cycles(events: Iterable[Mapping[str, Any]], *, now_ms: int) -> list[Cycle]:
    """Fold audit events (in stream order) into dispatch cycles, oldest dispatch first.

    A cycle is overdue when it was escalated, answered (signed, rejected, fed back) after its
    deadline, re-dispatched past it, or is still waiting past it at ``now_ms``. Events
    missing fields are skipped, never fatal.

    >>> ev = [
    ...   {"id": "a", "action": "dispatch", "ts_ms": 0, "dept": "D1", "deadline_ms": 100},
    ...   {"id": "a", "action": "sign", "ts_ms": 40, "deadline_ms": 1000},
    ...   {"id": "a", "action": "feedback", "ts_ms": 540},
    ...   {"id": "a", "action": "handle", "ts_ms": 560, "from": "feedback", "deadline_ms": 900},
    ...   {"id": "a", "action": "feedback", "ts_ms": 700},
    ...   {"id": "a", "action": "close", "ts_ms": 800},
    ...   {"id": "a", "action": "reopen", "ts_ms": 900, "from": "closed"},
    ... ]
    >>> [(c.signoff_ms, c.handling_ms, c.reworks, c.close_ms, c.reopened, c.overdue)
    ...  for c in dispatch_cycles(ev, now_ms=1000)]
    [(40, 500, 1, 800, True, False)]
    """
    cycles: list[Cycle] = []
    current: dict[str, Cycle] = {}
    last_closed: dict[str, Cycle] = {}
    district_of: dict[str, str] = {}
    for ev in events:
        try:
            aid = str(ev["id"])
            action = str(ev["action"])
            ts = int(ev["ts_ms"])
        except (KeyError, TypeError, ValueError):
            continue
        if ev.get("district"):
            district_of[aid] = str(ev["district"])
        cyc = current.get(aid)
        if action == Action.DISPATCH:
            if cyc is not None and not cyc.ended and cyc.deadline_ms and ts > cyc.deadline_ms:
                cyc.overdue = True
            cyc = Cycle(
                id=aid,
                dept=str(ev.get("dept") or "?"),
                district=district_of.get(aid, "?"),
                dispatch_ms=ts,
                deadline_ms=_int(str(ev.get("deadline_ms") or 0)),
                rule=str(ev.get("rule") or ""),
                level=str(ev.get("level") or ""),
                centre=str(ev.get("centre") or ""),
                tier=str(ev.get("tier") or ""),
            )
            current[aid] = cyc
            cycles.append(cyc)
            continue
        if action == Action.REOPEN and ev.get("from") == Status.CLOSED.value:
            closed = last_closed.pop(aid, None)
            if closed is not None:
                closed.reopened = True
        if cyc is None or cyc.ended:
            continue
        late = bool(cyc.deadline_ms) and ts > cyc.deadline_ms
        if action == Action.SIGN and cyc.sign_ms is None:
            cyc.overdue |= late
            cyc.sign_ms = ts
            cyc.deadline_ms = _int(str(ev.get("deadline_ms") or 0))
        elif action == Action.REJECT:
            cyc.overdue |= late
            cyc.ended = True
            cyc.reject_ms = ts
        elif action == Action.FEEDBACK and cyc.sign_ms is not None:
            cyc.overdue |= late
            cyc.deadline_ms = 0
            cyc.feedback_ms.append(ts)
        elif action == Action.HANDLE and ev.get("deadline_ms"):
            cyc.deadline_ms = _int(str(ev.get("deadline_ms")))
            if ev.get("from") == Status.FEEDBACK.value:
                cyc.reworks += 1
        elif action == Action.ESCALATE:
            cyc.overdue = True
            if ev.get("to_centre") and ev.get("to_centre") != ev.get("from_centre"):
                cyc.escalated = True
        elif action == Action.CLOSE:
            cyc.ended = True
            cyc.close_ms = ts
            last_closed[aid] = cyc
        elif action == Action.SHELVE:
            cyc.deadline_ms = 0
        elif action == Action.REOPEN:
            cyc.ended = True
    for cyc in current.values():
        if not cyc.ended and cyc.deadline_ms and now_ms > cyc.deadline_ms:
            cyc.overdue = True
    return cycles


@dataclass(slots=True)
class _Group:
    dispatched: int = 0
    signed: int = 0
    rejected: int = 0
    closed: int = 0
    overdue: int = 0
    escalated: int = 0
    signoff_ms: list[int] = field(default_factory=list)
    handling_ms: list[int] = field(default_factory=list)

    def add(self, c: Cycle) -> None:
        self.dispatched += 1
        self.overdue += c.overdue
        self.escalated += c.escalated
        self.rejected += c.reject_ms is not None
        self.closed += c.close_ms is not None
        if c.sign_ms is not None:
            self.signed += 1
            self.signoff_ms.append(c.sign_ms - c.dispatch_ms)
            self.handling_ms.extend(f - c.sign_ms for f in c.feedback_ms)

    def as_dict(self) -> dict[str, Any]:
        answered = self.signed + self.rejected
        return {
            "dispatched": self.dispatched,
            "signed": self.signed,
            "rejected": self.rejected,
            "closed": self.closed,
            "overdue": self.overdue,
            "escalated": self.escalated,
            "signoff_ms_mean": _mean(self.signoff_ms),
            "signoff_ms_median": _median(self.signoff_ms),
            "handling_ms_mean": _mean(self.handling_ms),
            "handling_ms_median": _median(self.handling_ms),
            "rejection_rate": _rate(self.rejected, answered),
            "overdue_rate": _rate(self.overdue, self.dispatched),
            "closure_rate": _rate(self.closed, self.dispatched),
        }


def _mean(xs: list[int]) -> float | None:
    return round(statistics.fmean(xs), 1) if xs else None


def _median(xs: list[int]) -> float | None:
    return float(statistics.median(xs)) if xs else None


def _rate(n: int, d: int) -> float | None:
    return round(n / d, 4) if d else None


def compute_metrics(events: Iterable[Mapping[str, Any]], *, now_ms: int) -> dict[str, Any]:
    """Effectiveness figures from audit events (in stream order), in total and per department,
    district, tier (``town``/``county``/``city``) and centre (``town:T...``, ...).

    Unit of count: a dispatch *cycle* (:func:`dispatch_cycles`). Sign-off time is dispatch ->
    sign; handling time is sign -> feedback (every feedback of the cycle); rejection rate is
    rejected / (signed + rejected); overdue rate is overdue cycles / dispatched cycles;
    closure rate is closed cycles / dispatched cycles. A cycle counts for the centre and tier
    that owned the order when it was dispatched (the dispatch event's ``centre``/``tier``;
    ``?`` in audits written before they existed), so an escalation is charged to the centre
    that let the deadline pass; ``escalated`` counts the cycles moved up to a higher centre.

    >>> ev = [
    ...   {"id": "a", "action": "dispatch", "ts_ms": 0, "dept": "D1", "district": "崇川区",
    ...    "deadline_ms": 100},
    ...   {"id": "a", "action": "sign", "ts_ms": 40, "deadline_ms": 1000},
    ...   {"id": "a", "action": "feedback", "ts_ms": 540},
    ...   {"id": "a", "action": "close", "ts_ms": 600},
    ...   {"id": "b", "action": "dispatch", "ts_ms": 0, "dept": "D1", "district": "海门区",
    ...    "deadline_ms": 100},
    ...   {"id": "b", "action": "reject", "ts_ms": 150, "reason": "不属本部门"},
    ... ]
    >>> m = compute_metrics(ev, now_ms=1000)["by_dept"]["D1"]
    >>> m["dispatched"], m["signoff_ms_mean"], m["handling_ms_mean"], m["rejection_rate"]
    (2, 40.0, 500.0, 0.5)
    >>> m["overdue_rate"], m["closure_rate"]
    (0.5, 0.5)
    """
    groups: dict[str, dict[str, _Group]] = {k: {} for k in ("dept", "district", "tier", "centre")}
    total = _Group()
    for c in dispatch_cycles(events, now_ms=now_ms):
        keys = {"dept": c.dept, "district": c.district, "tier": c.tier, "centre": c.centre}
        for name, key in keys.items():
            groups[name].setdefault(key or "?", _Group()).add(c)
        total.add(c)

    def table(name: str, order: Any = None) -> dict[str, Any]:
        return {k: v.as_dict() for k, v in sorted(groups[name].items(), key=order)}

    return {
        "now_ms": now_ms,
        "total": total.as_dict(),
        "by_dept": table("dept"),
        "by_district": table("district"),
        "by_tier": table("tier", _tier_order),
        "by_centre": table("centre", _tier_order),
    }


_TIER_RANK: Final = {"city": 0, "county": 1, "town": 2}


def _tier_order(item: tuple[str, Any]) -> tuple[int, str]:
    """City first, then counties, then towns (then anything else), by name within a tier."""
    return _TIER_RANK.get(item[0].split(":", 1)[0], 3), item[0]
