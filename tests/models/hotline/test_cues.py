from __future__ import annotations

import pytest

from models.hotline.cues import CUES, extract_cues, is_night

from .conftest import T0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("小区里有很重的异味", {"smell"}),
        ("化工厂排放刺鼻气味", {"smell", "chemical"}),
        ("危化品槽罐车停在路边好几个小时", {"chemical"}),
        ("工地扬尘很大", {"dust", "construction"}),
        ("凌晨两点还在施工，噪音扰民", {"construction", "noise", "night", "night_noise"}),
        ("河道污水直排", {"water"}),
        ("路边有人焚烧秸秆，黑烟很大", {"smoke"}),
    ],
)
def test_keywords(text: str, expected: set[str]) -> None:
    assert extract_cues(text) == expected


def test_negated_keyword_is_not_a_cue() -> None:
    assert "smell" not in extract_cues("现在已经没有异味了")
    assert "smell" in extract_cues("没有处理，异味还在")


def test_night_from_filing_time() -> None:
    night_ts = T0 - 10 * 3_600_000  # 23:00 Beijing the evening before
    assert is_night(night_ts)
    assert not is_night(T0)
    assert "night_noise" in extract_cues("隔壁工地噪音很大", night_ts)
    assert "night_noise" not in extract_cues("隔壁工地噪音很大", T0)


def test_only_known_cues_and_empty_text() -> None:
    assert extract_cues("今天天气不错") == frozenset()
    assert extract_cues("！？") == frozenset()
    assert extract_cues("化工异味噪音扬尘施工夜间污水垃圾停车路灯冒烟") <= CUES
