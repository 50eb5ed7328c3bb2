"""Dirty mode: every malformed record dead-letters, every valid one survives."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citywatch.events import DeadLetter, EventDecoder
from simulators import simulate
from simulators.dirty import FAULTS

SAMPLES = [
    b'{"kind":"air","station":"ST00001","pm25":36.0,"pm10":64.0,"ts":1793577644043}',
    b'{"kind":"gps","vehicle":"HV00001","lat":32.1,"lon":120.9,"speed_kmh":1.4,'
    b'"heading":0.0,"un":"1789","plate":"\xe8\x8b\x8fFZ23251","ts":1793581204004}',
    b'{"kind":"video","camera":"CAM000001","site":null,"window_s":60,"ts":1793584823262,'
    b'"persons":3,"vehicles":0,"machinery":0}',
    b'{"kind":"power","meter":"MTR000001","site":"SITE00001","ts":1793584819471,"kw":8.8}',
    b'{"kind":"hotline","ticket":"2026110212","text":"\xe5\x99\xaa","category":"noise",'
    b'"lat":32.0,"lon":120.9,"ts":1793599677270}',
    b'{"kind":"order","site":"SITE00001","action":"lift","ts":1793548860000}',
]


def _decoder() -> EventDecoder:
    dec = EventDecoder()
    dec.newest_ts = 1793548800000
    return dec


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("line", SAMPLES, ids=lambda b: b[9:14].decode())
def test_every_fault_dead_letters(fault: str, line: bytes) -> None:
    dec = _decoder()
    assert not isinstance(dec.decode(line), DeadLetter)
    for k in range(20):
        bad = FAULTS[fault](line, random.Random(k))
        assert b"\n" not in bad
        assert isinstance(dec.decode(bad), DeadLetter), (fault, bad)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), which=st.integers(0, len(SAMPLES) - 1))
def test_random_faults_dead_letter(seed: int, which: int) -> None:
    rng = random.Random(seed)
    name = rng.choice(sorted(FAULTS))
    assert isinstance(_decoder().decode(FAULTS[name](SAMPLES[which], rng)), DeadLetter)


def test_dirty_stream_valid_plus_dead_equals_input() -> None:
    clean = list(simulate("demo", seed=4, duration_s=180).records())
    dirty = list(simulate("demo", seed=4, duration_s=180, dirty=0.1).records())
    dec = EventDecoder()
    good, dead = dec.decode_batch(dirty, "sim")
    assert len(good) + len(dead) == len(dirty)
    assert len(good) == len(clean)
    valid = set(clean)
    assert [x for x in dirty if x in valid] == clean
    assert len(dead) / len(dirty) == pytest.approx(0.1, abs=0.01)
    reasons = {d.reason.split(":")[0] for d in dead}
    assert len(reasons) >= 6
