"""File input as a user meets it: broken files, entity order, and the totals at the end."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import redis

from citywatch.cli import main
from citywatch.errors import InputError
from citywatch.settings import Settings
from flows.sources.files import PROBLEMS, FileSource, check_readable
from flows.sources.order import record_ts, scan, sort_by_time
from tests.flows.conftest import counts
from tests.flows.toy import MIN, T0

ROOT = Path(__file__).resolve().parents[2]


def fix(vehicle: str, minute: int) -> bytes:
    return orjson.dumps(
        {"kind": "gps", "ts": T0 + minute * MIN, "vehicle": vehicle, "lat": 32.0, "lon": 120.9}
    )


def by_entity(vehicles: int = 3, minutes: int = 200) -> list[bytes]:
    """Every fix of one vehicle, then the next: what an export per vehicle looks like."""
    return [fix(f"V{v}", m) for v in range(vehicles) for m in range(minutes)]


def by_time(vehicles: int = 3, minutes: int = 200) -> list[bytes]:
    return [fix(f"V{v}", m) for m in range(minutes) for v in range(vehicles)]


def write(path: Path, records: list[bytes]) -> Path:
    data = b"\n".join(records) + b"\n"
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("CW_PREFIX", settings.prefix)
    monkeypatch.setenv("CW_REGION", "31.6,32.7,120.2,121.9")  # no registry here: Nantong's box
    return settings


def one_error(err: str) -> str:
    """The one line that says what went wrong (``citywatch <command>: error: ...``)."""
    assert "Traceback" not in err
    assert "panicked" not in err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) == 1, err
    return errors[0]


# -- files that break --------------------------------------------------------------------------


def cut_gzip(path: Path, records: list[bytes]) -> Path:
    data = gzip.compress(b"\n".join(records) + b"\n")
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


@pytest.mark.integration
def test_a_gzip_cut_short_is_processed_up_to_the_cut_then_said(
    tmp_path: Path,
    cli_env: Settings,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    f = cut_gzip(tmp_path / "cut.jsonl.gz", by_time(3, 1000))
    assert main(["replay", str(f), "--quiet"]) == 2
    line = one_error(capsys.readouterr().err)
    assert f"{f}: gzip data cut short (the file is truncated) after " in line
    m = re.search(r"after ([\d,]+) lines", line)
    assert m is not None
    read = int(m.group(1).replace(",", ""))
    assert 0 < read < 3000
    # Nothing valid is lost: every whole line before the cut went through the flow.
    assert counts(redis_client, cli_env.keys)["records"] == read


@pytest.mark.integration
def test_run_with_files_reports_a_cut_gzip_the_same_way(
    tmp_path: Path, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    f = cut_gzip(tmp_path / "cut.jsonl.gz", by_time(2, 500))
    assert main(["run", "--source", "files", "--files", str(f)]) == 2
    err = capsys.readouterr().err
    assert "gzip data cut short" in one_error(err)
    assert re.search(r"citywatch run: [\d,]+ records: [\d,]+ valid", err), err


@pytest.mark.integration
def test_as_typed_in_a_shell_a_broken_file_is_one_line_without_a_backtrace(
    tmp_path: Path, settings: Settings
) -> None:
    cut = cut_gzip(tmp_path / "cut.jsonl.gz", by_time(2, 500))
    fake = write(tmp_path / "fake.jsonl", by_time(1, 5)).rename(tmp_path / "fake.jsonl.gz")
    env = {**os.environ, "REDIS_URL": str(settings.redis_url), "CW_PREFIX": settings.prefix}
    env.update(RUST_BACKTRACE="1", CW_REGION="31.6,32.7,120.2,121.9")
    for f, what in ((cut, "gzip data cut short"), (fake, "not a gzip file")):
        done = subprocess.run(
            [sys.executable, "-m", "citywatch", "replay", str(f), "--quiet"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert what in one_error(done.stderr)


def test_unusable_files_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "fake.jsonl.gz"
    fake.write_bytes(b"\n".join(by_time(1, 3)))  # plain JSON Lines under a .gz name
    cases = {
        str(tmp_path / "missing.jsonl"): "matches no file",
        str(tmp_path / "empty"): "no .jsonl or .jsonl.gz record file in directory",
        str(fake): 'not a gzip file (it starts with b\'{"kind":"gps\'',
        "/proc/self/mem": "/proc/self/mem: cannot read it",  # opens, then fails to read
    }
    (tmp_path / "empty").mkdir()
    for path, what in cases.items():
        assert main(["replay", path, "--quiet"]) == 2, path
        err = capsys.readouterr().err
        assert what in err, err
        assert len(err.strip().splitlines()) == 1, err
    with pytest.raises(InputError, match="cannot read it"):
        check_readable("/proc/self/mem")


def test_a_byte_order_mark_and_crlf_lose_no_line(tmp_path: Path) -> None:
    f = tmp_path / "windows.jsonl"
    f.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(by_time(1, 3)) + b"\r\n")
    reader = FileSource([str(f)]).open(f"file:{f}", None)
    assert reader.read(10) == by_time(1, 3)
    reader.close()


def test_a_gzip_broken_in_the_middle_reads_the_lines_before_it(tmp_path: Path) -> None:
    records = by_time(3, 400)
    f = cut_gzip(tmp_path / "cut.jsonl.gz", records)
    PROBLEMS.take()
    reader = FileSource([str(f)]).open(f"file:{f}", None)
    got: list[bytes] = []
    while not reader.done:  # type: ignore[attr-defined]
        got += reader.read(100)
    with pytest.raises(StopIteration):
        reader.read(100)
    reader.close()
    assert got == records[: len(got)]
    assert 0 < len(got) < len(records)
    [problem] = PROBLEMS.take()
    assert problem.lines == len(got)


# -- files ordered by entity -------------------------------------------------------------------


def test_scan_tells_entity_order_from_time_order_with_stragglers(tmp_path: Path) -> None:
    entity = scan(str(write(tmp_path / "e.jsonl.gz", by_entity())), 600_000)
    assert (entity.records, entity.back_steps) == (600, 2)
    assert entity.late == 2 * 189  # each later vehicle: minutes 0-188, over 10 min behind
    assert entity.looks_by_entity()
    timed = by_time()
    timed.insert(300, fix("V9", 20))  # one straggler, 80 min late: a real late record
    plain = scan(str(write(tmp_path / "t.jsonl", timed)), 600_000)
    assert (plain.records, plain.back_steps, plain.late) == (601, 1, 1)
    assert not plain.looks_by_entity()


def test_sorting_in_small_runs_is_stable_and_keeps_unreadable_records_in_place(
    tmp_path: Path,
) -> None:
    records = by_entity(4, 50)
    records.insert(77, b"{no ts here")
    f = write(tmp_path / "e.jsonl.gz", records)
    done = sort_by_time(str(f), tmp_path / "sorted", chunk_bytes=2_000)
    assert done.runs > 5
    assert done.records == len(records)
    out = Path(done.path).read_bytes().splitlines()
    ts = [record_ts(r) for r in out]
    readable = [t for t in ts if t is not None]
    assert readable == sorted(readable)
    # Stable: at one ts the vehicles keep the file's order.
    assert [r for r in out if record_ts(r) == T0] == [fix(f"V{v}", 0) for v in range(4)]
    # The record without a ts comes right after the one it followed in the file.
    at = out.index(b"{no ts here")
    assert out[at - 1] == records[76]
    assert sorted(out) == sorted(records)
    assert [p.name for p in (tmp_path / "sorted").iterdir()] == ["e.sorted.jsonl"]


@pytest.mark.integration
def test_replay_sorts_a_file_ordered_by_entity_and_says_so(
    tmp_path: Path,
    cli_env: Settings,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = write(tmp_path / "fleet.jsonl.gz", by_entity())
    assert main(["replay", str(f), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert (
        "replay: fleet.jsonl.gz looks ordered by entity (ts went back 2 times; 378 of 600 "
        "records would be late); sorted by time into a temporary file (600 records"
    ) in err
    c = counts(redis_client, cli_env.keys)
    assert c["records"] == c["in:gps"] == 600  # nothing late
    # As the file is (what every replay did before): most of it lost as late.
    keys = cli_env.with_(prefix=cli_env.prefix + "asis:").keys
    monkeypatch.setenv("CW_PREFIX", cli_env.prefix + "asis:")
    assert main(["replay", str(f), "--quiet", "--order", "file"]) == 0
    assert "looks ordered" not in capsys.readouterr().err
    assert counts(redis_client, keys)["dead:late"] == 378


# -- totals ------------------------------------------------------------------------------------


@pytest.mark.integration
def test_replay_ends_with_the_totals_the_flow_counted(
    tmp_path: Path,
    cli_env: Settings,
    redis_client: redis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = by_time(2, 100)
    bad = [b'{"kind":"gps","ts":NaN}', b'{"kind":"gps","ts":1', b"[]", fix("V7", 10)]
    f = write(tmp_path / "mixed.jsonl", [*records, *bad])
    assert main(["replay", str(f), "--quiet"]) == 0
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("replay: 204 records"))
    assert line.startswith(
        "replay: 204 records: 200 valid, 4 dead letters "
        "(invalid_json 1, late 1, schema 1, ts 1); alerts raised: "
    )
    assert re.search(r"; [\d.]+ s, [\d,]+ records/s; 1 file\(s\), registry ", line), line
    c = counts(redis_client, cli_env.keys)
    assert (c["records"], c["in:gps"], c["dead:late"], c["dead:ts"]) == (204, 200, 1, 1)
    # The parked vehicles' alerts, by rule, as the sink counted them (once per level).
    raised = {k.split(":")[1]: 0 for k in c if k.startswith("alerts:")}
    for k, v in c.items():
        if k.startswith("alerts:"):
            raised[k.split(":")[1]] += v
    assert raised
    for rule, n in raised.items():
        assert f"{rule} {n}" in line
    # A second replay into the same Redis reports its own run, not the sum.
    assert main(["replay", str(f), "--quiet"]) == 0
    assert "replay: 204 records: 200 valid" in capsys.readouterr().err
