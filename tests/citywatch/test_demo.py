"""`citywatch demo` comes up on an embedded Redis, shows alerts at once and stops cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest


def _start_demo(**popen: object) -> tuple[subprocess.Popen[str], list[str]]:
    """The demo, run until its status line counts an alert change."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CW_REDIS_URL")}
    env["CW_FEED_PORT"] = "0"  # any free port
    proc = subprocess.Popen(
        [sys.executable, "-m", "citywatch", "demo", "--every", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        **popen,  # type: ignore[call-overload]
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"alert changes\s+([\d,]+)", line)
        if m and int(m.group(1).replace(",", "")) > 0:
            break
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
def test_demo_shows_alerts_on_embedded_redis_and_stops_on_ctrl_c() -> None:
    proc, lines = _start_demo()
    proc.send_signal(signal.SIGINT)
    text = _stopped_cleanly(proc, lines)
    assert "Redis embedded at redis://127.0.0.1:" in text
    assert any(re.search(r"records\s+[1-9]", ln) for ln in lines), text
    # the pre-roll puts alerts on screen straight away, at live pace
    assert any(re.search(r"alert changes\s+[1-9]", ln) for ln in lines), text
    assert "console at http://127.0.0.1:" in text


@pytest.mark.integration
@pytest.mark.slow
def test_ctrl_c_in_a_terminal_stops_every_process_once() -> None:
    """A terminal sends Ctrl-C to the whole process group: the flow must not also get the
    demo's SIGTERM while it lands its last batch (a second signal is a hard stop)."""
    proc, lines = _start_demo(start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)
    _stopped_cleanly(proc, lines)
