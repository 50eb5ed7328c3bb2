"""Fuzzing the decoder (bounded: ``benchmarks/fuzz.py`` runs the long profile).

Every kind's valid records, broken in every way a feed breaks them: nothing escapes, every
record is accounted for, every dead letter says why and names the field it broke in.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citywatch.events import KINDS
from tests.fuzzing import Mutated, check_decoded, mutated_records

BOUNDED = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("kind", KINDS)
def test_records_of_every_kind_broken_every_way(kind: str) -> None:
    @BOUNDED
    @given(st.lists(mutated_records((kind,)), min_size=1, max_size=8))
    def check(items: list[Mutated]) -> None:
        assert check_decoded(items) == []

    check()


@BOUNDED
@given(st.lists(st.binary(max_size=300), max_size=10))
def test_random_bytes(raws: list[bytes]) -> None:
    assert check_decoded([Mutated(r, None, "bytes") for r in raws]) == []
