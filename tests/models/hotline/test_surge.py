from __future__ import annotations

import copy
import itertools
import math
import pickle
import random

import pytest

from models.hotline.surge import SurgeConfig, SurgeDetector, nbinom_sf

from .conftest import HOUR, MIN, T0

DAY = 24 * HOUR


def _poisson_sf(k: int, lam: float) -> float:
    return 1.0 - sum(math.exp(-lam) * lam**x / math.factorial(x) for x in range(k))


@pytest.mark.parametrize(("k", "lam"), [(1, 0.5), (3, 0.5), (8, 2.0), (20, 4.0), (5, 10.0)])
def test_nbinom_tends_to_poisson(k: int, lam: float) -> None:
    r = 1e6
    p = r / (r + lam)
    assert nbinom_sf(k, r, p) == pytest.approx(_poisson_sf(k, lam), rel=1e-3, abs=1e-12)


def test_nbinom_tail_is_monotone_and_tiny_tails_are_positive() -> None:
    tails = [nbinom_sf(k, 2.0, 0.8) for k in range(0, 60)]
    assert tails[0] == 1.0
    assert all(a >= b for a, b in itertools.pairwise(tails))
    assert 0.0 < tails[-1] < 1e-30


def _events(days: int, rng: random.Random) -> list[tuple[int, str, str]]:
    out = []
    for day in range(days):
        for district in ("崇川区", "通州区"):
            for cat in ("noise", "garbage"):
                for _ in range(3):
                    out.append((T0 + day * DAY + rng.randrange(0, 9 * HOUR), district, cat))
    return sorted(out)


def test_no_surge_on_background_and_one_on_a_burst() -> None:
    det = SurgeDetector()
    fired = [det.update(*e) for e in _events(5, random.Random(1))]
    assert not any(s is not None and s.active for s in fired)
    t = T0 + 5 * DAY + 2 * HOUR
    out = [det.update(t + i * 5 * MIN, "崇川区", "noise") for i in range(12)]
    active = [s for s in out if s is not None and s.active]
    assert active, "a burst of 12 in an hour against ~3 a day must fire"
    assert {s.key for s in active} == {"崇川区/noise"}
    assert active[0].count >= SurgeConfig().min_count
    assert 0.5 <= active[0].score <= 1.0
    assert active[0].expected < 2.0
    assert not det.is_surging("通州区", "noise")
    # The window empties: the surge ends once, with a clear.
    ends = det.advance(t + 6 * HOUR)
    assert [(s.key, s.active) for s in ends] == [("崇川区/noise", False)]
    assert not det.is_surging("崇川区", "noise")
    assert det.advance(t + 7 * HOUR) == []


def test_night_burst_is_more_surprising_than_a_daytime_one() -> None:
    cfg = SurgeConfig(alpha=1e-3, min_count=4)
    base = SurgeDetector(cfg)
    for e in _events(5, random.Random(2)):
        base.update(*e)
    by_day, by_night = copy.deepcopy(base), copy.deepcopy(base)
    day_t = T0 + 5 * DAY + HOUR  # 10:00
    night_t = T0 + 5 * DAY + 17 * HOUR  # 02:00
    day = [by_day.update(day_t + i * MIN, "通州区", "garbage") for i in range(4)]
    night = [by_night.update(night_t + i * MIN, "通州区", "garbage") for i in range(4)]
    assert day == [None] * 4
    assert night[-1] is not None
    assert night[-1].active
    assert night[-1].expected < 0.2


def test_surge_tickets_do_not_become_the_baseline() -> None:
    det = SurgeDetector(SurgeConfig(surge_weight=0.0))
    for e in _events(3, random.Random(3)):
        det.update(*e)
    t = T0 + 3 * DAY + HOUR
    for i in range(30):
        det.update(t + i * MIN, "崇川区", "noise")
    det.advance(t + 5 * HOUR)
    k = det._keys["崇川区/noise"]
    assert k.n < 12  # the 30 surge tickets were folded at weight 0


def test_clone_mid_stream_gives_identical_statuses() -> None:
    evs = _events(3, random.Random(4))
    evs += [(T0 + 3 * DAY + HOUR + i * MIN, "通州区", "noise") for i in range(15)]

    def run(det: SurgeDetector, part: list[tuple[int, str, str]]) -> list[object]:
        return [det.update(*e) for e in part]

    expected = run(SurgeDetector(), evs)
    det = SurgeDetector()
    head = run(det, evs[:30])
    det = pickle.loads(pickle.dumps(det))  # noqa: S301 (our own bytes)
    det = copy.deepcopy(det)
    assert head + run(det, evs[30:]) == expected


@pytest.mark.parametrize(
    "bad",
    [{"alpha": 0.0}, {"release_alpha": 1e-9}, {"min_count": 0}, {"profile": (1.0,) * 23}],
)
def test_config_is_validated(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=next(iter(bad))):
        SurgeConfig(**bad)


def test_unseen_key_in_a_busy_city_borrows_the_city_rate() -> None:
    """A district/category never seen before starts at city rate x shares, not at the floor."""
    cfg = SurgeConfig(min_count=1, min_ratio=1.0, alpha=1e-3)
    det = SurgeDetector(cfg)
    rng = random.Random(5)
    districts = ["A区", "B区", "C区", "D区"]
    cats = ["noise", "garbage", "traffic", "water"]
    evs = []
    for day in range(2):  # ~40 tickets a day per key, except B区/water: never
        for d in districts:
            for c in cats:
                if (d, c) == ("B区", "water"):
                    continue
                evs += [(T0 + day * DAY + rng.randrange(0, 10 * HOUR), d, c) for _ in range(40)]
    for e in sorted(evs):
        det.update(*e)
    t = T0 + 2 * DAY + HOUR
    out = [det.update(t + i * 10 * MIN, "B区", "water") for i in range(4)]
    assert out == [None] * 4  # 4 in an hour is ordinary where keys get ~40 a day
    floor_only = SurgeDetector(cfg)
    floor_only.update(T0, "B区", "water")  # no city at all: the floor of 1 a day applies
    late = [floor_only.update(t + i * 10 * MIN, "B区", "water") for i in range(4)]
    assert any(s is not None and s.active for s in late)
