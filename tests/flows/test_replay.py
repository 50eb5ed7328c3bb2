"""``citywatch replay``: files through the real city flow, with pacing, a window and progress."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import redis

from citywatch.cli import main
from citywatch.settings import Settings
from flows.replay import Progress, ReplaySource, progress_line, record_ts
from flows.sources.files import expand_paths
from tests.flows.conftest import counts

MIN = 60_000


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-minute demo run as ``citywatch simulate`` writes it: 2 gzip parts + truth."""
    out = tmp_path_factory.mktemp("sim")
    rc = main(
        [
            "simulate",
            "--scenario",
            "demo",
            "--seed",
            "4",
            "--duration",
            "10m",
            "--partitions",
            "2",
            "--gzip",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return out


def _records(d: Path) -> list[bytes]:
    out: list[bytes] = []
    for f in sorted(d.glob("part-*.jsonl.gz")):
        out += [line for line in gzip.decompress(f.read_bytes()).splitlines() if line]
    return out


def test_record_ts_reads_the_field_without_parsing_and_falls_back() -> None:
    assert record_ts(b'{"kind":"gps","ts":17,"x":1}') == 17
    assert record_ts(b'{"kind":"gps","x":{"ts":3},"ts":12}') == 3  # first "ts": is taken
    assert record_ts(b'{"ts": 42}') == 42  # not the compact form: parsed
    assert record_ts(b'{"ts":1.5}') is None
    assert record_ts(b'{"ts":"12"}') is None
    assert record_ts(b"[1,2]") is None
    assert record_ts(b"\xff not json") is None


def test_directory_means_its_record_files_not_the_truth(sim_dir: Path) -> None:
    files = expand_paths([str(sim_dir)])
    assert [Path(f).name for f in files] == ["part-000.jsonl.gz", "part-001.jsonl.gz"]
    assert (sim_dir / "labels.jsonl").exists()


def test_window_keeps_only_records_inside_it(sim_dir: Path) -> None:
    recs = _records(sim_dir)
    t0 = min(ts for r in recs if (ts := record_ts(r)) is not None)
    lo, hi = t0 + 2 * MIN, t0 + 5 * MIN
    progress = Progress()
    src = ReplaySource([str(sim_dir)], from_ms=lo, to_ms=hi, progress=progress)
    got: list[bytes] = []
    for part in src.list_parts():
        reader = src.open(part, None)
        while True:
            try:
                got += reader.read(500)
            except StopIteration:
                break
        reader.close()
    want = [r for r in recs if lo <= (record_ts(r) or lo) < hi]
    assert sorted(got) == sorted(want)
    assert progress.records == len(want)
    assert progress.skipped == len(recs) - len(want)
    assert progress.fraction() == pytest.approx(1.0)
    line = progress_line(progress)
    assert f"{len(want):,} rec" in line
    assert "100%" in line


def test_pacing_releases_records_when_event_time_is_due(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(b"".join(b'{"kind":"x","ts":%d}\n' % (1000 * i) for i in range(10)))
    now = [100.0]
    src = ReplaySource([str(f)], speed=2.0, clock=lambda: now[0])
    reader = src.open(src.list_parts()[0], None)
    assert len(reader.read(100)) == 1  # ts 0 anchors; ts 1000 is due in 0.5 s
    assert reader.next_awake() is not None
    assert reader.read(100) == []
    now[0] += 1.0  # 2 event seconds later: ts 1000 and 2000
    assert [record_ts(r) for r in reader.read(100)] == [1000, 2000]
    now[0] += 100.0
    assert len(reader.read(100)) == 7
    with pytest.raises(StopIteration):
        reader.read(100)
    reader.close()


def test_bad_window_and_missing_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not before"):
        ReplaySource([str(tmp_path)], from_ms=5, to_ms=5)
    assert main(["replay", str(tmp_path / "nothing*.jsonl"), "--quiet"]) == 2
    assert main(["replay", str(tmp_path), "--from", "yesterday", "--quiet"]) == 2


def test_no_registry_and_no_region_is_one_line_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no var/registry here
    monkeypatch.delenv("CW_REGION", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    f = tmp_path / "f.jsonl"
    f.write_bytes(b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":35}\n')
    assert main(["replay", str(f), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # no "embedded Redis at ..." before it
    assert "no registry" in err
    assert "CW_REGION" in err


@pytest.mark.integration
def test_replay_command_runs_the_city_flow_into_redis(
    sim_dir: Path,
    settings: Settings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("CW_PREFIX", settings.prefix)
    recs = _records(sim_dir)
    assert main(["replay", str(sim_dir), "--speed", "max"]) == 0
    err = capsys.readouterr().err
    assert f"{len(recs):,} records" in err
    assert f"registry {sim_dir / 'registry'}" in err
    c = counts(redis_client, settings.keys)
    # Every record of the part files and nothing else (the truth files are not input).
    assert c["records"] == len(recs)
    assert sum(v for k, v in c.items() if k.startswith("dead:")) == 0
    assert redis_client.xlen(settings.keys.alerts) > 0
