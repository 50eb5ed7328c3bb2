"""The feed's wire protocol: parse and check client messages, build server messages (no I/O).

Every message is one JSON object. Client -> server ops: ``auth``, ``subscribe``, ``action``,
``history``, ``metrics``, ``search``, ``cockpit``, ``ping``. Server -> client types:
``welcome``, ``snapshot``, ``alert``, ``lifecycle``, ``live``, ``heartbeat``, ``ack``,
``history``, ``metrics``, ``search``, ``cockpit``, ``pong``, ``error``. See
``docs/protocol.md`` for every field.

>>> sub = parse(b'{"op":"subscribe","levels":["red","ORANGE"],"since":"1700000000000"}')
>>> sorted(sub.filter.levels), sub.since, sub.audit_since
(['orange', 'red'], '1700000000000-0', None)
>>> parse(b'{"op":"dance"}')
Traceback (most recent call last):
...
sinks.feed.protocol.ProtocolError: unknown_op: op 'dance' is not one of action, auth, cockpit, \
history, metrics, ping, search, subscribe
>>> Filter(levels=frozenset({"red"})).matches({"level": "red", "rule": "air.spike"})
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from citywatch.errors import CitywatchError
from citywatch.tiers import in_scope
from sinks.feed.lifecycle import ACTIONS, Command
from sinks.search.service import SearchRequest, SearchRequestError, parse_request

__all__ = [
    "CLOSE_AUTH",
    "CLOSE_GOING_AWAY",
    "CLOSE_SLOW",
    "Action",
    "Auth",
    "Cockpit",
    "Filter",
    "Metrics",
    "Ping",
    "ProtocolError",
    "Search",
    "Subscribe",
    "error",
    "parse",
    "stream_id",
]

#: Close codes (RFC 6455): policy violation (auth), going away (shutdown), try again later (slow).
CLOSE_AUTH: Final = 1008
CLOSE_GOING_AWAY: Final = 1001
CLOSE_SLOW: Final = 1013

LEVELS: Final = ("blue", "yellow", "orange", "red")
_LEVEL_NUM: Final = {"1": "blue", "2": "yellow", "3": "orange", "4": "red"}
_ID_RE: Final = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_SID_RE: Final = re.compile(r"^\d{1,20}(-\d{1,20})?$")
BAD_ACTION: Final = "bad_action"
BAD_JSON: Final = "bad_json"
BAD_MESSAGE: Final = "bad_message"
UNKNOWN_OP: Final = "unknown_op"
FORBIDDEN: Final = "forbidden"
UNKNOWN_DEPARTMENT: Final = "unknown_department"
UNKNOWN_ASSIGNEE: Final = "unknown_assignee"
MAX_LIST: Final = 64
MAX_TEXT: Final = 64
MAX_NOTE: Final = 2000


class ProtocolError(CitywatchError):
    """A client message that does not fit the protocol; ``code`` is machine-readable.

    ``req`` is the message's own ``req`` when it had a valid one, to be echoed in the error.
    """

    def __init__(self, code: str, message: str, req: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.req = req


@dataclass(frozen=True, slots=True)
class Filter:
    """Which alerts a client wants; an empty set means "all". Rules may end in ``.*``.

    ``scope``: a centre id whose queues the client may see (``citywatch.tiers.in_scope``), set
    by the server from the identity ("" = every centre). An item matches it by its ``centre``
    (an alert: the centre its work order belongs to now; a lifecycle event: the order's centre
    after it) or, for an escalation, by the ``from_centre`` it left.
    """

    levels: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    districts: frozenset[str] = frozenset()
    scope: str = ""

    @property
    def is_all(self) -> bool:
        return not (self.levels or self.rules or self.districts or self.scope)

    def matches(self, alert: Mapping[str, Any]) -> bool:
        """Whether an alert (or lifecycle event: same ``level``/``rule``/``district`` keys) fits."""
        if self.levels and alert.get("level") not in self.levels:
            return False
        if self.districts and alert.get("district") not in self.districts:
            return False
        if self.scope and self.scope != "city":
            district = alert.get("district")
            centres = (alert.get("centre"), alert.get("from_centre"))
            if not any(
                isinstance(c, str) and in_scope(c, self.scope, district=district) for c in centres
            ):
                return False
        if self.rules:
            rule = alert.get("rule")
            if not isinstance(rule, str):
                return False
            if rule not in self.rules and not any(
                r.endswith(".*") and rule.startswith(r[:-1]) for r in self.rules
            ):
                return False
        return True


@dataclass(frozen=True, slots=True)
class Auth:
    token: str = field(repr=False)
    req: str | None = None


@dataclass(frozen=True, slots=True)
class Subscribe:
    filter: Filter
    since: str | None
    audit_since: str | None
    req: str | None = None


@dataclass(frozen=True, slots=True)
class Action:
    command: Command
    req: str | None


@dataclass(frozen=True, slots=True)
class History:
    id: str
    req: str | None


@dataclass(frozen=True, slots=True)
class Metrics:
    req: str | None


@dataclass(frozen=True, slots=True)
class Search:
    """``{"op":"search","q":"噪声 崇川","kinds":[...],"from":ms,...}``: checked by
    :func:`sinks.search.service.parse_request`."""

    request: SearchRequest
    req: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    req: str | None


@dataclass(frozen=True, slots=True)
class Cockpit:
    """``{"op":"cockpit"}``: the leader cockpit's aggregated picture."""

    req: str | None


Message = Auth | Subscribe | Action | History | Metrics | Search | Ping | Cockpit
_OPS: Final = ("action", "auth", "cockpit", "history", "metrics", "ping", "search", "subscribe")


def _bad(code: str, message: str) -> ProtocolError:
    return ProtocolError(code, message)


def parse(data: bytes | str) -> Message:
    """One client message, checked; raises :class:`ProtocolError` with a code and a reason
    (and the message's ``req``, when it had a valid one, so the error can echo it).

    >>> try:
    ...     parse(b'{"op":"action","action":"explode","id":"a1","req":"9"}')
    ... except ProtocolError as exc:
    ...     print(exc.code, exc.req)
    bad_action 9
    """
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _bad(BAD_JSON, f"not valid JSON ({exc.msg})") from exc
    if not isinstance(obj, dict):
        raise _bad(BAD_MESSAGE, "expected a JSON object")
    req = _req(obj)  # first: every later error can echo it
    try:
        return _message(obj, req)
    except ProtocolError as exc:
        exc.req = req
        raise


def _message(obj: dict[str, Any], req: str | None) -> Message:
    op = obj.get("op")
    if op == "auth":
        token = obj.get("token")
        if not isinstance(token, str) or not token:
            raise _bad(BAD_MESSAGE, "auth: token must be a non-empty string")
        return Auth(token, req)
    if op == "subscribe":
        return Subscribe(
            filter=Filter(
                levels=_levels(obj.get("levels")),
                rules=_texts("rules", obj.get("rules")),
                districts=_texts("districts", obj.get("districts")),
            ),
            since=stream_id("since", obj.get("since")),
            audit_since=stream_id("audit_since", obj.get("audit_since")),
            req=req,
        )
    if op == "action":
        return Action(command=_command(obj), req=req)
    if op == "metrics":
        return Metrics(req=req)
    if op == "history":
        return History(id=_alert_id(obj), req=req)
    if op == "ping":
        return Ping(req=req)
    if op == "cockpit":
        return Cockpit(req=req)
    if op == "search":
        try:
            return Search(parse_request(obj), req=req)
        except SearchRequestError as exc:
            raise _bad(BAD_MESSAGE, f"search: {exc}") from exc
    shown = op if isinstance(op, str) and len(op) <= MAX_TEXT else "?"
    raise _bad(UNKNOWN_OP, f"op {shown!r} is not one of {', '.join(_OPS)}")


def stream_id(name: str, value: Any) -> str | None:
    """A Redis stream id ``ms`` or ``ms-seq`` (or None); ``ms`` alone means ``ms-0``."""
    if value is None:
        return None
    if not isinstance(value, str) or not _SID_RE.match(value):
        raise _bad(BAD_MESSAGE, f"{name}: {str(value)[:40]!r} is not a stream id")
    return value if "-" in value else f"{value}-0"


def sid_key(sid: str | bytes) -> tuple[int, int]:
    """Sortable form of a stream id: ``"12-3"`` -> ``(12, 3)``."""
    s = sid.decode() if isinstance(sid, bytes) else sid
    ms, _, seq = s.partition("-")
    return int(ms), int(seq or 0)


def _levels(value: Any) -> frozenset[str]:
    out = set()
    for item in _list("levels", value):
        key = str(item).lower()
        key = _LEVEL_NUM.get(key, key)
        if key not in LEVELS:
            raise _bad(BAD_MESSAGE, f"levels: {str(item)[:20]!r} is not a level")
        out.add(key)
    return frozenset(out)


def _texts(name: str, value: Any) -> frozenset[str]:
    out = set()
    for item in _list(name, value):
        if not isinstance(item, str) or not item or len(item) > MAX_TEXT:
            raise _bad(BAD_MESSAGE, f"{name}: items must be short strings")
        out.add(item)
    return frozenset(out)


def _list(name: str, value: Any) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise _bad(BAD_MESSAGE, f"{name}: expected a list of at most {MAX_LIST}")
    return value


def _req(obj: Mapping[str, Any]) -> str | None:
    req = obj.get("req")
    if req is None:
        return None
    if not isinstance(req, str | int) or isinstance(req, bool) or len(str(req)) > MAX_TEXT:
        raise _bad(BAD_MESSAGE, "req: expected a short string or integer")
    return str(req)


def _text(obj: Mapping[str, Any], name: str, limit: int = MAX_TEXT) -> str | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(BAD_MESSAGE, f"{name}: expected a string of at most {limit} chars")
    return value


def _alert_id(obj: Mapping[str, Any]) -> str:
    aid = obj.get("id")
    if not isinstance(aid, str) or not _ID_RE.match(aid):
        raise _bad(BAD_MESSAGE, "id: expected an alert id")
    return aid


def _command(obj: Mapping[str, Any]) -> Command:
    action = obj.get("action")
    if not isinstance(action, str) or action not in ACTIONS:
        shown = action if isinstance(action, str) and len(action) <= MAX_TEXT else "?"
        allowed = ", ".join(sorted(ACTIONS))
        raise _bad(BAD_ACTION, f"action {shown!r} is not one of {allowed}")
    aid = _alert_id(obj)
    until = obj.get("until_ms")
    if until is not None and (not isinstance(until, int) or isinstance(until, bool)):
        raise _bad(BAD_MESSAGE, "until_ms: expected epoch milliseconds (integer)")
    # ``actor`` is not read: who acts is the identity that logged in (citywatch.identity);
    # the server fills it in, and the state machine refuses a command without one.
    return Command(
        action=str(action),
        id=aid,
        actor="",
        dept=_text(obj, "dept"),
        assignee=_text(obj, "assignee"),
        reason=_text(obj, "reason", MAX_NOTE),
        note=_text(obj, "note", MAX_NOTE),
        until_ms=until,
    )


# -- server messages (orjson bytes) -----------------------------------------------------------


def dumps(msg: Mapping[str, Any]) -> bytes:
    return orjson.dumps(msg)


def error(code: str, message: str, req: str | None = None) -> bytes:
    out: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if req is not None:
        out["req"] = req
    return orjson.dumps(out)


def alert_message(sid: str, alert_json: bytes, centre: str | None = None) -> bytes:
    """``{"type":"alert","sid":...,"centre":...,"alert":{...}}`` splicing the stored JSON
    without re-parsing; ``centre``: the centre its work order belongs to now."""
    head = b'{"type":"alert","sid":"' + sid.encode() + b'"'
    if centre:
        head += b',"centre":' + orjson.dumps(centre)
    return head + b',"alert":' + alert_json + b"}"


def text_frame(payload: bytes) -> bytes:
    """An unmasked, final, uncompressed text frame (RFC 6455 5.2), as a server sends it.

    The feed frames a message once and writes the same bytes to every idle client.

    >>> text_frame(b"hi")
    b'\\x81\\x02hi'
    """
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65_536:
        head = b"\x81\x7e" + n.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + n.to_bytes(8, "big")
    return head + payload


def lifecycle_message(aid: str, event_json: bytes) -> bytes:
    return b'{"type":"lifecycle","aid":"' + aid.encode() + b'","event":' + event_json + b"}"
