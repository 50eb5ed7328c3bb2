from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.worksites.persistence import MOfN


def brute(obs: list[tuple[int, bool]], n: int) -> tuple[int, int]:
    """Hits among the last n slots ending at the newest slot seen, from the full history."""
    newest = max(s for s, _ in obs)
    hits = {s for s, h in obs if h and newest - s < n}
    return newest, len(hits)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 40), st.booleans()), min_size=1, max_size=60),
    st.integers(1, 8),
)
def test_matches_brute_force_with_late_and_repeated_slots(
    obs: list[tuple[int, bool]], n: int
) -> None:
    p = MOfN(m=1, n=n)
    # Late observations older than the window are dropped at arrival, as in the stream.
    seen: list[tuple[int, bool]] = []
    for slot, hit in obs:
        p.mark(slot, hit)
        newest = max([s for s, _ in seen] + [slot])
        if newest - slot < n:
            seen.append((slot, hit))
        else:
            seen.append((slot, False))
        assert (p.slot, p.count) == brute(seen, n)


def test_flicker_never_holds_and_sustained_work_does() -> None:
    p = MOfN(m=3, n=5)
    for i, hit in enumerate([True, False, False, True, False, False, True, False, False] * 3):
        p.mark(i, hit)
        assert not p.holds
    for i in range(100, 103):
        p.mark(i, True)
    assert p.holds


def test_count_at_looks_ahead_without_changing_state() -> None:
    p = MOfN(m=2, n=4)
    for s in (1, 2, 3):
        p.mark(s, True)
    assert p.count_at(3) == 3
    assert p.count_at(4) == 3
    assert p.count_at(5) == 2
    assert p.count_at(10) == 0
    assert p.slot == 3
    assert p.count == 3
    assert pickle.loads(pickle.dumps(p)) == p  # noqa: S301 (our own bytes)


@pytest.mark.parametrize(("m", "n"), [(0, 5), (6, 5), (1, 0), (1, 63)])
def test_bad_m_n(m: int, n: int) -> None:
    with pytest.raises(ValueError, match=r"^[mn]:"):
        MOfN(m, n)
