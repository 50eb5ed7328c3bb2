from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.hotline.ngram import containment, dice, normalize, shingles


def test_normalize_drops_boilerplate_punctuation_and_width() -> None:
    assert normalize("市民来电反映：３号楼　噪音！请相关部门尽快处理。") == "3号楼噪音"


def test_shingles_are_overlapping_bigrams() -> None:
    assert shingles("扬尘很大") == frozenset({"扬尘", "尘很", "很大"})
    assert shingles("臭") == frozenset({"臭"})
    assert shingles("。。。") == frozenset()
    with pytest.raises(ValueError, match="n: must be >= 1"):
        shingles("x", 0)


def test_paraphrase_scores_above_same_address_other_problem() -> None:
    a = shingles("幸福路12号工地夜间施工噪音扰民")
    dup = shingles("幸福路12号的工地晚上一直施工，噪音很大")
    other = shingles("幸福路12号门口垃圾堆放无人清理")
    assert dice(a, dup) > dice(a, other)


def test_containment_is_high_when_one_text_contains_the_other() -> None:
    short = shingles("河水发黑发臭")
    long = shingles("濠河边上这一段河水发黑发臭好几天了")
    assert containment(short, long) == 1.0
    assert dice(short, long) < 1.0
    assert containment(frozenset(), long) == 0.0


@given(st.text(max_size=60), st.text(max_size=60))
def test_dice_is_symmetric_bounded_and_one_on_itself(x: str, y: str) -> None:
    a, b = shingles(x), shingles(y)
    assert dice(a, b) == dice(b, a)
    assert 0.0 <= dice(a, b) <= 1.0
    if a:
        assert dice(a, a) == 1.0
