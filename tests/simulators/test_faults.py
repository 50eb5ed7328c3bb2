"""``citywatch inject``: faults placed in time per station, labels that say exactly what changed."""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path

import orjson
import pytest

from citywatch.cli import main
from citywatch.geo import haversine_m
from citywatch.registry import Registry, Station, Vehicle
from simulators.faults import GUARD_MS, HOUR_MS, inject
from simulators.labels import read_labels

T0 = 1_388_505_600_000  # 2014-01-01 00:00 +08:00
DAY = 24 * HOUR_MS


def _air(step_ms: int, days: int, stations: str = "AB") -> tuple[list[bytes], Registry]:
    reg = Registry(
        stations={
            s: Station(id=s, lat=30.6 + i / 100, lon=104.0, district="C", interval_s=step_ms / 1000)
            for i, s in enumerate(stations)
        }
    )
    recs = []
    for k in range(days * DAY // step_ms):
        for i, s in enumerate(stations):
            v = 40.0 + (k % 11) + i
            d = {"kind": "air", "ts": T0 + k * step_ms + i, "station": s, "pm25": v, "pm10": 2 * v}
            recs.append(orjson.dumps(d))
    return recs, reg


def _by_key(records: list[bytes]) -> dict[tuple[str, int], dict[str, object]]:
    out = {}
    for r in records:
        d = orjson.loads(r)
        out[(d.get("station") or d.get("vehicle"), d["ts"])] = d
    return out


@pytest.mark.parametrize(("step_ms", "per_hour"), [(HOUR_MS, 1), (150_000, 24)])
def test_each_labelled_fault_changes_exactly_its_window_at_the_station_cadence(
    step_ms: int, per_hour: int
) -> None:
    recs, reg = _air(step_ms, 40)
    counts = {"spike": 4, "stuck": 2, "drift": 1, "range": 2}
    out = inject(recs, reg, seed=5, kinds=list(counts), counts=counts)
    assert not out.unplaced
    assert sorted(f.kind for f in out.faults) == sorted(
        k for k, n in counts.items() for _ in range(n)
    )
    before, after = _by_key(recs), _by_key(out.records)
    assert set(before) == set(after)
    touched = {k for k in before if before[k] != after[k]}
    explained = set()
    for lab, f in zip(
        out.labels,
        sorted(out.faults, key=lambda f: (f.start_ms, "air." + f.kind, f.subject_id)),
        strict=True,
    ):
        assert lab.rule == "air." + f.kind
        assert (lab.subject_id, lab.start_ms, lab.end_ms) == (f.subject_id, f.start_ms, f.end_ms)
        window = sorted(
            k for k in before if k[0] == lab.subject_id and lab.start_ms <= k[1] < lab.end_ms
        )
        assert window[0][1] == lab.start_ms  # starts at the first changed reading
        assert lab.end_ms == window[-1][1] + step_ms  # ends one interval after the last
        assert f.readings == len(window)
        explained |= set(window)
        old = [before[k]["pm25"] for k in window]
        new = [after[k]["pm25"] for k in window]
        p = lab.params
        assert (p["lat"], p["district"], p["injected"]) == (
            reg.stations[lab.subject_id].lat,
            "C",
            f.kind,
        )
        if f.kind == "spike":
            assert len(window) == per_hour  # one hour: 1 hourly reading, 24 of 150 s
            assert 3.0 <= p["factor"] <= 6.0
            assert new == pytest.approx([v * p["factor"] for v in old], abs=0.01)
        elif f.kind == "stuck":
            assert 6 * HOUR_MS <= lab.end_ms - lab.start_ms <= 24 * HOUR_MS + step_ms
            assert set(new) == {old[0]} == {p["value"]}
            assert {after[k]["pm10"] for k in window} == {before[window[0]]["pm10"]}
            assert p["channels"] == ["pm10", "pm25"]
        elif f.kind == "drift":
            assert 3 * DAY <= lab.end_ms - lab.start_ms <= 6 * DAY + step_ms
            gains = [n / o for n, o in zip(new, old, strict=True)]
            assert gains == sorted(gains)  # the gain only grows
            assert gains[0] == pytest.approx(1.0, abs=0.01)
            assert 1.45 <= gains[-1] <= 1.8
            assert [after[k]["pm10"] for k in window] == [before[k]["pm10"] for k in window]
        elif f.kind == "range":
            assert set(new) == {p["value"]} <= {9999.0, -99.0}
            assert 1 * HOUR_MS <= lab.end_ms - lab.start_ms <= 6 * HOUR_MS + step_ms
    assert touched <= explained
    # faults of one station keep 12 h apart, and none starts in the first two days
    for s in reg.stations:
        spans = sorted((f.start_ms, f.end_ms) for f in out.faults if f.subject_id == s)
        assert all(b[0] - a[1] >= GUARD_MS - step_ms for a, b in itertools.pairwise(spans))
        assert all(a >= T0 + 2 * DAY for a, _ in spans)


def test_dropout_removes_records_and_gps_jump_moves_one_fix_without_labels() -> None:
    recs, reg = _air(HOUR_MS, 20)
    reg.vehicles["V1"] = Vehicle(id="V1", plate="P1")
    gps = [
        orjson.dumps(
            {"kind": "gps", "ts": T0 + k * 30_000, "vehicle": "V1", "lat": 30.6, "lon": 104.0}
        )
        for k in range(2000)
    ]
    recs = sorted(recs + gps, key=lambda r: orjson.loads(r)["ts"])
    out = inject(
        recs, reg, seed=3, kinds=["dropout", "gps_jump"], counts={"dropout": 2, "gps_jump": 3}
    )
    assert out.labels == []
    drops = [f for f in out.faults if f.kind == "dropout"]
    jumps = [f for f in out.faults if f.kind == "gps_jump"]
    assert (len(drops), len(jumps)) == (2, 3)
    after = _by_key(out.records)
    for f in drops:
        assert 2 * HOUR_MS <= f.end_ms - f.start_ms <= 24 * HOUR_MS
        gone = [k for k in _by_key(recs) if k[0] == f.subject_id and f.start_ms <= k[1] < f.end_ms]
        assert len(gone) == f.readings > 0
        assert not any(k in after for k in gone)
    for f in jumps:
        fix = after[("V1", f.start_ms)]
        moved = haversine_m(30.6, 104.0, fix["lat"], fix["lon"])
        assert 4_900 <= moved <= 30_100
        assert f.params["distance_m"] == pytest.approx(moved, rel=0.02)
    assert len(out.records) == len(recs) - sum(f.readings for f in drops)
    assert sum(1 for r in out.records if b'"gps"' in r and r not in recs) == 3


def test_same_seed_same_bytes_other_seed_other_faults() -> None:
    recs, reg = _air(HOUR_MS, 30)
    a = inject(recs, reg, seed=11)
    b = inject(recs, reg, seed=11)
    c = inject(recs, reg, seed=12)
    assert a.records == b.records
    assert a.labels == b.labels
    assert a.faults == b.faults
    assert a.faults != c.faults
    # rates: 2 stations x 30 days = 8.6 station-weeks -> round(0.1 x 8.6) spikes, ...
    assert sum(f.kind == "spike" for f in a.faults) == 1


def test_a_fault_needs_data_to_change() -> None:
    recs, reg = _air(HOUR_MS, 30)
    quiet = [r for r in recs if b'"station":"B"' not in r or orjson.loads(r)["ts"] > T0 + 29 * DAY]
    out = inject(quiet, reg, seed=1, kinds=["spike"], counts={"spike": 20})
    assert out.faults
    for f in out.faults:  # B has no data before day 29, so no spike lands there
        assert f.subject_id == "A" or f.start_ms > T0 + 29 * DAY


def test_cli_writes_events_labels_manifest_and_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recs, reg = _air(HOUR_MS, 30)
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(recs) + b"\n")
    reg.dump_file(tmp_path / "registry.jsonl")
    argv = ["inject", str(tmp_path / "events.jsonl"), "--out", str(tmp_path / "f")]
    assert (
        main([*argv, "--seeds", "4-5", "--kinds", "spike,stuck", "--count", "spike=3,stuck=1"]) == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("inject: seed 4: 3 spike, 1 stuck (4 labels) -> ")
    for seed in (4, 5):
        d = tmp_path / "f" / f"seed-{seed}"
        labels = read_labels(d / "labels.jsonl")
        assert sorted(x.rule for x in labels) == ["air.spike"] * 3 + ["air.stuck"]
        assert len(gzip.decompress((d / "events.jsonl.gz").read_bytes()).splitlines()) == len(recs)
        assert len((d / "faults.jsonl").read_bytes().splitlines()) == 4
        assert Registry.load(d / "registry.jsonl") == reg
    assert (tmp_path / "f" / "seed-4" / "labels.jsonl").read_bytes() != (
        tmp_path / "f" / "seed-5" / "labels.jsonl"
    ).read_bytes()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--kinds", "spike,meteor"], r"--kinds: unknown meteor"),
        (["--count", "meteor=3"], r"unknown fault kind\(s\) meteor"),
        (["--registry", "nope.jsonl"], r"registry: 'nope.jsonl' not found"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], match: str
) -> None:
    recs, reg = _air(HOUR_MS, 3)
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(recs) + b"\n")
    reg.dump_file(tmp_path / "registry.jsonl")
    assert (
        main(["inject", str(tmp_path / "events.jsonl"), "--out", str(tmp_path / "f"), *extra]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert re.search(match, err[0]), err[0]
