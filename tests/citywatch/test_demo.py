"""`citywatch demo` comes up on an embedded Redis, shows alerts at once and stops cleanly; its
Redis keeps its data (killed, or the demo restarted) and other commands find it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import redis


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CW_REDIS_URL")}
    env["CW_FEED_PORT"] = "0"  # any free port
    env["CW_DATA_DIR"] = str(data)
    return env


def _start_demo(data: Path, **popen: object) -> tuple[subprocess.Popen[str], list[str]]:
    """The demo, run until its status line counts an alert change."""
    env = _env(data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "citywatch", "demo", "--every", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    lines: list[str] = []
    try:
        _read_until(proc, lines, r"alert changes\s+[1-9]")
    except AssertionError:
        proc.kill()
        proc.communicate()
        raise
    return proc, lines


def _stopped_cleanly(proc: subprocess.Popen[str], lines: list[str]) -> str:
    out, _ = proc.communicate(timeout=30)
    text = "".join(lines) + out
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    assert "panicked" not in text
    assert "citywatch demo: stopped" in text
    return text


@pytest.mark.integration
@pytest.mark.slow
def test_demo_shows_alerts_on_embedded_redis_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    proc, lines = _start_demo(tmp_path)
    proc.send_signal(signal.SIGINT)
    text = _stopped_cleanly(proc, lines)
    assert "Redis embedded at redis://127.0.0.1:" in text
    assert any(re.search(r"records\s+[1-9]", ln) for ln in lines), text
    # the pre-roll puts alerts on screen straight away, at live pace
    assert any(re.search(r"alert changes\s+[1-9]", ln) for ln in lines), text
    assert "console at http://127.0.0.1:" in text


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_every_process_once(tmp_path: Path) -> None:
    """A terminal sends Ctrl-C to the whole process group: the flow must not also get the
    demo's SIGTERM while it lands its last batch (a second signal is a hard stop)."""
    proc, lines = _start_demo(tmp_path, start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)
    _stopped_cleanly(proc, lines)


def _read_until(proc: subprocess.Popen[str], lines: list[str], pattern: str) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return line
    raise AssertionError(f"no line like {pattern!r} in:\n{''.join(lines)}")


@pytest.mark.integration
@pytest.mark.slow
def test_the_demo_redis_keeps_its_data_when_killed_and_when_the_demo_restarts(
    tmp_path: Path,
) -> None:
    proc, lines = _start_demo(tmp_path)
    try:
        record = orjson.loads((tmp_path / "demo" / "redis.json").read_bytes())
        client = redis.Redis.from_url(record["url"], socket_timeout=2)
        client.xadd("cw:audit", {"e": b'{"action":"sign","actor":"test"}'})
        firing = client.zcard("cw:open")
        assert firing > 0
        # Another command finds the demo's Redis without REDIS_URL, and says so.
        report = subprocess.run(
            [sys.executable, "-m", "citywatch", "report", "--json"],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert report.returncode == 0, report.stderr
        assert f"using the demo's Redis at {record['url']}" in report.stderr
        time.sleep(1.2)  # appendfsync everysec
        os.kill(record["pid"], signal.SIGKILL)
        _read_until(proc, lines, r"embedded Redis exited \(killed by SIGKILL\); restarting")
        _read_until(proc, lines, r"alert changes")
        assert client.xlen("cw:audit") == 1  # kept across the kill
        assert client.zcard("cw:open") >= firing
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        _stopped_cleanly(proc, lines)
    assert not (tmp_path / "demo" / "redis.json").exists()
    assert not _alive(record["pid"])

    again, lines = _start_demo(tmp_path)
    try:
        text = "".join(lines)
        assert "resuming the flow (scenario demo, seed 1)" in text, text
        record = orjson.loads((tmp_path / "demo" / "redis.json").read_bytes())
        client = redis.Redis.from_url(record["url"], socket_timeout=2)
        assert client.xlen("cw:audit") == 1  # kept across a restart of the demo
        client.close()
    finally:
        again.send_signal(signal.SIGINT)
        _stopped_cleanly(again, lines)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_demo_resumes_the_flow_it_stopped_unless_told_otherwise(tmp_path: Path) -> None:
    import argparse

    from citywatch.commands.demo import DemoFlow

    args = argparse.Namespace(speed="1x", preroll=900.0)
    first = DemoFlow(tmp_path, "demo", None)
    assert (first.seed, first.resuming) == (1, False)
    assert first.argv(args)[-4:] == [
        "--recovery",
        str(tmp_path / "flow" / "demo-1"),
        "--preroll",
        "900.0",
    ]
    first.recovery.mkdir(parents=True)  # the flow ran and snapshotted
    again = DemoFlow(tmp_path, "demo", None)
    assert (again.seed, again.resuming) == (1, True)
    again.next_seed()  # the scenario finished
    assert not (tmp_path / "flow" / "demo-1").exists()
    assert DemoFlow(tmp_path, "demo", None).seed == 2
    other = DemoFlow(tmp_path, "demo", 7)  # an explicit other seed starts that one afresh
    assert (other.seed, other.resuming) == (7, False)
    assert DemoFlow(tmp_path, "air-faults", None).seed == 1
