"""kill -9 the flow at several points and resume: Redis ends as after an uninterrupted run."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
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
    return start_argv([url, prefix, str(directory), str(speed)])


def committed_epoch(directory: Path) -> int:
    """The epoch every recovery partition in ``directory`` has committed (bytewax's tables)."""
    epochs = []
    for part in directory.glob("*.sqlite3"):
        with contextlib.closing(sqlite3.connect(part)) as db:
            row = db.execute("SELECT min(commit_epoch) FROM commits").fetchone()
        epochs.append(row[0] if row and row[0] is not None else 0)
    return min(epochs, default=0)


def start_argv(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.flows.toy_run", *argv],
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


def test_a_resumed_engine_publishes_its_open_alerts_to_a_redis_that_lost_them(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    """kill -9 after the last version of an alert the engine holds open to the end, Redis
    loses everything meanwhile: the resumed engine sends its open alerts once more."""
    assert settings.redis_url is not None
    ref = settings.with_(prefix=settings.prefix + "ref:")
    run_main(build(settings.redis_url, ref.prefix, "ref", None, durable=False, scenario="held"))  # type: ignore[arg-type]
    expected = final_alerts(redis_client, ref.keys)
    opened = {i: v for i, v in expected.items() if v[1] == "firing"}
    assert len(opened) == 1
    ((held_id, (version, _, _)),) = opened.items()

    crash = settings.with_(prefix=settings.prefix + "crash:")
    argv = [settings.redis_url, crash.prefix, str(tmp_path / "rec")]
    proc = start_argv([*argv, "0.02", "held"])
    deadline = time.monotonic() + 30
    while redis_client.hget(crash.keys.alert(held_id), "version") != str(version).encode():
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "the held alert never reached Redis"
        time.sleep(0.02)
    # A snapshot after it: recovery commits an epoch once the whole flow has passed it.
    seen = committed_epoch(tmp_path / "rec")
    while committed_epoch(tmp_path / "rec") < seen + 2:
        assert proc.poll() is None, "the run ended before a snapshot after the held alert"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    lost = list(redis_client.scan_iter(match=crash.keys.pattern(), count=1000))
    redis_client.delete(*lost)  # Redis lost everything while the flow was down
    proc = start_argv([*argv, "0", "held"])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    got = final_alerts(redis_client, crash.keys)
    assert {i: v for i, v in got.items() if v[1] == "firing"} == opened
    assert [i.decode() for i in redis_client.zrange(crash.keys.open, 0, -1)] == [held_id]


def test_a_setup_killed_half_way_is_started_again(tmp_path: Path) -> None:
    from bytewax.recovery import init_db_dir

    from flows.run import RunOptions, prepare_recovery

    d = tmp_path / "rec"
    d.mkdir()
    init_db_dir(d, 1)  # the partition file exists, the state file does not: killed in between
    opts = prepare_recovery(RunOptions(source="files", paths=("x.jsonl",), recovery_dir=str(d)))
    assert opts.run_id
    again = prepare_recovery(RunOptions(source="files", paths=("x.jsonl",), recovery_dir=str(d)))
    assert again.run_id == opts.run_id  # a real run is resumed, not set up again
