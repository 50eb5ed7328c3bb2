"""Fuzzing the websocket protocol: Hypothesis over message parsing, and random frames over a
real socket. No exception escapes; every bad message gets an ``error`` with a code and a reason,
echoing its ``req`` when it had a valid one; the connection stays usable afterwards (only a
frame above the hard size cap closes it, with 1009, as docs/protocol.md says).

Bounded for ``make test``; ``CW_FUZZ_EXAMPLES=5000`` runs a long profile."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from citywatch.settings import Settings
from sinks.feed import protocol
from sinks.feed.lifecycle import ACTIONS
from tests.sinks.test_feed_support import TOKEN, feed_settings, running

EXAMPLES = int(os.environ.get("CW_FUZZ_EXAMPLES", "0")) or None
#: Every error code a malformed message may get (the server adds ``too_large``).
PARSE_CODES = {"bad_json", "bad_message", "unknown_op", "bad_action"}
#: Codes a well-formed message may still get from the server, with no alert behind it.
SERVER_CODES = {
    "too_large",
    "already_subscribed",
    "unknown_alert",
    "unknown_department",
    "unknown_assignee",
    "illegal_transition",
    "forbidden",
    "search_unavailable",
}
OPS = ("auth", "subscribe", "action", "history", "metrics", "search", "ping")
FIELDS = (
    "op",
    "token",
    "levels",
    "rules",
    "districts",
    "since",
    "audit_since",
    "action",
    "id",
    "dept",
    "assignee",
    "reason",
    "note",
    "until_ms",
    "actor",
    "q",
    "kinds",
    "from",
    "to",
    "limit",
    "req",
)


def _profile(default: int) -> Any:
    return settings(
        max_examples=EXAMPLES or default,
        deadline=None,  # a loaded 2-core machine is no reason to fail
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# -- strategies ---------------------------------------------------------------------------------

_json: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=15,
)
#: Values that are right for some field, so that parsing gets past the first check; long ones
#: are built from a length (cheap to generate, and the limits are what they probe).
_plausible = st.one_of(
    st.sampled_from([*OPS, *sorted(ACTIONS), "escalate", "red", "air.*", "崇川区", "生态环境局"]),
    st.from_regex(r"\A[A-Za-z0-9._:\-]{1,12}\Z"),
    st.integers(120, 135).map(lambda n: "a" * n),  # around the id limit (128)
    st.tuples(st.integers(0, 2**70), st.integers(0, 2**70) | st.none()).map(
        lambda t: f"{t[0]}" if t[1] is None else f"{t[0]}-{t[1]}"
    ),  # stream ids, some too long
    st.lists(st.sampled_from(["red", "ORANGE", "3", "purple", "air.*", "x" * 70]), max_size=6),
    st.integers(60, 70).map(lambda n: ["red"] * n),  # around the list limit (64)
    st.integers(0, 2**45),
    st.tuples(st.sampled_from(["字", "x", "<"]), st.integers(60, 2100)).map(lambda t: t[0] * t[1]),
)
_value = st.one_of(_plausible, _json)
_message = st.fixed_dictionaries(
    {"op": st.sampled_from([*OPS, "dance"]) | _json},
    optional={name: _value for name in FIELDS if name != "op"},
)
_req = st.one_of(st.text(max_size=70), st.integers(-(2**70), 2**70), _json)


def _valid_req(obj: Any) -> str | None:
    """The ``req`` a reply must echo: a string of at most 64 characters, or an integer that
    fits in 64 bits (a larger one is read as a float, as by most JSON parsers)."""
    if not isinstance(obj, dict):
        return None
    req = obj.get("req")
    if isinstance(req, bool) or not isinstance(req, str | int) or len(str(req)) > 64:
        return None
    if isinstance(req, int) and not -(2**63) <= req < 2**64:
        return None
    return str(req)


def _check_parse(data: bytes | str, obj: Any = None) -> protocol.Message | None:
    error: protocol.ProtocolError | None = None
    try:
        return protocol.parse(data)
    except protocol.ProtocolError as exc:
        error = exc
    assert error.code in PARSE_CODES, error
    assert error.message
    if isinstance(obj, dict) and obj.get("req") is not None and _valid_req(obj) is None:
        assert error.message.startswith("req:")  # the req itself was the problem (null: absent)
    assert error.req == _valid_req(obj)
    return None


def _dumps(value: Any) -> str:
    """JSON as a client may send it (integers of any size, which orjson cannot write)."""
    return json.dumps(value, ensure_ascii=False)


# -- parsing ------------------------------------------------------------------------------------


@_profile(300)
@given(st.binary(max_size=300))
def test_parse_bytes_never_raises_anything_else(data: bytes) -> None:
    _check_parse(data)


@_profile(300)
@given(st.text(max_size=300))
def test_parse_text_never_raises_anything_else(data: str) -> None:
    _check_parse(data)


@_profile(200)
@given(_message, _req | st.none())
def test_parse_messages_echo_req_in_every_error(msg: dict[str, Any], req: Any) -> None:
    if req is not None:
        msg = {**msg, "req": req}
    parsed = _check_parse(_dumps(msg), msg)
    if parsed is not None:
        assert getattr(parsed, "req", None) == _valid_req(msg)
        if isinstance(parsed, protocol.Action):
            assert parsed.command.actor == ""  # never taken from the client
            assert parsed.command.action in ACTIONS


@_profile(150)
@given(_json)
def test_parse_any_json_value(value: Any) -> None:
    _check_parse(_dumps(value), value)


# -- the real socket ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def feed_url(redis_url: str) -> Iterator[str]:
    """One feed server for the module, in a thread (the Hypothesis examples use sync clients)."""
    prefix = f"cwfuzz:{os.getpid()}:{time.monotonic_ns()}:"
    s = feed_settings(
        Settings.load(env={}).with_(redis_url=redis_url, prefix=prefix),
        feed_max_message=2048,
        feed_auth_timeout_s=5.0,
    )
    ready: list[int] = []
    stop = threading.Event()
    failed: list[BaseException] = []

    async def serve() -> None:
        try:
            async with running(s) as srv:
                ready.append(srv.port)
                while not stop.is_set():
                    await asyncio.sleep(0.05)
                assert srv.stats.auth_failed == 0
        except BaseException as exc:
            failed.append(exc)
            raise

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    t0 = time.monotonic()
    while not ready and not failed and time.monotonic() - t0 < 10:
        time.sleep(0.02)
    assert ready, f"feed server did not start: {failed}"
    yield f"ws://127.0.0.1:{ready[0]}/feed"
    stop.set()
    thread.join(10)
    assert not failed, failed
    import redis

    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=f"{prefix}*"))
    if keys:
        r.delete(*keys)
    r.close()


#: What a subscription streams, from its own task: it may come before or after a pong.
STREAM = {"snapshot", "live", "alert", "lifecycle", "heartbeat"}


def _reply(ws: ClientConnection, n: int) -> list[dict[str, Any]]:
    """The answers (not the subscription's stream) up to the pong of a ping sent now."""
    ws.send(orjson.dumps({"op": "ping", "req": f"p{n}"}).decode())
    got: list[dict[str, Any]] = []
    while True:
        msg = orjson.loads(ws.recv(timeout=10))
        if msg["type"] == "pong" and msg.get("req") == f"p{n}":
            return got
        if msg["type"] not in STREAM:
            got.append(msg)


_frame = st.one_of(
    _message.map(_dumps),
    st.tuples(_message, _req).map(lambda t: _dumps({**t[0], "req": t[1]})),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.text(min_size=2049, max_size=3000),  # above feed_max_message, below the hard cap
)


def _below_the_hard_cap(frame: str | bytes) -> str | bytes:
    """Frames above 4x feed_max_message close the connection (1009): a test of its own."""
    data = frame.encode() if isinstance(frame, str) else frame
    if len(data) <= HARD_CAP:
        return frame
    cut = data[:HARD_CAP]
    return cut.decode("utf-8", "ignore") if isinstance(frame, str) else cut


HARD_CAP = 4 * 2048


@_profile(25)
@given(st.lists(_frame.map(_below_the_hard_cap), min_size=1, max_size=8))
def test_random_frames_over_a_real_socket(feed_url: str, frames: list[str | bytes]) -> None:
    with connect(feed_url, max_size=None) as ws:
        ws.send(orjson.dumps({"op": "auth", "token": TOKEN}).decode())
        assert orjson.loads(ws.recv(timeout=10))["type"] == "welcome"
        for n, frame in enumerate(frames):
            ws.send(frame)
            replies = _reply(ws, n)
            try:
                obj = orjson.loads(frame)
            except orjson.JSONDecodeError:
                obj = None
            errors = [m for m in replies if m["type"] == "error"]
            if obj is None or not isinstance(obj, dict):
                assert [e["code"] for e in errors] in (
                    ["bad_json"],
                    ["bad_message"],
                    ["too_large"],
                ), (frame, replies)
            for e in errors:
                assert e["code"] in PARSE_CODES | SERVER_CODES, e
                assert isinstance(e["message"], str)
                assert e["message"]
                if e["code"] != "too_large":
                    assert e.get("req") == _valid_req(obj), (frame, e)
            assert all(m["type"] != "error" or m["code"] != "internal" for m in replies)
            if isinstance(obj, dict) and obj.get("op") not in ("subscribe",) and not errors:
                assert replies, (frame, "a message got no answer")
        # still usable: a plain round trip
        assert _reply(ws, len(frames)) == []


def test_a_frame_above_the_hard_cap_closes_1009_and_the_server_goes_on(feed_url: str) -> None:
    with connect(feed_url, max_size=None) as ws:
        ws.send(orjson.dumps({"op": "auth", "token": TOKEN}).decode())
        ws.recv(timeout=10)
        ws.send("x" * (HARD_CAP + 1))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009
    with connect(feed_url) as again:
        again.send(orjson.dumps({"op": "auth", "token": TOKEN}).decode())
        again.recv(timeout=10)
        assert _reply(again, 0) == []
