"""Helpers for the processes we start: waiting for a local listener without connecting."""

from __future__ import annotations

import socket
import threading
import time

from citywatch.processes import free_port, is_listening, wait_listening


def test_a_listening_port_is_seen_and_a_bound_one_is_not() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        assert is_listening(port) is False  # bound, not listening yet
        s.listen()
        assert is_listening(port) is True
        s.settimeout(0.2)
        try:
            s.accept()
        except TimeoutError:
            pass
        else:  # pragma: no cover - the check must not connect
            raise AssertionError("is_listening connected to the port")
    assert is_listening(port) is False


def test_wait_listening_returns_once_the_server_listens() -> None:
    port = free_port()
    server = socket.socket()

    def listen_later() -> None:
        time.sleep(0.2)
        server.bind(("127.0.0.1", port))
        server.listen()

    t = threading.Thread(target=listen_later)
    t0 = time.monotonic()
    t.start()
    try:
        assert wait_listening(f"127.0.0.1:{port}", timeout_s=5)
        assert 0.15 < time.monotonic() - t0 < 2
    finally:
        t.join()
        server.close()


def test_wait_listening_gives_up_after_the_timeout_or_for_another_host() -> None:
    t0 = time.monotonic()
    assert not wait_listening(f"127.0.0.1:{free_port()}", timeout_s=0.1)
    assert time.monotonic() - t0 < 1
    assert not wait_listening("10.1.2.3:2101", timeout_s=5)  # cannot tell: no wait
    assert time.monotonic() - t0 < 1
