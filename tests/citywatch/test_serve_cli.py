"""`citywatch serve`, `demo` and `users` failure paths: one line, an exit code, nothing left
running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from citywatch.cli import main
from citywatch.identity import UserStore, hash_token


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _citywatch(
    *argv: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CW_")}
    return subprocess.run(
        [sys.executable, "-m", "citywatch", *argv],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _left_behind(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (our children would inherit it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.integration
@pytest.mark.parametrize("command", ["demo", "serve"])
def test_a_taken_port_is_one_line_exit_2_and_nothing_started(
    command: str, taken_port: int, redis_url: str
) -> None:
    marker = f"CW_TEST_MARK_{uuid.uuid4().hex}"
    env = {"CW_FEED_PORT": str(taken_port), marker: "1"}
    if command == "serve":
        env["REDIS_URL"] = redis_url
    out = _citywatch(command, env=env)
    assert out.returncode == 2, out
    assert out.stdout == ""
    assert out.stderr == (
        f"citywatch {command}: error: port {taken_port} is taken (by pid {os.getpid()}); "
        "set CW_FEED_PORT or --port\n"
    )
    assert _left_behind(marker) == []


@pytest.mark.integration
def test_serve_refuses_a_public_host_with_the_development_token(redis_url: str) -> None:
    out = _citywatch("serve", "--host", "0.0.0.0", "--port", "0", env={"REDIS_URL": redis_url})  # noqa: S104
    assert out.returncode == 2, out
    assert out.stderr.count("\n") == 1
    assert "'0.0.0.0' is not loopback and the development token is on" in out.stderr
    assert "set CW_FEED_TOKENS= (empty)" in out.stderr
    out = _citywatch("demo", env={"CW_FEED_HOST": "0.0.0.0"})  # noqa: S104
    assert (out.returncode, out.stderr.count("\n")) == (2, 1), out


def test_users_commands_print_the_token_once_and_store_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CW_DATA_DIR", str(tmp_path))

    def users(*argv: str) -> tuple[int, str, str]:
        code = main(["users", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    add = ("add", "wang", "--name", "王环保", "--role", "handler")
    code, out, err = users(*add)
    assert (code, out) == (2, "")
    assert "dept: a handler needs a department" in err
    code, _, err = users(*add, "--dept", "<b>x</b>")
    assert (code, "is not a known department" in err) == (2, True)
    code, token, _ = users(*add, "--dept", "生态环境局")
    assert code == 0
    token = token.strip()
    assert token.startswith("cw_")
    assert len(token) > 40
    text = (tmp_path / "users.json").read_text(encoding="utf-8")
    assert token not in text
    assert hash_token(token) in text
    assert (tmp_path / "users.json").stat().st_mode & 0o777 == 0o600
    code, _, err = users("add", "wang", "--name", "x", "--role", "leader")
    assert (code, "exists" in err) == (2, True)
    code, out, err = users("list")
    assert "王环保" in out
    assert token not in out + err
    rotated = users("rotate", "wang")[1].strip()
    store = UserStore(tmp_path / "users.json")
    assert store.lookup(token) is None
    who = store.lookup(rotated)
    assert who is not None
    assert (who.id, who.dept) == ("wang", "生态环境局")
    assert users("revoke", "wang")[0] == 0
    assert store.lookup(rotated) is None
    assert users("remove", "wang")[0] == 0
    assert users("remove", "wang") == (2, "", "citywatch users: error: users: no user 'wang'\n")
