"""``citywatch bench`` on a tiny file set: cached files, a real flow run, the floor, the JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from citywatch.cli import main
from citywatch.commands.bench import DAY_RATE, file_set, floor
from citywatch.settings import Settings

KEYS = {
    "records_per_s_1p",
    "records_per_s_2p",
    "floor_records_per_s",
    "ratio_to_floor",
    "x_400m_per_day",
    "peak_rss_mb",
}


def _args(cache: Path, **kw: object) -> argparse.Namespace:
    base = {
        "records": 3000,
        "scale": 0.02,
        "seconds": None,
        "seed": 3,
        "partitions": 2,
        "gzip": False,
        "cache": cache,
    }
    return argparse.Namespace(**{**base, **kw})


def test_file_set_is_generated_once_and_keyed_by_its_parameters(tmp_path: Path) -> None:
    logs: list[str] = []
    a = file_set(_args(tmp_path), logs.append)
    assert len(a.parts) == 2
    assert all(Path(p).exists() for p in a.parts)
    assert (a.registry / "stations.jsonl").exists() or any(a.registry.iterdir())
    assert sum(a.by_kind.values()) == a.records >= 3000
    assert {"video", "power", "gps"} <= set(a.by_kind)
    assert a.by_kind["video"] > a.by_kind["power"] > a.by_kind["gps"]  # the Nantong mix
    n = sum(1 for p in a.parts for line in Path(p).read_bytes().splitlines() if line)
    assert n == a.records
    again = file_set(_args(tmp_path), logs.append)
    assert again == a
    assert "cached" in logs[-1]
    other = file_set(_args(tmp_path, seed=4), logs.append)
    assert other.directory != a.directory


def test_a_cache_written_from_another_directory_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a = file_set(_args(Path("cache")), print)  # relative to where it was written
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    b = file_set(_args(tmp_path / "cache"), print)
    assert [Path(p).name for p in b.parts] == [Path(p).name for p in a.parts]
    assert all(Path(p).exists() for p in b.parts)


def test_floor_decodes_and_runs_the_models_over_every_record(tmp_path: Path) -> None:
    fs = file_set(_args(tmp_path), print)
    fl = floor(fs)
    assert fl.records == fs.records
    assert fl.per_s > 0
    assert set(fl.decode_us) == set(fs.by_kind)
    assert all(v > 0 for v in fl.decode_us.values())
    assert fl.model_us["gps"] > 0  # the dwell model ran on every fix


@pytest.mark.integration
@pytest.mark.slow
def test_bench_command_prints_per_kind_costs_and_the_json_last(
    tmp_path: Path,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    argv = ["bench", "--records", "3000", "--scale", "0.02", "--seed", "3", "--partitions", "2"]
    assert main([*argv, "--processes", "1", "--cache", str(tmp_path), "--repeat", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    rates = [
        int(line.split(" = ")[1].split("/s")[0].replace(",", ""))
        for line in out
        if line.startswith("flow 1p:")
    ]
    assert len(rates) == 2  # interleaved with the floor; the best of them is reported
    assert result["records_per_s_1p"] == max(rates)
    assert sum(line.startswith("floor:") for line in out) == 2
    assert set(result) == KEYS
    assert result["records_per_s_1p"] > 0
    assert result["records_per_s_2p"] is None  # not run
    assert result["x_400m_per_day"] == pytest.approx(
        result["records_per_s_1p"] / DAY_RATE,
        rel=0.01,
        abs=0.005,  # printed to 2 decimals
    )
    floors = [
        int(line.split(" = ")[1].split("/s")[0].replace(",", ""))
        for line in out
        if line.startswith("floor:")
    ]
    per_round = sorted(a / b for a, b in zip(rates, floors, strict=True))
    # the median of each round's flow / floor (two rounds: their mean)
    assert result["ratio_to_floor"] == pytest.approx(sum(per_round) / 2, abs=0.002)
    assert result["peak_rss_mb"] > 20
    assert any(line.startswith("flow 1p:") for line in out)
    assert any(line.startswith("video ") for line in out)  # per-kind µs/record
    assert main(["bench", "--processes", "0"]) == 2


def test_bench_refuses_bad_options_before_generating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = ["--cache", str(tmp_path)]
    assert main(["bench", "--repeat", "0", *cache]) == 2
    assert "--repeat must be at least 1" in capsys.readouterr().err
    assert main(["bench", "--records", "0", *cache]) == 2
    assert "must be positive" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no file set was generated for them
