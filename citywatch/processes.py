"""The processes our commands and benchmarks start: a free loopback port, a polite stop,
waiting for a local listener."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from citywatch.errors import InputError

__all__ = [
    "check_port",
    "free_port",
    "is_listening",
    "port_owner",
    "port_problem",
    "stop_process",
    "wait_listening",
]

#: ``st`` of a listening socket in /proc/net/tcp*.
_LISTEN = "0A"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_process(
    proc: subprocess.Popen[Any], *, grace_s: float = 0.0, wait_s: float = 15.0
) -> None:
    """Stop ``proc`` and reap it: give it ``grace_s`` to end on its own (it may have had the
    signal already), then SIGTERM, then after ``wait_s`` SIGKILL."""
    if grace_s and proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def is_listening(port: int) -> bool | None:
    """Whether a TCP socket of this host listens on ``port`` (None: cannot tell, no /proc).

    Read from ``/proc/net/tcp*``, never by connecting: a probe connection would be taken
    for a peer by the server (a bytewax cluster process, say)."""
    seen = False
    want = f":{port:04X}"
    for name in ("tcp", "tcp6"):
        try:
            lines = Path("/proc/net", name).read_text().splitlines()[1:]
        except OSError:
            continue
        seen = True
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(want) and fields[3] == _LISTEN:
                return True
    return False if seen else None


def wait_listening(address: str, timeout_s: float = 10.0, poll_s: float = 0.01) -> bool:
    """Wait until ``host:port`` listens, for a loopback host; True once it does. False after
    ``timeout_s``, or at once for another host or where this host cannot tell."""
    host, _, port = address.rpartition(":")
    if host not in LOOPBACK or not port.isdigit():
        return False
    deadline = time.monotonic() + timeout_s
    while True:
        state = is_listening(int(port))
        if state is None:
            return False
        if state:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def port_owner(port: int) -> int | None:
    """The pid of a process of this host listening on TCP ``port``, when /proc tells."""
    want = f":{port:04X}"
    inodes: set[str] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path("/proc/net", name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[1].endswith(want) and fields[3] == _LISTEN:
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in inodes:
                        return int(proc.name)
        except OSError:  # gone, or not ours to read
            continue
    return None


def port_problem(host: str, port: int, exc: OSError) -> str:
    """One line saying why ``host:port`` cannot be bound and what to do."""
    if exc.errno == errno.EADDRINUSE:
        pid = port_owner(port)
        by = f" (by pid {pid})" if pid is not None else ""
        return f"port {port} is taken{by}; set CW_FEED_PORT or --port"
    if exc.errno == errno.EACCES:
        return f"port {port}: permission denied (ports below 1024 need privileges); use --port"
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return f"host {host!r} is not an address of this machine; use --host"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def check_port(host: str, port: int) -> None:
    """Raise :class:`InputError` (one line, exit 2) unless ``host:port`` can be bound now.

    Binds and closes a socket with ``SO_REUSEADDR``, as asyncio's server will: a port left in
    TIME_WAIT by a previous run counts as free, one with a listener does not. Port 0 (any free
    port) always passes.
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError(port_problem(host, port, exc)) from exc
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            raise InputError(port_problem(host, port, exc)) from exc
