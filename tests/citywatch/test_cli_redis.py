"""Every command that talks to Redis fails in one line with the right exit code when Redis is
misconfigured (exit 2: URL, password, database) or not there (exit 1, after a visible wait)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from citywatch.cli import main
from citywatch.processes import free_port
from citywatch.redisconn import EmbeddedRedis, where

RECORD = b'{"kind":"air","ts":1793548800000,"station":"S1","pm25":3}\n'


def argv_of(command: str, tmp: Path) -> list[str]:
    (tmp / "f.jsonl").write_bytes(RECORD)
    (tmp / "registry.jsonl").write_bytes(b'{"type":"station","id":"S1","lat":32.0,"lon":120.9}\n')
    return {
        "run": ["run", "--speed", "max"],
        "replay": [
            "replay",
            str(tmp / "f.jsonl"),
            "--quiet",
            "--registry",
            str(tmp / "registry.jsonl"),
        ],
        "demo": ["demo", "--duration", "1", "--port", "0"],
        "serve": ["serve", "--port", "0"],
        "report": ["report"],
        "evaluate": ["evaluate", "--scenario", "demo", "--seeds", "1", "--out", str(tmp / "e")],
        "bench": ["bench", "--records", "1000", "--cache", str(tmp / "b")],
        "simulate": ["simulate", "--redis", "--duration", "60", "--out", str(tmp / "s")],
    }[command]


COMMANDS = ("run", "replay", "demo", "serve", "report", "evaluate", "bench", "simulate")


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[str]:
    with EmbeddedRedis(args=("--requirepass", "pw")) as server:
        yield where(server.start_url)


def _run(
    command: str,
    url: str,
    tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> tuple[int, list[str]]:
    monkeypatch.setenv("REDIS_URL", url)
    monkeypatch.setenv("CW_REDIS_RETRIES", "1")
    monkeypatch.setenv("CW_DATA_DIR", str(tmp / "var"))
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    code = main(argv_of(command, tmp))
    out, err = capfd.readouterr()
    text = out + err
    assert "Traceback" not in text
    assert "panicked" not in text
    return code, err.splitlines()


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://x", "redis_url: 'http://x' (from REDIS_URL) is not a redis://"),
        ("redis://127.0.0.1:6379/x", "the database 'x' is not a number"),
    ],
)
def test_a_bad_url_is_one_line_and_exit_2(
    command: str,
    url: str,
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    code, err = _run(command, url, tmp_path, monkeypatch, capfd)
    assert code == 2, err
    assert err == [f"citywatch {command}: error: {err[0].split(': error: ', 1)[1]}"], err
    assert words in err[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unreachable_redis_is_a_bounded_visible_wait_then_exit_1(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    code, err = _run(command, f"redis://127.0.0.1:{port}/0", tmp_path, monkeypatch, capfd)
    assert code == 1, err
    assert err[0] == f"waiting for Redis at 127.0.0.1:{port} (connection refused), retry 1/1"
    assert err[-1].startswith(
        f"citywatch {command}: error: redis: cannot reach Redis at 127.0.0.1:{port} "
        "(connection refused) after 1 retry"
    )
    assert len(err) == 2, err


@pytest.mark.integration
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("creds", "db", "words"),
    [(":wrong@", "0", "refused the user or password"), (":pw@", "77", "has no database 77")],
)
def test_a_wrong_password_or_database_is_one_line_and_exit_2(
    command: str,
    creds: str,
    db: str,
    words: str,
    locked_redis: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url = f"redis://{creds}{locked_redis}/{db}"
    code, err = _run(command, url, tmp_path, monkeypatch, capfd)
    assert code == 2, err
    assert len(err) == 1, err
    assert err[0].startswith(f"citywatch {command}: error: redis_url: Redis at {locked_redis}")
    assert words in err[0]


@pytest.mark.parametrize("url", ["http://x", "redis://127.0.0.1:1/0"])
def test_replay_as_a_user_runs_it_prints_no_backtrace(url: str, tmp_path: Path) -> None:
    """The command as typed in a shell, with RUST_BACKTRACE set: one line, never a hang."""
    (tmp_path / "f.jsonl").write_bytes(RECORD)
    env = {**os.environ, "REDIS_URL": url, "RUST_BACKTRACE": "1", "CW_REDIS_RETRIES": "2",
           "CW_REGION": "31.6,32.7,120.2,121.9"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "citywatch", "replay", "f.jsonl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = done.stderr.splitlines()
    assert done.returncode == (2 if url.startswith("http") else 1), done.stderr
    assert lines[-1].startswith("citywatch replay: error: "), done.stderr
    assert len(lines) == (1 if url.startswith("http") else 3), done.stderr


def test_report_without_redis_says_what_to_set_or_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("CW_REDIS_URL", raising=False)
    monkeypatch.setenv("CW_DATA_DIR", str(tmp_path))
    assert main(["report"]) == 2
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1
    assert "set REDIS_URL" in err[0]
    assert "citywatch demo" in err[0]
