"""QARTOD-style QC on crafted series: each test's pass, suspect and fail cases."""

from __future__ import annotations

import random

import pytest

from models.air.qc import CHANNELS, QcConfig, StationQC
from models.air.qc import Flag as F

MIN = 60_000
PASS, SUSPECT, FAIL, MISSING = int(F.PASS), int(F.SUSPECT), int(F.FAIL), int(F.MISSING)


def _noisy(rng: random.Random) -> list[float | None]:
    """A healthy reading: PM and NO2 vary, SO2/CO/O3 are coarse and low (they repeat)."""
    pm25 = float(round(35 + rng.gauss(0, 4)))
    return [
        pm25,
        float(round(pm25 * 1.7 + rng.gauss(0, 5))),
        float(round(30 + rng.gauss(0, 5))),
        float(round(8 + rng.gauss(0, 0.4))),
        float(round(45 + rng.gauss(0, 2), -1)),
        round(0.7 + rng.gauss(0, 0.03), 1),
    ]


def _warm(qc: StationQC, n: int = 600, seed: int = 1) -> int:
    rng = random.Random(seed)
    for i in range(n):
        r = qc.check(i * MIN, _noisy(rng))
        assert not r.stuck, (i, r)
        assert not r.range_fail
    return n * MIN


def test_healthy_day_passes_with_no_faults() -> None:
    qc = StationQC()
    rng = random.Random(3)
    worst = []
    for i in range(1440):
        r = qc.check(i * MIN, _noisy(rng))
        assert not r.stuck
        assert not r.range_fail
        worst.append(r.worst)
    # a handful of suspects (noise reaching PM2.5 > PM10) at most, no failure
    assert worst.count(FAIL) == 0
    assert worst.count(PASS) > 1400


@pytest.mark.parametrize(
    ("channel", "value", "flag"),
    [
        ("pm25", 9999.0, FAIL),
        ("pm25", -50.0, FAIL),
        ("pm25", 600.0, SUSPECT),
        ("pm25", -2.0, SUSPECT),
        ("co", 80.0, FAIL),
        ("no2", 450.0, SUSPECT),
    ],
)
def test_gross_range(channel: str, value: float, flag: int) -> None:
    qc = StationQC()
    t = _warm(qc, 100)
    reading: list[float | None] = [35.0, 60.0, 30.0, 8.0, 40.0, 0.7]
    i = CHANNELS.index(channel)
    reading[i] = value
    r = qc.check(t, reading)
    assert r.flags[i] == flag
    assert (channel in r.range_fail) == (flag == FAIL)


def test_frozen_pm25_fails_after_an_improbable_run() -> None:
    qc = StationQC()
    t = _warm(qc)
    rng = random.Random(5)
    flags = []
    for k in range(40):
        reading = _noisy(rng)
        reading[0] = 47.0
        r = qc.check(t + k * MIN, reading)
        flags.append(r.flags[0])
    first_fail = flags.index(FAIL)
    assert 9 <= first_fail <= 15  # PM2.5 rarely repeats: a short run is already improbable
    assert all(f == FAIL for f in flags[first_fail:])
    # it recovers as soon as the value moves
    r = qc.check(t + 40 * MIN, [48.0, 80.0, 30.0, 8.0, 40.0, 0.7])
    assert r.flags[0] != FAIL


def test_quantized_channel_repeats_naturally_but_not_forever() -> None:
    qc = StationQC()
    rng = random.Random(7)
    t = 0
    # SO2 at 19 with a 1-µg quantum: repeats most of the time
    for _ in range(1500):
        so2 = 19.0 if rng.random() < 0.8 else 20.0
        r = qc.check(
            t,
            [
                35.0 + rng.random() * 9,
                70.0 + rng.random() * 9,
                30.0 + rng.random(),
                so2,
                40.0 + rng.random(),
                0.7,
            ],
        )
        t += MIN
        assert "so2" not in r.stuck
    assert qc.p_repeat[3] > 0.6
    stuck_at = None
    for k in range(400):
        r = qc.check(
            t + k * MIN,
            [
                35.0 + rng.random() * 9,
                70.0 + rng.random() * 9,
                30.0 + rng.random(),
                19.0,
                40.0 + rng.random(),
                0.7,
            ],
        )
        if "so2" in r.stuck:
            stuck_at = k
            break
    assert stuck_at is not None
    assert 30 < stuck_at <= 240  # long run needed, capped by stuck_max_run


def test_values_at_the_floor_never_stick_alone() -> None:
    qc = StationQC()
    t = _warm(qc, 200)
    for k in range(500):
        r = qc.check(
            t + k * MIN,
            [30.0 + k % 7, 60.0 + k % 5, 25.0 + k % 3, 3.0, 40.0 + k % 2, 0.7 + (k % 2) / 10],
        )
        assert "so2" not in r.stuck


def test_two_channels_freezing_together_fail_quickly() -> None:
    qc = StationQC(QcConfig(stuck_min_s=600_000))  # single-channel test effectively off
    t = _warm(qc, 300)
    hit = None
    for k in range(20):
        r = qc.check(t + k * MIN, [41.0, 77.0, 31.0, 8.0, 40.0, 0.7])
        if r.stuck:
            hit = k
            break
    assert hit == 8  # run 8 after the first of the frozen readings
    assert set(r.stuck) >= {"pm25", "pm10"}


def test_rate_of_change_is_suspect() -> None:
    qc = StationQC()
    t = _warm(qc, 100)
    qc.check(t, [35.0, 60.0, 30.0, 8.0, 40.0, 0.7])
    r = qc.check(t + MIN, [35.0, 60.0, 300.0, 8.0, 40.0, 0.7])
    assert r.flags[2] == SUSPECT
    # the same change over 3 minutes is within the rate limit
    qc.check(t + 2 * MIN, [35.0, 60.0, 30.0, 8.0, 40.0, 0.7])
    r = qc.check(t + 5 * MIN, [35.0, 60.0, 170.0, 8.0, 40.0, 0.7])
    assert r.flags[2] == PASS


def test_spike_on_log_scale_is_suspect_not_fail() -> None:
    qc = StationQC()
    t = _warm(qc)
    r = qc.check(t, [400.0, 480.0, 30.0, 8.0, 40.0, 0.7])
    assert r.flags[0] == SUSPECT
    assert FAIL not in r.flags


def test_pm25_above_pm10_is_suspect() -> None:
    qc = StationQC()
    t = _warm(qc, 100)
    r = qc.check(t, [60.0, 40.0, 30.0, 8.0, 40.0, 0.7])
    assert r.inverted
    assert r.flags[0] == SUSPECT
    assert r.flags[1] == SUSPECT
    assert set(r.suspect) >= {"pm25", "pm10"}
    r = qc.check(t + MIN, [43.0, 40.0, 30.0, 8.0, 40.0, 0.7])  # within the tolerance
    assert not r.inverted


def test_missing_values_and_out_of_order() -> None:
    qc = StationQC()
    r = qc.check(0, [None, None, None, None, None, None])
    assert r.flags == (MISSING,) * 6
    assert r.worst == MISSING
    t = _warm(qc, 50)
    for k in range(5):
        qc.check(t + k * MIN, [50.0, 80.0, 30.0, 8.0, 40.0, 0.7])
    runs = list(qc.runs)
    qc.check(t - 10 * MIN, [50.0, 80.0, 30.0, 8.0, 40.0, 0.7])  # late: flags only
    assert qc.runs == runs


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="spike_channels"):
        QcConfig(spike_channels=("pm1",))
    with pytest.raises(ValueError, match="stuck_p"):
        QcConfig(stuck_p=2.0)
