"""What stops a running flow reaches the operator as one line: our own error wrapped by
bytewax, a full recovery disk, a lost cluster peer; a failed cluster member stops the rest."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from citywatch.errors import DependencyError, StoreError
from flows.run import _wait_cluster, citywatch_errors, flow_error


class PanicException(BaseException):
    """Named as pyo3 names a Rust panic."""


def wrapped(inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise RuntimeError("(src/outputs.rs:554:34): error writing output batch") from exc
    except RuntimeError as outer:
        return outer


def test_our_error_inside_bytewax_error_is_raised_as_it_is() -> None:
    store = StoreError("redis: Redis at 127.0.0.1:1 unreachable for 300 s")
    with pytest.raises(StoreError) as info, citywatch_errors():
        raise wrapped(store)
    assert info.value is store


def test_a_full_recovery_disk_says_where_and_what_to_do() -> None:
    exc = RuntimeError(
        "called `Result::unwrap()` on an `Err` value: SqliteFailure(Error { code: DiskFull, "
        'extended_code: 13 }, Some("database or disk is full"))'
    )
    error = flow_error(exc, "/var/recovery/run1")
    assert isinstance(error, DependencyError)
    assert str(error).startswith("recovery: no space left in /var/recovery/run1")
    assert "rerun the same command" in str(error)


def test_a_lost_peer_of_a_cluster_is_one_line() -> None:
    with pytest.raises(DependencyError, match="cluster: lost the connection"), citywatch_errors():
        raise PanicException("Send thread panic: Any { .. }")


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ValueError("a bug")])
def test_anything_else_passes_unchanged(exc: BaseException) -> None:
    with pytest.raises(type(exc)), citywatch_errors():
        raise exc


def test_a_failed_cluster_member_stops_the_others(capsys: pytest.CaptureFixture[str]) -> None:
    code = "import sys, time; time.sleep(float(sys.argv[1])); sys.exit(int(sys.argv[2]))"
    slow = subprocess.Popen([sys.executable, "-c", code, "60", "0"])
    failing = subprocess.Popen([sys.executable, "-c", code, "0.2", "3"])
    t0 = time.monotonic()
    codes = _wait_cluster([slow, failing], grace_s=0.5)
    assert time.monotonic() - t0 < 10
    assert codes[1] == 3
    assert codes[0] != 0  # stopped, not waited for
    assert "cluster process 1 stopped (exit code 3)" in capsys.readouterr().err
