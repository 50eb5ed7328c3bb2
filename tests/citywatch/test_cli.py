from __future__ import annotations

import subprocess
import sys

import pytest

from citywatch.cli import COMMANDS, main
from citywatch.errors import ConfigError, InputError, StoreError


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0
    assert "usage: citywatch" in capsys.readouterr().out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_console_script_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "citywatch", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("citywatch ")


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (ConfigError("redis_url: 'http://x' is not a redis:// URL"), 2, "error: redis_url"),
        (InputError("f.jsonl.gz: truncated gzip"), 2, "error: f.jsonl.gz"),
        (StoreError("Redis at 127.0.0.1:1 unreachable after 5 tries"), 1, "error: Redis"),
        (RuntimeError("boom\nsecond line"), 1, "internal error: RuntimeError: boom"),
    ],
)
def test_a_failure_is_one_line_and_an_exit_code(
    exc: Exception,
    code: int,
    words: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import citywatch.commands.report as report

    def fail(args: object) -> int:
        raise exc

    monkeypatch.setattr(report, "run", fail)
    assert main(["report"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("citywatch report: ")
    assert words in err
    assert "Traceback" not in err


def test_verbose_shows_the_traceback_of_an_unexpected_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import citywatch.commands.report as report

    def fail(args: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "run", fail)
    assert main(["-v", "report"]) == 1
    assert "Traceback" in capsys.readouterr().err
