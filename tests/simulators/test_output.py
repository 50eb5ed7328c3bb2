"""Files, partitions, gzip, Redis Streams, stdout, pacing and the CLI."""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import pytest
import redis

from citywatch.commands import simulate as cmd
from citywatch.keys import Keys
from citywatch.partitioning import partition_key, partition_of
from citywatch.registry import Registry
from simulators import simulate
from simulators.labels import decode_labels
from simulators.output import FileSink, RedisSink, StdoutSink, kind_of, write_truth
from simulators.replay import paced, parse_pace
from simulators.simulation import Batch


def _write(tmp: Path, partitions: int, *, compress: bool = False, seed: int = 2) -> list[Path]:
    sim = simulate("demo", seed=seed, duration_s=240)
    sink = FileSink(tmp, partitions, compress=compress)
    for b in sim.batches():
        sink.write(b)
    sink.close()
    return sink.paths


def _lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    return data.splitlines()


def _partition_key(line: bytes, registry: Registry) -> str:
    import orjson

    d = orjson.loads(line)
    field = {
        "air": "station",
        "gps": "vehicle",
        "video": "camera",
        "power": "meter",
        "hotline": "ticket",
        "order": "site",
    }[d["kind"]]
    district = registry.stations[d["station"]].district if d["kind"] == "air" else None
    return partition_key(d["kind"], d[field], site=d.get("site"), district=district)


def test_partitions_split_one_stream_by_the_contract_rule(tmp_path: Path) -> None:
    one = _lines(_write(tmp_path / "one", 1)[0])
    paths = _write(tmp_path / "three", 3)
    parts = [_lines(p) for p in paths]
    registry = simulate("demo", seed=2, duration_s=240).registry
    assert sorted(one) == sorted(line for p in parts for line in p)
    kinds_per_part = []
    for i, lines in enumerate(parts):
        assert lines
        # citywatch.partitioning: air by district, a site's cameras/meters/orders by site,
        # every ticket together, vehicles by vehicle: each model key sees one partition
        assert all(partition_of(_partition_key(x, registry), 3) == i for x in lines)
        kinds_per_part.append({x.split(b'"kind":"')[1].split(b'"')[0] for x in lines})
        # each partition is the single stream's subsequence, in the same order
        pos = {line: n for n, line in enumerate(one)}
        idx = [pos[x] for x in lines]
        assert idx == sorted(idx)
    assert sum(b"hotline" in k for k in kinds_per_part) <= 1


def test_output_is_byte_identical_across_runs_and_gzip_is_reproducible(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", 2, compress=True)
    b = _write(tmp_path / "b", 2, compress=True)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    c = _write(tmp_path / "c", 2, compress=True, seed=3)
    assert a[0].read_bytes() != c[0].read_bytes()


def test_truth_files_round_trip(tmp_path: Path) -> None:
    sim = simulate("demo", seed=2, duration_s=120)
    manifest = write_truth(sim, tmp_path)
    assert decode_labels((tmp_path / "labels.jsonl").read_bytes()) == sim.labels
    reg = Registry.load(tmp_path / "registry")
    assert set(reg.stations) == set(sim.registry.stations)
    assert [d.name for d in reg.districts] == [d.name for d in sim.registry.districts]
    assert (tmp_path / "workshops.jsonl").read_bytes().count(b"\n") == len(sim.workshops)
    assert manifest["seed"] == 2


def test_stdout_sink_writes_jsonl() -> None:
    buf = io.BytesIO()
    sink = StdoutSink(buf)
    sink.write(Batch([1, 2], [0, 0], [b'{"a":1}', b'{"b":2}']))
    sink.close()
    assert buf.getvalue() == b'{"a":1}\n{"b":2}\n'


@pytest.mark.integration
def test_redis_sink_xadds_every_record_per_kind(redis_client: redis.Redis, prefix: str) -> None:
    sim = simulate("demo", seed=2, duration_s=120, dirty=0.05)
    sink = RedisSink(redis_client, prefix=prefix, partitions=2, pipeline=700)
    n = 0
    for b in sim.batches():
        sink.write(b)
        n += len(b)
    keys = Keys(prefix)
    total = 0
    for kind in ("air", "gps", "video", "power", "hotline", "order", "dirty"):
        for p in (0, 1):
            total += redis_client.xlen(keys.inbound(kind, p))
    assert total == n == sink.records
    entry = redis_client.xrange(keys.inbound("video", 0), count=1)[0][1]
    assert kind_of(entry[b"r"]) == "video"


def test_pacing_waits_for_event_time() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    batches = [Batch([0, 500, 1500, 4000], [0] * 4, [b"a", b"b", b"c", b"d"])]
    out = list(paced(batches, 2.0, clock=lambda: now[0], sleep=sleep))
    assert [b.lines for b in out] == [[b"a", b"b"], [b"c"], [b"d"]]
    assert slept == pytest.approx([0.75, 1.25])
    assert list(paced(batches, None)) == batches
    assert parse_pace("realtime") == 1.0
    with pytest.raises(ValueError, match="pace"):
        parse_pace("fast")


def _args(**kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    argv: list[str] = []
    for k, v in kw.items():
        flag = "--" + k.replace("_", "-")
        argv += [flag] if v is True else [flag, str(v)]
    return parser.parse_args(argv)


def test_cli_lists_and_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.run(_args(list=True)) == 0
    assert "city-day" in capsys.readouterr().out
    rc = cmd.run(_args(scenario="hotline", seed=1, duration="3h", out=tmp_path, partitions=2))
    assert rc == 0
    assert (tmp_path / "part-001.jsonl").exists()
    assert (tmp_path / "registry" / "districts.geojson").exists()
    assert cmd.run(_args(scenario="nope", out=tmp_path)) == 2
    with pytest.raises(SystemExit):
        _args(dirty="0.9")
    with pytest.raises(SystemExit):
        _args(duration="soon")


_DIGEST = """
import hashlib
from simulators import simulate
from simulators.labels import encode_labels
s = simulate("demo", seed=3, duration_s=300, dirty=0.02)
h = hashlib.sha256()
for line in s.records():
    h.update(line)
h.update(encode_labels(s.labels))
h.update(encode_labels(s.workshops))
print(h.hexdigest())
"""


@pytest.mark.integration
def test_same_bytes_in_other_processes_whatever_the_hash_seed() -> None:
    import os
    import subprocess
    import sys

    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _DIGEST], env=env, capture_output=True, check=True, timeout=120
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_cli_set_and_anomaly_scale(tmp_path: Path) -> None:
    assert cmd.parse_knobs(["duplicate_clusters=3", "kinds=air,gps", "pollution=1.5"]) == {
        "duplicate_clusters": 3,
        "kinds": ("air", "gps"),
        "pollution": 1.5,
    }
    with pytest.raises(ValueError, match="KNOB=VALUE"):
        cmd.parse_knobs(["nonsense=1"])
    with pytest.raises(ValueError, match="expects int"):
        cmd.parse_knobs(["surges=many"])
    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(
        [
            "--scenario",
            "hotline",
            "--duration",
            "4h",
            "--out",
            str(tmp_path),
            "--set",
            "duplicate_clusters=2",
            "--anomaly-scale",
            "3",
        ]
    )
    assert cmd.run(args) == 0
    labels = decode_labels((tmp_path / "labels.jsonl").read_bytes())
    assert sum(lab.rule == "hotline.duplicate" for lab in labels) == 6
    args = parser.parse_args(["--scenario", "hotline", "--out", str(tmp_path), "--set", "x"])
    assert cmd.run(args) == 2
