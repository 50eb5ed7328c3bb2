"""The websocket feed service and console host (websockets asyncio API, one process).

One reader task per process follows ``cw:alerts`` and ``cw:audit`` with XREAD BLOCK and fans
each entry out to the subscribed clients whose filter matches; every message is encoded once.
Each client has a bounded queue drained by its own sender task: a client whose queue overflows,
or whose socket does not take a write within ``feed_send_timeout_s``, is closed with 1013 and
resumes with ``since``; nobody else waits for it. The guard reads only the transport's public
``get_write_buffer_size()``, never asyncio's pause/resume callbacks (Python 3.12.0-3.12.x's
``writelines`` does not call them), so it holds on every interpreter.

Who is connected: the ``auth`` token names an identity (:mod:`citywatch.identity`); every
action is checked against its role and department, and the audit's actor is that identity.

Backfill without gap or duplicate: on subscribe the client is registered for live fan-out
*first*, at the reader's current positions R; the sender then pages ``(since, R]`` with XRANGE
and only afterwards drains the queue, skipping anything at or below what it already sent.

Lifecycle actions are checked by :mod:`sinks.feed.lifecycle` and written by
:class:`sinks.feed.store.FeedStore` (atomic compare-and-set); the broadcast comes from the
audit stream, so every feed process tells its clients about every action.

HTTP on the same port (``process_request``): ``/`` the console, ``/cockpit`` the leader
cockpit, ``/static/*`` their assets, ``/districts.geojson``, ``/outlines/<level>.geojson``,
``/config.json``, ``/healthz``, and with a bearer token ``/api/search`` and ``/api/cockpit``.
Websocket: ``/feed``. Plain HTTP requests
are logged as access lines at DEBUG, not as rejected websocket connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gc
import hmac
import http
import logging
import mimetypes
import os
import re
import socket
import sqlite3
import time
import urllib.parse
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import orjson
import redis
import redis.asyncio as aioredis
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from citywatch.errors import CitywatchError, ConfigError, InputError
from citywatch.identity import (
    DEMO_LOGINS,
    DEV_ADMIN,
    Forbidden,
    Identity,
    UserStore,
    authorize,
    hash_token,
    is_loopback,
)
from citywatch.outlines import LEVELS as OUTLINE_LEVELS
from citywatch.outlines import Outlines, load_outlines, outlines_from_registry
from citywatch.processes import port_problem
from citywatch.registry import Registry, parse_districts
from citywatch.settings import Settings
from sinks.feed import protocol as proto
from sinks.feed.cockpit import Cockpit
from sinks.feed.lifecycle import (
    Command,
    Deadlines,
    IllegalTransition,
    Status,
    Transition,
    compute_metrics,
    plan,
    routed_centre,
    rule_table,
)
from sinks.feed.protocol import CLOSE_AUTH, CLOSE_SLOW, Filter, ProtocolError, sid_key
from sinks.feed.store import FeedStore
from sinks.search.service import (
    SearchRequest,
    SearchRequestError,
    SearchService,
    parse_request,
)

__all__ = ["STATIC_DIR", "FeedServer", "check_exposure", "run"]

log = logging.getLogger("citywatch.feed")
#: websockets logs every frame's content at DEBUG, the auth message (the token) included.
#: Its logger for the feed never goes below INFO, whatever the CLI's verbosity.
_WS_LOG = logging.getLogger("citywatch.feed.websockets")
_WS_LOG.setLevel(logging.INFO)  # raised to the root's level at start (see FeedServer.start)
#: Connections answered with a plain HTTP page: websockets would log each as "connection
#: rejected (200 OK)"; they get a DEBUG access line instead.
_PLAIN_HTTP: weakref.WeakSet[ServerConnection] = weakref.WeakSet()


class _PlainHttpIsNoRejection(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == "connection rejected (%d %s)"
            and getattr(record, "websocket", None) in _PLAIN_HTTP
        )


_WS_LOG.addFilter(_PlainHttpIsNoRejection())

STATIC_DIR: Final = Path(__file__).resolve().parent.parent / "static"
_HOST_RE: Final = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,255}$")
#: Kernel send buffer per client. Autotuning would let a stalled client soak up megabytes
#: before its queue fills; with this, falling behind shows within ~60 KB.
SEND_BUFFER_BYTES: Final = 32_768
#: Bytes a client's transport may hold before the fan-out stops writing to it directly and its
#: sender takes over (waiting for the buffer to drain, within ``feed_send_timeout_s``).
BACKLOG_HIGH: Final = 64 * 1024
#: The sender resumes once the transport holds at most this much.
BACKLOG_LOW: Final = 16 * 1024
#: Proxy headers: a request carrying one did not come straight from this machine.
_PROXY_HEADERS: Final = ("X-Forwarded-For", "Forwarded", "X-Real-IP")
#: At most this many messages (and ``BACKLOG_HIGH`` bytes) go straight to one socket per reader
#: batch; more wait in the client's bounded queue, so a burst cannot pile megabytes into every
#: transport at once.
DIRECT_BATCH_MAX: Final = 64
_EMPTY_GEOJSON: Final = b'{"type":"FeatureCollection","features":[]}'
_Item = tuple[str, tuple[int, int] | None, bytes]  # (kind a|l|h, stream key, message)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False, slots=True)
class Client:
    """One subscribed connection: its filter, bounded queue and progress on each stream."""

    ws: ServerConnection
    filter: Filter
    queue: asyncio.Queue[_Item]
    bound_a: str = "0-0"
    bound_l: str = "0-0"
    last_a: tuple[int, int] = (0, 0)
    last_l: tuple[int, int] = (0, 0)
    dropped: bool = False
    #: True while the sender is idle (live, queue empty, nothing in flight): the fan-out may
    #: then write straight to the socket, as ``websockets.broadcast`` does, skipping a task hop.
    idle: bool = False
    sender: asyncio.Task[None] | None = None


@dataclass(eq=False, slots=True)
class Session:
    """One authenticated connection. ``token_sha256`` is None for a development login."""

    ws: ServerConnection
    identity: Identity
    token_sha256: str | None


class _Refused(CitywatchError):
    """An action refused before the state machine sees it; ``code`` goes to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Stats:
    connections: int = 0
    subscribed: int = 0
    auth_failed: int = 0
    forbidden: int = 0
    revoked: int = 0
    dropped_slow: int = 0
    sent: int = 0
    bad_messages: int = 0
    actions: int = 0
    escalations: int = 0
    searches: int = 0
    cockpits: int = 0
    reader_errors: int = 0
    gc_runs: int = 0
    gc_pause_ms_total: float = 0.0
    gc_pause_ms_max: float = 0.0
    started_ms: int = field(default_factory=_now_ms)


class FeedServer:
    """The feed service. ``await start()``, then ``await stop()`` (closes clients with 1001)."""

    def __init__(
        self,
        settings: Settings,
        store: FeedStore,
        *,
        static_dir: Path = STATIC_DIR,
        registry_dir: Path | None = None,
        districts: bytes | None = None,
        clock: Callable[[], int] = _now_ms,
        escalate_every_s: float = 1.0,
        users: UserStore | None = None,
        dev_logins: Mapping[str, Identity] | None = None,
        demo_logins: bool = False,
        users_every_s: float = 2.0,
        search: SearchService | None = None,
        search_every_s: float = 0.5,
        registry: Registry | None = None,
        outlines: Outlines | None = None,
        cockpit_cache_s: float = 2.0,
    ) -> None:
        """``users``: the users file (default ``settings.users_path``). ``dev_logins``: token ->
        identity accepted only over a direct loopback connection (default: every
        ``feed_tokens`` token as the development admin); ``demo_logins`` adds the demo's.
        ``registry``: reference data when ``registry_dir`` has none (the demo's simulated
        city); ``outlines``: the maps' outlines (default: the operator's outline files beside
        the registry, else the registry's own shapes, labelled simulated: a bad outline file
        raises :class:`~citywatch.errors.SchemaError`)."""
        self.settings = settings
        self.store = store
        self.keys = settings.keys
        self.clock = clock
        self.escalate_every_s = escalate_every_s
        self.deadlines = Deadlines.from_settings(settings)
        #: rule -> tier: which centre a work order belongs to (citywatch.tiers).
        self.rules = rule_table(settings)
        #: alert id -> the centre owning its active work order (from the audit stream), so
        #: live alert versions reach the centre that has the order now, escalated or not.
        self._centre_of: dict[str, str] = {}
        self.users = users if users is not None else UserStore(settings.users_path)
        dev = (
            {t: DEV_ADMIN for t in settings.feed_tokens} if dev_logins is None else dict(dev_logins)
        )
        if demo_logins:
            dev.update(DEMO_LOGINS)
        self._dev = [(t.encode(), who) for t, who in dev.items()]
        self._dev_ids = {who.id: who for who in dev.values()}
        self._sessions: dict[ServerConnection, Session] = {}
        self.users_every_s = users_every_s
        self._users_error: str | None = None
        self.stats = Stats()
        self.by_filter: dict[Filter, set[Client]] = {}
        self.pos_a = "0-0"
        self.pos_l = "0-0"
        self._tasks: list[asyncio.Task[None]] = []
        self._server: Server | None = None
        self._files = _load_static(static_dir)
        self._registry_dir = registry_dir or settings.data_dir / "registry"
        #: District outlines to serve when the registry directory has none.
        self._districts_fallback = districts or _EMPTY_GEOJSON
        self.registry = _registry(self._registry_dir, registry, self._districts_fallback)
        if outlines is None:
            where = self._registry_dir
            outlines = load_outlines(where if where.is_dir() else where.parent)
        self.outlines = outlines or outlines_from_registry(self.registry)
        self._outline_bytes: dict[str, bytes] = {}
        has_places = bool(self.registry.districts or self.registry.towns)
        self.cockpit = Cockpit(
            store,
            self.keys,
            rules=self.rules,
            locator=self.registry.locator() if has_places else None,
            clock=clock,
            cache_ms=int(cockpit_cache_s * 1000),
            outlines=self.outlines.summary(),
        )
        #: (computed at ms, audit position, result); one computation at a time.
        self._metrics_cache: tuple[int, str, dict[str, Any]] | None = None
        self._metrics_lock = asyncio.Lock()
        self._closers: set[asyncio.Task[None]] = set()
        self._pending: dict[Client, list[bytes]] = {}
        self._pending_bytes: dict[Client, int] = {}
        self._last_entry_s = 0.0
        self._snapshot_lock = asyncio.Lock()
        self._snapshot_cache: tuple[tuple[str, str], float, list[dict[str, Any]]] | None = None
        #: Full-text search over alerts, tickets and work orders, caught up from the streams
        #: every ``search_every_s`` (None: search answers "search_unavailable").
        self.search = search
        self.search_every_s = search_every_s

    # -- lifecycle of the service ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            msg = "feed server not started"
            raise RuntimeError(msg)
        sock = next(iter(self._server.sockets))
        port: int = sock.getsockname()[1]
        return port

    async def start(self, host: str | None = None, port: int | None = None) -> None:
        host = self.settings.feed_host if host is None else host
        check_exposure(host, dev_logins=bool(self._dev))
        # websockets' per-connection lines ("connection open") follow the CLI's verbosity;
        # its frame logging (tokens included) never shows, even with -vv.
        _WS_LOG.setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
        self.users.refresh()  # a malformed users file stops the start (ConfigError)
        self.pos_a = await self.store.last_id(self.keys.alerts)
        self.pos_l = await self.store.last_id(self.keys.audit)
        self._centre_of = await self.store.active_centres()
        port = self.settings.feed_port if port is None else port
        try:
            self._server = await self._listen(host, port)
        except OSError as exc:
            raise InputError(port_problem(host, port, exc)) from exc
        self._tasks = [
            asyncio.create_task(self._reader(), name="feed-reader"),
            asyncio.create_task(self._heartbeats(), name="feed-heartbeat"),
            asyncio.create_task(self._escalator(), name="feed-escalator"),
            asyncio.create_task(self._watch_users(), name="feed-users"),
        ]
        if self.search is not None:
            self._tasks.append(asyncio.create_task(self._indexer(), name="feed-search"))
        log.info("feed listening on %s:%s", host, self.port)

    async def _listen(self, host: str, port: int) -> Server:
        limit = self.settings.feed_max_message
        return await serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            compression=None,  # per-client deflate costs more CPU than loopback bytes
            max_size=max(4 * limit, 4096),  # above the hard cap websockets closes with 1009
            max_queue=4,
            ping_interval=max(self.settings.feed_heartbeat_s * 2, 10.0),
            ping_timeout=max(self.settings.feed_heartbeat_s * 2, 10.0),
            close_timeout=2.0,
            server_header=None,
            logger=_WS_LOG,
        )

    async def stop(self) -> None:
        """Stop accepting, close every connection with 1001 (going away), stop the tasks."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        tasks = [*self._tasks, *self._closers]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks = []

    # -- HTTP on the websocket port -------------------------------------------------------

    async def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/feed":
            return self._check_origin(conn, request)
        if path == "/api/search":
            resp = await self._http_search(conn, request)
        elif path == "/api/cockpit":
            resp = await self._http_cockpit(conn, request)
        else:
            resp = self._http(request, path)
        _PLAIN_HTTP.add(conn)  # an HTTP page, not a refused websocket: an access line instead
        log.debug("http %s GET %s %d", _peer(conn), path[:200], resp.status_code)
        return resp

    def _http(self, request: Request, path: str) -> Response:
        if path in ("/", "/index.html"):
            return self._file(request, "index.html")
        if path in ("/cockpit", "/cockpit.html"):
            return self._file(request, "cockpit.html")
        if path.startswith("/outlines/") and path.endswith(".geojson"):
            level = path[len("/outlines/") : -len(".geojson")]
            if level in OUTLINE_LEVELS:
                return _response(http.HTTPStatus.OK, self._outline(level), "application/geo+json")
        if path.startswith("/static/"):
            return self._file(request, path[len("/static/") :])
        if path == "/districts.geojson":
            geo = self._registry_dir / "districts.geojson"
            body = geo.read_bytes() if geo.is_file() else self._districts_fallback
            return _response(http.HTTPStatus.OK, body, "application/geo+json")
        if path == "/config.json":
            return _response(
                http.HTTPStatus.OK, orjson.dumps(self._public_config()), "application/json"
            )
        if path == "/healthz":
            body = orjson.dumps(
                {
                    **vars_of(self.stats),
                    "clients": self._client_count(),
                    "sid": self.pos_a,
                    "aid": self.pos_l,
                }
            )
            return _response(http.HTTPStatus.OK, body, "application/json")
        return _response(http.HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def _bearer(self, conn: ServerConnection, request: Request) -> Response | None:
        """None when the request has ``Authorization: Bearer <token>`` with a token the feed
        accepts (development ones only from loopback), else the 401 to answer."""
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if token and self._login(conn, token) is not None:
            return None
        self.stats.auth_failed += 1
        return _json_error(http.HTTPStatus.UNAUTHORIZED, "auth", "a valid bearer token")

    async def _http_cockpit(self, conn: ServerConnection, request: Request) -> Response:
        """``GET /api/cockpit`` with a bearer token: the cockpit's picture as JSON."""
        refused = self._bearer(conn, request)
        if refused is not None:
            return refused
        try:
            picture = await self.cockpit_picture()
        except aioredis.RedisError as exc:
            log.warning("feed: cockpit: %s", exc)
            return _json_error(http.HTTPStatus.SERVICE_UNAVAILABLE, "unavailable", "store down")
        return _response(http.HTTPStatus.OK, orjson.dumps(picture), "application/json")

    async def cockpit_picture(self) -> dict[str, Any]:
        """The cockpit's aggregated picture (computed at most once per ``cockpit_cache_s``)."""
        self.stats.cockpits += 1
        return await self.cockpit.picture()

    def _outline(self, level: str) -> bytes:
        """One level's outlines as WGS-84 GeoJSON, encoded once."""
        body = self._outline_bytes.get(level)
        if body is None:
            body = self._outline_bytes[level] = orjson.dumps(self.outlines.geojson(level))
        return body

    async def _http_search(self, conn: ServerConnection, request: Request) -> Response:
        """``GET /api/search?q=...&kinds=ticket&from=<ms>&...``, with ``Authorization: Bearer
        <token>`` (the same tokens as the feed): JSON results, or a JSON error."""
        refused = self._bearer(conn, request)
        if refused is not None:
            return refused
        query = urllib.parse.parse_qs(request.path.partition("?")[2], max_num_fields=32)
        params = {k: (v if k in _LIST_PARAMS else v[-1]) for k, v in query.items()}
        for k in _LIST_PARAMS:
            if k in params:
                params[k] = [x for v in params[k] for x in v.split(",") if x]
        try:
            body = await self._search(parse_request(params))
        except SearchRequestError as exc:
            return _json_error(http.HTTPStatus.BAD_REQUEST, "bad_request", str(exc))
        except _SearchUnavailable as exc:
            return _json_error(http.HTTPStatus.SERVICE_UNAVAILABLE, "search_unavailable", str(exc))
        return _response(http.HTTPStatus.OK, orjson.dumps(body), "application/json")

    async def _search(self, req: SearchRequest) -> dict[str, Any]:
        if self.search is None:
            msg = "search is off (no index: see docs/search.md)"
            raise _SearchUnavailable(msg)
        self.stats.searches += 1
        try:
            return await asyncio.to_thread(self.search.search, req)
        except CitywatchError as exc:
            if isinstance(exc, SearchRequestError):
                raise
            raise _SearchUnavailable(str(exc)) from exc

    async def _indexer(self) -> None:
        """Keep the search index caught up with the streams (in a worker thread)."""
        search = self.search
        if search is None:
            return
        failing = ""
        while True:
            try:
                await asyncio.to_thread(search.catch_up)
                if failing:
                    log.info("search: indexing works again")
                failing = ""
            except (CitywatchError, redis.RedisError, OSError, sqlite3.Error) as exc:
                if str(exc) != failing:
                    log.warning("search: indexing failed (%s); retrying", exc)
                failing = str(exc)
            await asyncio.sleep(self.search_every_s)

    def _check_origin(self, conn: ServerConnection, request: Request) -> Response | None:
        origin = request.headers.get("Origin")
        if origin is None:  # not a browser; the token still decides
            return None
        host = request.headers.get("Host", "")
        if origin in self.settings.feed_origins or (
            _HOST_RE.match(host) and origin in (f"http://{host}", f"https://{host}")
        ):
            return None
        log.warning("feed: refused origin %r", origin[:100])
        return _response(
            http.HTTPStatus.FORBIDDEN, b"origin not allowed\n", "text/plain; charset=utf-8"
        )

    def _file(self, request: Request, name: str) -> Response:
        found = self._files.get(name)
        if found is None:
            return _response(http.HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
        body, ctype = found
        resp = _response(http.HTTPStatus.OK, body, ctype)
        host = request.headers.get("Host", "")
        ws_src = f" ws://{host} wss://{host}" if _HOST_RE.match(host) else ""
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src 'self'{ws_src}; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'"
        )
        resp.headers["Cache-Control"] = "no-cache"
        return resp

    def _map_region(self) -> tuple[float, ...]:
        """The settings' region, else the registry's, else the served districts' box."""
        if self.settings.region is not None:
            return self.settings.region
        box = None
        with contextlib.suppress(CitywatchError, OSError, ValueError):
            box = Registry.load(self._registry_dir).derived_region()
        if box is None:
            with contextlib.suppress(CitywatchError, ValueError):
                districts = parse_districts(orjson.loads(self._districts_fallback))
                box = Registry(districts=districts).derived_region(margin_km=0.0)
        return box or (-90.0, 90.0, -180.0, 180.0)

    def _public_config(self) -> dict[str, Any]:
        lat0, lat1, lon0, lon1 = self._map_region()
        depts = self.settings.departments
        return {
            "region": {"lat_min": lat0, "lat_max": lat1, "lon_min": lon0, "lon_max": lon1},
            "heartbeat_s": self.settings.feed_heartbeat_s,
            "signoff_deadline_s": self.settings.signoff_deadline_s,
            "handling_deadline_s": self.settings.handling_deadline_s,
            "departments": list(depts),
            "centres": self.registry.centres(),
            "outlines": self.outlines.summary(),
        }

    # -- one connection -------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        self.stats.connections += 1
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:  # a small kernel buffer: a stalled reader shows up in our queue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        session = await self._authenticate(ws)
        if session is None:
            return
        self._sessions[ws] = session
        client: Client | None = None
        try:
            await ws.send(
                proto.dumps(
                    {
                        "type": "welcome",
                        "server_ms": self.clock(),
                        "heartbeat_s": self.settings.feed_heartbeat_s,
                        "user": session.identity.public(),
                    }
                ),
                text=True,
            )
            while True:
                # bytes, also for text frames: the size limit counts bytes, and orjson reads
                # UTF-8 itself (invalid UTF-8 is a bad_json error, not a closed connection)
                raw = await ws.recv(decode=False)
                try:
                    reply = await self._on_message(session, raw, client)
                except aioredis.RedisError as exc:
                    log.warning("feed: store error while answering a client: %s", exc)
                    reply = proto.error("unavailable", "store unavailable, try again")
                except Exception:  # one bad message must not end the connection or the server
                    log.exception("feed: unexpected error while answering a client")
                    reply = proto.error("internal", "internal error; the message was ignored")
                if isinstance(reply, Client):
                    client = reply
                elif reply is not None:
                    await ws.send(reply, text=True)
        except ConnectionClosed:
            pass
        finally:
            self._sessions.pop(ws, None)
            if client is not None:
                self._forget(client)
                if client.sender is not None:
                    client.sender.cancel()

    async def _authenticate(self, ws: ServerConnection) -> Session | None:
        try:
            async with asyncio.timeout(self.settings.feed_auth_timeout_s):
                raw = await ws.recv()
        except TimeoutError:
            self.stats.auth_failed += 1
            await ws.close(CLOSE_AUTH, "auth timeout")
            return None
        except ConnectionClosed:
            return None
        try:
            msg = proto.parse(raw)
        except ProtocolError:
            msg = None
        session = self._login(ws, msg.token) if isinstance(msg, proto.Auth) else None
        if session is None:
            self.stats.auth_failed += 1
            log.info("feed: auth failed from %s", _peer(ws))  # never the token itself
            await ws.close(CLOSE_AUTH, "auth failed")
            return None
        log.info(
            "feed: %s (%s) logged in from %s",
            session.identity.id,
            session.identity.role.value,
            _peer(ws),
        )
        return session

    def _login(self, ws: ServerConnection, token: str) -> Session | None:
        """The session for ``token``: a user of the users file, else a development login
        (only over a direct loopback connection), else None."""
        self._refresh_users()
        sha = hash_token(token)
        who = self.users.by_hash(sha)
        if who is not None:
            return Session(ws, who, sha)
        given = token.encode()
        dev: Identity | None = None
        for t, ident in self._dev:  # compare with every token: timing does not tell which
            if hmac.compare_digest(given, t):
                dev = ident
        if dev is None:
            return None
        if not _direct_loopback(ws):
            log.warning(
                "feed: development login refused from %s: not a direct loopback connection",
                _peer(ws),
            )
            return None
        return Session(ws, dev, None)

    def _refresh_users(self) -> None:
        """Re-read the users file if it changed, and apply the change to live sessions (the
        only place the feed reads it). A malformed file is logged once and the last good
        contents stay in use."""
        try:
            changed = self.users.refresh()
        except ConfigError as exc:
            if str(exc) != self._users_error:
                log.warning("feed: %s; keeping the users read before", exc)
                self._users_error = str(exc)
            return
        self._users_error = None
        if changed:
            self._revalidate()

    async def _watch_users(self) -> None:
        """Notice edits of the users file while nobody logs in."""
        while True:
            await asyncio.sleep(self.users_every_s)
            self._refresh_users()

    def _revalidate(self) -> None:
        """A revoked or rotated token's connections are closed with 1008; a changed role or
        department applies to the session's next action."""
        for ws, session in list(self._sessions.items()):
            if session.token_sha256 is None:
                continue  # development logins are not in the users file
            who = self.users.by_hash(session.token_sha256)
            if who is None or who.id != session.identity.id:
                self.stats.revoked += 1
                self._sessions.pop(ws, None)
                log.info("feed: %s's token was revoked; closing", session.identity.id)
                task = asyncio.create_task(_close(ws, CLOSE_AUTH, "token revoked"))
                self._closers.add(task)
                task.add_done_callback(self._closers.discard)
            else:
                session.identity = who

    async def _on_message(
        self, session: Session, raw: str | bytes, client: Client | None
    ) -> bytes | Client | None:
        if len(raw) > self.settings.feed_max_message:
            self.stats.bad_messages += 1
            return proto.error(
                "too_large", f"message exceeds {self.settings.feed_max_message} bytes"
            )
        try:
            msg = proto.parse(raw)
        except ProtocolError as exc:
            self.stats.bad_messages += 1
            return proto.error(exc.code, exc.message, exc.req)
        if isinstance(msg, proto.Subscribe):
            if client is not None:
                return proto.error(
                    "already_subscribed",
                    "one subscription per connection; reconnect with since to change filters",
                    msg.req,
                )
            return self._subscribe(session, msg)
        if isinstance(msg, proto.Action):
            return await self._action(msg, session)
        if isinstance(msg, proto.History):
            events = await self.store.history(msg.id)
            return proto.dumps({"type": "history", "req": msg.req, "id": msg.id, "events": events})
        if isinstance(msg, proto.Metrics):
            return proto.dumps({"type": "metrics", "req": msg.req, "metrics": await self.metrics()})
        if isinstance(msg, proto.Cockpit):
            picture = await self.cockpit_picture()
            return proto.dumps({"type": "cockpit", "req": msg.req, "cockpit": picture})
        if isinstance(msg, proto.Ping):
            return proto.dumps({"type": "pong", "req": msg.req, "server_ms": self.clock()})
        if isinstance(msg, proto.Search):
            try:
                found = await self._search(msg.request)
            except SearchRequestError as exc:
                return proto.error("bad_message", f"search: {exc}", msg.req)
            except _SearchUnavailable as exc:
                return proto.error("search_unavailable", str(exc), msg.req)
            return proto.dumps({"type": "search", "req": msg.req, **found})
        return proto.error("bad_message", "already authenticated", msg.req)

    # -- subscription, backfill, fan-out --------------------------------------------------

    def _subscribe(self, session: Session, sub: proto.Subscribe) -> Client:
        scope = session.identity.scope  # a town or county officer: that centre's queues
        flt = replace(sub.filter, scope="" if scope == "city" else scope)
        client = Client(
            ws=session.ws, filter=flt, queue=asyncio.Queue(maxsize=self.settings.feed_queue)
        )
        # No await between reading the reader's positions and registering: every entry after
        # them reaches this client's queue, every entry up to them comes from the backfill.
        client.bound_a, client.bound_l = self.pos_a, self.pos_l
        self.by_filter.setdefault(flt, set()).add(client)
        self.stats.subscribed += 1
        client.sender = asyncio.create_task(self._sender(client, sub))
        return client

    def _forget(self, client: Client) -> None:
        members = self.by_filter.get(client.filter)
        if members is not None:
            members.discard(client)
            if not members:
                del self.by_filter[client.filter]

    def _client_count(self) -> int:
        return sum(len(m) for m in self.by_filter.values())

    def _offer(self, client: Client, item: _Item, *, defer: bool = False) -> None:
        """Hand ``item`` to ``client``: straight to its socket when its sender is idle (with
        ``defer``, at the end of the reader's batch, one write per client), else its queue."""
        ws = client.ws
        if client.idle and _backlog(ws) < BACKLOG_HIGH and ws.protocol.state is State.OPEN:
            kind, key, msg = item
            if kind == "a" and key is not None:
                if key <= client.last_a:
                    return
                client.last_a = key
            elif kind == "l" and key is not None:
                if key <= client.last_l:
                    return
                client.last_l = key
            if defer:
                batch = self._pending.setdefault(client, [])
                batch.append(msg)
                size = self._pending_bytes[client] = self._pending_bytes.get(client, 0) + len(msg)
                if len(batch) >= DIRECT_BATCH_MAX or _backlog(ws) + size >= BACKLOG_HIGH:
                    client.idle = False  # the rest of this batch waits in the queue
            else:
                self._write(client, [msg])
            return
        try:
            client.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._drop(client, f"queue full ({client.queue.maxsize} messages)")

    def _write(
        self, client: Client, msgs: list[bytes], frames: dict[int, bytes] | None = None
    ) -> None:
        """Write ``msgs`` to an idle client with one syscall, as ``websockets.broadcast`` would
        (only while its transport holds less than ``BACKLOG_HIGH``). Compression is off, so a
        text frame is the same bytes for every client: ``frames`` caches them per batch."""
        ws = client.ws
        if client.dropped or ws.protocol.state is not State.OPEN:
            return
        cache = {} if frames is None else frames
        out = []
        for msg in msgs:
            frame = cache.get(id(msg))
            if frame is None:
                frame = cache[id(msg)] = proto.text_frame(msg)
            out.append(frame)
        try:
            if ws.protocol.writes:  # frames websockets queued itself (a pong) go first
                ws.send_data()
            ws.transport.writelines(out)
        except Exception:  # a broken socket: the handler sees it and cleans up
            log.debug("feed: direct write failed", exc_info=True)
            self._drop(client, "write failed")
            return
        self.stats.sent += len(msgs)
        if _backlog(ws) >= BACKLOG_HIGH:  # it falls behind: its sender waits for the drain
            client.idle = False
            self._offer(client, ("d", None, b""))

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        self._pending_bytes = {}
        frames: dict[int, bytes] = {}  # id(message) -> frame; messages live through the loop
        for client, msgs in pending.items():
            self._write(client, msgs, frames)

    def _drop(self, client: Client, why: str) -> None:
        """Close a client that fell behind with 1013; it resumes with ``since``."""
        if client.dropped:
            return
        client.dropped = True
        self.stats.dropped_slow += 1
        self._forget(client)
        if client.sender is not None and client.sender is not asyncio.current_task():
            client.sender.cancel()
        log.info("feed: dropped slow client %s: %s", _peer(client.ws), why)
        task = asyncio.create_task(_close(client.ws, CLOSE_SLOW, "too slow: resume with since"))
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    def _fanout(self, kind: str, key: tuple[int, int], msg: bytes, meta: dict[str, Any]) -> None:
        item: _Item = (kind, key, msg)
        for flt, members in list(self.by_filter.items()):
            if flt.is_all or flt.matches(meta):
                for c in list(members):
                    self._offer(c, item, defer=True)

    async def _sender(self, c: Client, sub: proto.Subscribe) -> None:
        try:
            since = sub.since
            if since is not None and sid_key(since) > sid_key(c.bound_a):
                since = None  # ahead of this stream (Redis was reset?): start from a snapshot
            if since is None or await self.store.trimmed_past(self.keys.alerts, since):
                await self._send_snapshot(c)
            else:
                async for batch in self.store.page(self.keys.alerts, since, c.bound_a):
                    for sid, fields in batch:
                        meta = self._alert_meta(fields)
                        if meta is not None and c.filter.matches(meta):
                            msg = proto.alert_message(sid, fields[b"a"], meta["centre"])
                            await self._send(c, msg)
                c.last_a = sid_key(c.bound_a)
                if sub.audit_since is not None:
                    async for batch in self.store.page(self.keys.audit, sub.audit_since, c.bound_l):
                        for aid, fields in batch:
                            ev = _json_field(fields, b"e")
                            if ev is not None and c.filter.matches(ev):
                                await self._send(c, proto.lifecycle_message(aid, fields[b"e"]))
            c.last_a, c.last_l = sid_key(c.bound_a), sid_key(c.bound_l)
            await self._send(c, proto.dumps({"type": "live", "sid": c.bound_a, "aid": c.bound_l}))
            while True:
                if c.queue.empty():
                    c.idle = True
                kind, key, msg = await c.queue.get()
                c.idle = False
                if kind == "d":  # the fan-out wrote directly and the buffer is full: drain
                    await self._drained(c)
                    continue
                if kind == "a" and key is not None:
                    if key <= c.last_a:
                        continue
                    c.last_a = key
                elif kind == "l" and key is not None:
                    if key <= c.last_l:
                        continue
                    c.last_l = key
                await self._send(c, msg)
                self.stats.sent += 1
        except ConnectionClosed:
            pass
        except TimeoutError:
            timeout = self.settings.feed_send_timeout_s
            self._drop(c, f"a write did not complete within {timeout:g} s")
        except aioredis.RedisError as exc:
            log.warning("feed: backfill failed (%s); closing so the client retries", exc)
            await _close(c.ws, 1011, "backfill failed, retry")

    def _alert_meta(self, fields: dict[bytes, bytes]) -> dict[str, Any] | None:
        """The alert of a stream entry with ``centre``: who owns its work order now."""
        meta = _json_field(fields, b"a")
        if meta is not None:
            meta["centre"] = self.centre_of(meta)
        return meta

    def centre_of(self, alert: Mapping[str, Any]) -> str:
        """The centre owning the alert's work order: as escalated, else by rule and place."""
        return self._centre_of.get(str(alert.get("id"))) or routed_centre(alert, self.rules)

    def _note_centre(self, ev: Mapping[str, Any]) -> None:
        aid, centre = ev.get("id"), ev.get("centre")
        if not isinstance(aid, str):
            return
        if ev.get("to") in (Status.CLOSED.value, Status.NEW.value) or not centre:
            self._centre_of.pop(aid, None)
        else:
            self._centre_of[aid] = str(centre)

    async def _send(self, c: Client, msg: bytes) -> None:
        """Send one message, then wait while the client's transport holds more than
        ``BACKLOG_HIGH``; all of it within ``feed_send_timeout_s`` (else TimeoutError)."""
        async with asyncio.timeout(self.settings.feed_send_timeout_s):
            await c.ws.send(msg, text=True)
            await self._wait_backlog(c.ws)

    async def _drained(self, c: Client) -> None:
        async with asyncio.timeout(self.settings.feed_send_timeout_s):
            await self._wait_backlog(c.ws)

    @staticmethod
    async def _wait_backlog(ws: ServerConnection) -> None:
        """Until the transport holds at most ``BACKLOG_LOW`` (if it holds more than
        ``BACKLOG_HIGH``). websockets' drain wakes us when asyncio's flow control works; the
        size check below does not depend on it (3.12's ``writelines`` never pauses)."""
        if _backlog(ws) < BACKLOG_HIGH:
            return
        await ws.drain()
        while _backlog(ws) > BACKLOG_LOW:
            if ws.protocol.state is not State.OPEN:
                return
            await asyncio.sleep(0.02)

    async def _snapshot_items(self, bound: tuple[str, str]) -> list[dict[str, Any]]:
        """Open alerts with their work orders, read at or after the positions ``bound``.

        Shared by every client registered at the same positions (a reconnect storm after a
        restart reads Redis once, not once per console); a client registered later, after
        the streams moved, reads afresh so nothing between the positions is lost.
        """
        async with self._snapshot_lock:
            cached = self._snapshot_cache
            if cached is not None and cached[0] == bound and time.monotonic() - cached[1] < 5.0:
                return cached[2]
            ids = await self.store.open_ids()
            items: list[dict[str, Any]] = []
            for start in range(0, len(ids), 500):
                items.extend(await self.store.load(ids[start : start + 500]))
            for item in items:  # an order not acted on yet: the centre it is routed to
                item["wo"]["centre"] = item["wo"]["centre"] or routed_centre(
                    item["alert"], self.rules
                )
            self._snapshot_cache = (bound, time.monotonic(), items)
            return items

    async def _send_snapshot(self, c: Client) -> None:
        items = await self._snapshot_items((c.bound_a, c.bound_l))
        mine = [i for i in items if c.filter.matches({**i["alert"], "centre": i["wo"]["centre"]})]
        chunk = 200
        for start in range(0, max(len(mine), 1), chunk):
            await self._send(
                c,
                proto.dumps(
                    {
                        "type": "snapshot",
                        "sid": c.bound_a,
                        "aid": c.bound_l,
                        "alerts": mine[start : start + chunk],
                        "more": start + chunk < len(mine),
                    }
                ),
            )

    async def _reader(self) -> None:
        backoff = 0.1
        while True:
            try:
                res = await self.store.read_live(
                    {self.keys.alerts: self.pos_a, self.keys.audit: self.pos_l},
                    block_ms=1000,
                    count=500,
                )
                backoff = 0.1
            except aioredis.RedisError as exc:
                self.stats.reader_errors += 1
                log.warning("feed: reader: %s; retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            for stream, rows in res:
                if stream == self.keys.alerts:
                    for sid, fields in rows:
                        self.pos_a = sid
                        meta = self._alert_meta(fields)
                        if meta is None:
                            log.warning("feed: unreadable alert entry %s skipped", sid)
                            continue
                        msg = proto.alert_message(sid, fields[b"a"], meta["centre"])
                        self._fanout("a", sid_key(sid), msg, meta)
                else:
                    for aid, fields in rows:
                        self.pos_l = aid
                        ev = _json_field(fields, b"e")
                        if ev is None:
                            continue
                        self._note_centre(ev)
                        self._fanout(
                            "l", sid_key(aid), proto.lifecycle_message(aid, fields[b"e"]), ev
                        )
            self._flush()  # one write per client for the whole batch
            if res:
                self._last_entry_s = time.monotonic()

    async def collect_when_idle(self, every_s: float = 1.0, quiet_s: float = 1.0) -> None:
        """Run the young-generation GC while the streams are quiet, so that the automatic
        collections (thresholds raised by :func:`_tune_gc`) rarely land inside a burst."""
        while True:
            await asyncio.sleep(every_s)
            if time.monotonic() - self._last_entry_s >= quiet_s and gc.get_count()[0] > 1_000:
                gc.collect(1)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.settings.feed_heartbeat_s)
            msg = proto.dumps(
                {"type": "heartbeat", "ts_ms": self.clock(), "sid": self.pos_a, "aid": self.pos_l}
            )
            for members in list(self.by_filter.values()):
                for c in list(members):
                    self._offer(c, ("h", None, msg))

    # -- the closed loop ------------------------------------------------------------------

    async def _action(self, msg: proto.Action, session: Session) -> bytes:
        self.stats.actions += 1
        who = session.identity
        cmd = replace(
            msg.command,
            actor=who.name,
            actor_id=who.id,
            role=who.role.value,
            actor_dept=who.dept,
        )
        try:
            t, aid = await self.act(cmd, by=who)
        except Forbidden as exc:
            self.stats.forbidden += 1
            log.info("feed: %s (%s) refused: %s", who.id, who.role.value, exc)
            return proto.error(proto.FORBIDDEN, str(exc), msg.req)
        except _Refused as exc:
            return proto.error(exc.code, str(exc), msg.req)
        except IllegalTransition as exc:
            return proto.error("illegal_transition", str(exc), msg.req)
        except LookupError as exc:
            return proto.error("unknown_alert", str(exc), msg.req)
        except aioredis.RedisError as exc:
            log.warning("feed: action failed: %s", exc)
            return proto.error("unavailable", "store unavailable, try again", msg.req)
        return proto.dumps(
            {
                "type": "ack",
                "req": msg.req,
                "id": t.event["id"],
                "aid": aid,
                "wo": t.order.to_dict(),
            }
        )

    async def act(
        self, cmd: Command, by: Identity | None = None, attempts: int = 5
    ) -> tuple[Transition, str]:
        """Plan and write ``cmd`` atomically, re-planning on a lost race.

        ``by``: who asked; their role and department are checked against the order as it is
        when the plan is made (raises :class:`Forbidden`). None is the system itself (the
        escalator), which is never reachable from a socket.
        """
        if by is not None:
            if cmd.action not in by.actions:  # before touching Redis: the role alone decides
                authorize(by, cmd.action, order_dept="")
            if cmd.action == "dispatch":
                self._check_department(cmd.dept)
        for _ in range(attempts):
            found = await self.store.read_order(cmd.id)
            if found is None:
                msg = f"alert {cmd.id!r} is unknown"
                raise LookupError(msg)
            order, alert = found
            if by is not None:
                centre = order.centre or routed_centre(alert, self.rules)
                authorize(by, cmd.action, order_dept=order.dept, order_centre=centre)
                if cmd.assignee:
                    self._check_assignee(cmd.assignee, cmd.dept if cmd.dept else order.dept)
            t = plan(
                order,
                cmd,
                now_ms=self.clock(),
                deadlines=self.deadlines,
                alert=alert,
                rules=self.rules,
            )
            aid = await self.store.apply(t)
            if aid is not None:
                return t, aid
        msg = f"{cmd.action}: the order kept changing under us, try again"
        raise IllegalTransition(msg)

    def _check_department(self, dept: str | None) -> None:
        if dept is not None and dept not in self.settings.departments:
            shown = dept[:40]
            msg = f"dept: {shown!r} is not a known department (see /config.json departments)"
            raise _Refused(proto.UNKNOWN_DEPARTMENT, msg)

    def _check_assignee(self, assignee: str, dept: str) -> None:
        """An assignee is an active user (or development login) of the order's department."""
        self._refresh_users()
        user = self.users.cached(assignee)
        who = user.identity() if user is not None and user.active else self._dev_ids.get(assignee)
        if who is None:
            msg = f"assignee: {assignee[:40]!r} is not a user"
            raise _Refused(proto.UNKNOWN_ASSIGNEE, msg)
        if who.dept != dept:
            msg = f"assignee: {assignee[:40]!r} is not in {dept or 'the department'}"
            raise _Refused(proto.UNKNOWN_ASSIGNEE, msg)

    async def escalate_due(self) -> int:
        """Escalate orders past a deadline, reopen shelvings that ended; returns the count."""
        now = self.clock()
        done = 0
        for aid in await self.store.due(now):
            found = await self.store.read_order(aid)
            if found is None:
                await self.store.drop_due(aid)
                continue
            order = found[0]
            if order.status is Status.SHELVED and 0 < order.shelved_until <= now:
                cmd = Command("reopen", aid, actor="system", reason="shelving ended")
            elif order.deadline_ms and order.deadline_ms <= now and order.due_ms:
                cmd = Command("escalate", aid, actor="system")
            else:
                await self.store.drop_due(aid)
                continue
            try:
                await self.act(cmd)
            except (IllegalTransition, LookupError):
                await self.store.drop_due(aid)
                continue
            done += 1
            self.stats.escalations += 1
        return done

    async def _escalator(self) -> None:
        while True:
            await asyncio.sleep(self.escalate_every_s)
            try:
                await self.escalate_due()
            except aioredis.RedisError as exc:
                log.warning("feed: escalator: %s", exc)

    async def metrics(self) -> dict[str, Any]:
        """Effectiveness metrics from the audit stream.

        Recomputed when the audit stream moved (at most once a second, however many consoles
        ask at once) or every 30 s (orders become overdue with time alone).
        """
        async with self._metrics_lock:
            now = self.clock()
            cached = self._metrics_cache
            if cached is not None:
                age = now - cached[0]
                if age < 1_000 or (cached[1] == self.pos_l and age < 30_000):
                    return cached[2]
            pos = self.pos_l
            events = [ev async for ev in self.store.audit_events()]
            result = compute_metrics(events, now_ms=now)
            self._metrics_cache = (now, pos, result)
            return result


# -- helpers ------------------------------------------------------------------------------


def _registry(directory: Path, given: Registry | None, districts: bytes) -> Registry:
    """The registry in ``directory``, else ``given``, else one holding only the districts of
    ``districts`` (GeoJSON); a registry that cannot be read is logged, not fatal."""
    reg = None
    if directory.exists():
        try:
            reg = Registry.load(directory)
        except (CitywatchError, OSError) as exc:
            log.warning("feed: registry %s not read (%s); maps without its places", directory, exc)
    if reg is None or not (reg.districts or reg.towns):
        reg = given or reg or Registry()
    if not reg.districts:
        with contextlib.suppress(CitywatchError, ValueError):
            reg.districts = parse_districts(orjson.loads(districts))
    return reg


def vars_of(stats: Stats) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in stats.__slots__}


def _json_field(fields: dict[bytes, bytes], name: bytes) -> dict[str, Any] | None:
    """The JSON object in stream field ``name`` (``a`` alert, ``e`` audit event), or None."""
    raw = fields.get(name)
    if not raw:
        return None
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return d if isinstance(d, dict) else None


class _SearchUnavailable(CitywatchError):
    """Search is off, or its index failed (a server-side problem, not the request's)."""


#: Query parameters of ``/api/search`` that may repeat or carry comma-separated lists.
_LIST_PARAMS: Final = ("kinds", "districts", "towns", "rules", "statuses")


def _json_error(status: http.HTTPStatus, code: str, message: str) -> Response:
    body = orjson.dumps({"type": "error", "code": code, "message": message})
    return _response(status, body, "application/json")


def _response(status: http.HTTPStatus, body: bytes, ctype: str) -> Response:
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", ctype),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def _load_static(directory: Path) -> dict[str, tuple[bytes, str]]:
    """Every file of the console, read once: only these names are ever served."""
    files: dict[str, tuple[bytes, str]] = {}
    if not directory.is_dir():
        return files
    for p in sorted(directory.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            ctype = mimetypes.guess_type(p.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
                ctype += "; charset=utf-8"
            files[p.name] = (p.read_bytes(), ctype)
    return files


def _backlog(ws: ServerConnection) -> int:
    """Bytes written to the client's transport and not yet taken by the kernel."""
    try:
        return int(ws.transport.get_write_buffer_size())
    except (AttributeError, RuntimeError):  # a closed transport holds nothing more
        return 0


def _direct_loopback(ws: ServerConnection) -> bool:
    """Whether the peer is this machine and no proxy stands between (no forwarding headers):
    a reverse proxy on the same host must not turn a remote browser into a loopback one."""
    try:
        host = str(ws.remote_address[0])
    except (TypeError, IndexError, OSError):
        return False
    request = ws.request
    if request is not None and any(h in request.headers for h in _PROXY_HEADERS):
        return False
    return is_loopback(host) or host.startswith("::ffff:127.")


def check_exposure(host: str, *, dev_logins: bool) -> None:
    """Refuse a non-loopback interface while development logins (published tokens) are on."""
    if dev_logins and not is_loopback(host):
        msg = (
            f"host {host or '(all interfaces)'!r} is not loopback and the development token is "
            "on: set CW_FEED_TOKENS= (empty) and log in with users from `citywatch users add`"
        )
        raise ConfigError(msg)


def _peer(ws: ServerConnection) -> str:
    try:
        host, port = ws.remote_address[:2]
    except (TypeError, ValueError, OSError):
        return "?"
    return f"{host}:{port}"


async def _close(ws: ServerConnection, code: int, reason: str) -> None:
    try:
        async with asyncio.timeout(2.0):
            await ws.close(code, reason)
    except TimeoutError:
        ws.transport.abort()  # its buffers are full: the close frame cannot get through


def _tune_gc(stats: Stats, *, tune: bool = True) -> None:
    """Fewer cyclic-GC pauses inside bursts, for a process holding thousands of connections.

    With the default thresholds the 1,000-client benchmark saw ~560 collections, 1-4 s of
    pauses in all and single pauses of 0.3-2 s on a loaded machine; with start-up objects
    frozen, thresholds raised and young collections moved to quiet moments
    (:meth:`FeedServer.collect_when_idle`), a handful. ``/healthz`` reports the pauses
    (``gc_runs``, ``gc_pause_ms_total``, ``gc_pause_ms_max``). ``CW_FEED_GC_DEFAULT=1`` keeps
    Python's defaults, for comparison.
    """
    started: list[float] = [0.0]

    def measure(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        pause_ms = (time.perf_counter() - started[0]) * 1000.0
        stats.gc_runs += 1
        stats.gc_pause_ms_total += pause_ms
        stats.gc_pause_ms_max = max(stats.gc_pause_ms_max, pause_ms)

    gc.callbacks.append(measure)
    if tune:
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)


async def run(
    settings: Settings,
    *,
    registry_dir: Path | None = None,
    districts: bytes | None = None,
    stop: asyncio.Event | None = None,
    demo_logins: bool = False,
    registry: Registry | None = None,
    outlines: Outlines | None = None,
) -> None:
    """Serve until ``stop`` is set (the CLI sets it on SIGTERM/SIGINT)."""
    if not settings.redis_url:
        msg = "serve: redis_url is not set"
        raise ConfigError(msg)
    store = FeedStore.from_url(settings.redis_url, settings.keys)
    search = open_search(settings, registry_dir or settings.data_dir / "registry", registry)
    server = FeedServer(
        settings,
        store,
        registry_dir=registry_dir,
        districts=districts,
        demo_logins=demo_logins,
        search=search,
        registry=registry,
        outlines=outlines,
    )
    stop = stop or asyncio.Event()
    collector: asyncio.Task[None] | None = None
    try:
        await server.start()
        tune = os.environ.get("CW_FEED_GC_DEFAULT") != "1"
        _tune_gc(server.stats, tune=tune)
        if tune:
            collector = asyncio.create_task(server.collect_when_idle())
        await stop.wait()
    finally:
        if collector is not None:
            collector.cancel()
        await server.stop()
        await store.close()
        if search is not None:
            search.close()


def open_search(
    settings: Settings, registry_dir: Path, registry: Registry | None = None
) -> SearchService | None:
    """The feed's search service, or None (logged) when its index cannot be opened: the feed
    serves without search rather than not at all. Tickets are placed, and place names in
    queries found, with ``registry`` when given (the fallback the maps use), else with the
    registry in ``registry_dir``."""
    from sinks.search import open_index
    from sinks.search.service import registry_search

    if not settings.redis_url or settings.search_url == "off":
        return None
    try:
        index = open_index(settings)
    except (CitywatchError, OSError, sqlite3.Error) as exc:
        log.warning("feed: search is off: %s", exc)
        return None
    locator, places = registry_search(registry_dir, registry)
    return SearchService(index, settings.redis_url, settings.keys, locator, places)
