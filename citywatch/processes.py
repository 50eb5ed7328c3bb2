"""The processes our commands and benchmarks start: a free loopback port, a polite stop."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
from typing import Any

__all__ = ["free_port", "stop_process"]


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
