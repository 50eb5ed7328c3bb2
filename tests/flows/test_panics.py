"""An error inside a bytewax step: our one-line error out, no Rust panic text on stderr."""

from __future__ import annotations

import logging
import sys

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.run import cli_main
from bytewax.testing import TestingSink, TestingSource

from citywatch.errors import InputError
from flows.panics import contained, unwrap


def failing_flow(exc: Exception) -> Dataflow:
    flow = Dataflow("panics")
    s = op.input("in", flow, TestingSource([1, 2, 3]))

    def step(x: int) -> int:
        print(f"progress {x}", file=sys.stderr)  # the CLI's own stderr output passes
        if x == 2:
            raise exc
        return x

    op.output("out", op.map("m", s, step), TestingSink([]))
    return flow


def test_our_error_comes_out_and_the_panic_text_does_not(
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    caplog.set_level(logging.WARNING)  # not -v: the panic text is filtered
    with pytest.raises(InputError, match=r"f\.jsonl: broken"), contained():
        cli_main(failing_flow(InputError("f.jsonl: broken")), workers_per_process=1)
    err = capfd.readouterr().err
    assert "progress 1" in err
    assert "panicked" not in err
    assert "stack backtrace" not in err
    assert "RUST_BACKTRACE" not in err


def test_any_other_error_comes_out_as_itself_not_as_bytewax_s_wrapper(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with pytest.raises(ZeroDivisionError), contained():
        cli_main(failing_flow(ZeroDivisionError("x")), workers_per_process=1)
    assert "panicked" not in capfd.readouterr().err


def test_unwrap_finds_ours_anywhere_in_the_chain() -> None:
    inner = InputError("ours")
    outer = RuntimeError("wrapper")
    outer.__cause__ = inner
    assert unwrap(outer) is inner
    plain = ValueError("alone")
    assert unwrap(plain) is plain
