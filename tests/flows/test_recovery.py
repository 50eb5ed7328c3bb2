"""kill -9 the flow at several points and resume: Redis ends as after an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from bytewax.testing import run_main

from citywatch.settings import Settings
from tests.flows.conftest import counts, final_alerts, stream_versions
from tests.flows.toy_run import MINUTES, build

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def start(url: str, prefix: str, directory: Path, speed: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.flows.toy_run", url, prefix, str(directory), str(speed)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_kill_9_and_resume_equals_an_uninterrupted_run(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    assert settings.redis_url is not None
    ref = settings.with_(prefix=settings.prefix + "ref:")
    run_main(build(settings.redis_url, ref.prefix, "ref", None, durable=False))  # type: ignore[arg-type]
    expected = final_alerts(redis_client, ref.keys)
    assert expected, "the scenario must raise alerts"

    crash = settings.with_(prefix=settings.prefix + "crash:")
    speed = MINUTES * 60 / 6.0  # the whole scenario in about 6 s of wall time
    kills = 0
    for delay in (1.5, 2.0):
        proc = start(settings.redis_url, crash.prefix, tmp_path / "rec", speed)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.communicate()
    assert kills >= 1
    partial = final_alerts(redis_client, crash.keys)
    proc = start(settings.redis_url, crash.prefix, tmp_path / "rec", speed)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]

    assert partial != expected  # the kills really cut the run short
    assert final_alerts(redis_client, crash.keys) == expected
    got = stream_versions(redis_client, crash.keys)
    assert len(got) == len(set(got)) == len(stream_versions(redis_client, ref.keys))
    assert counts(redis_client, crash.keys) == counts(redis_client, ref.keys)


@pytest.mark.slow
def test_real_models_kill_9_and_resume_equals_an_uninterrupted_run(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    """Every registered model's state must survive snapshot and resume (pickle, no state kept
    on the model object): the demo killed twice ends as an uninterrupted demo."""
    from flows.run import run_city
    from tests.flows.real_run import options

    assert settings.redis_url is not None
    ref = settings.with_(prefix=settings.prefix + "ref:")
    assert run_city(ref, options(None, None)) == 0
    expected = final_alerts(redis_client, ref.keys)
    assert expected

    crash = settings.with_(prefix=settings.prefix + "crash:")
    directory = tmp_path / "rec"
    argv = [
        sys.executable,
        "-m",
        "tests.flows.real_run",
        settings.redis_url,
        crash.prefix,
        str(directory),
        "600",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for delay in (3.0, 3.0):
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    assert final_alerts(redis_client, crash.keys) != expected
    argv[-1] = "100000"
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert final_alerts(redis_client, crash.keys) == expected
    got = stream_versions(redis_client, crash.keys)
    assert len(got) == len(set(got)) == len(stream_versions(redis_client, ref.keys))
    c_ref, c_crash = counts(redis_client, ref.keys), counts(redis_client, crash.keys)
    assert c_crash["records"] == c_ref["records"]
