from __future__ import annotations

import pickle

import numpy as np
import pytest

from models.hotline.docfreq import DocFreq
from models.hotline.text import features

DAY = 86_400_000


def _idf(df: DocFreq, text: str) -> float:
    return float(df.idf(features(text, words=False).ids).mean())


def test_common_words_lose_weight_as_the_stream_repeats_them() -> None:
    df = DocFreq()
    before = _idf(df, "希望尽快处理")
    for i in range(200):
        df.add(features(f"希望尽快处理，{i}号楼问题"), ts=i * 60_000)
    assert _idf(df, "希望尽快处理") < before
    assert _idf(df, "希望尽快处理") < _idf(df, "打桩机轰鸣")


def test_old_vocabulary_is_forgotten_with_the_half_life() -> None:
    df = DocFreq(half_life_days=1.0)
    for i in range(100):
        df.add(features("夏天空调外机噪音"), ts=i * 1000)
    early = _idf(df, "空调外机")
    for i in range(100):
        df.add(features("冬天暖气不热"), ts=5 * DAY + i * 1000)
    # five half-lives later the summer complaint is rare again: its weight came back
    assert _idf(df, "空调外机") > early + 2.0
    assert df.n == pytest.approx(100 + 100 / 32, rel=0.02)


def test_memory_is_fixed_whatever_the_stream_length() -> None:
    df = DocFreq()
    size = len(pickle.dumps(df))
    for i in range(2000):
        df.add(features(f"第{i}个不同的问题{i * 7}"), ts=i * 60_000)
    assert abs(len(pickle.dumps(df)) - size) < 64  # a few scalars' encodings may differ


def test_vectors_are_unit_length_and_cosine_ranks_paraphrases_first() -> None:
    df = DocFreq()
    stream = ["工地夜间打桩噪音扰民", "工地晚上打桩太吵了", "小区门口垃圾没人清运", "路灯坏了不亮"]
    for i in range(30):
        for t in stream:
            df.add(features(t + str(i)), ts=i)
    a, b, c = (df.vector(features(t)) for t in stream[:3])
    assert float(np.dot(a.w, a.w)) == pytest.approx(1.0, abs=1e-5)
    assert a.dot(b) > a.dot(c)
    assert a.dot(a) == pytest.approx(1.0, abs=1e-5)


def test_top_keeps_the_heaviest_features_renormalised() -> None:
    df = DocFreq()
    v = df.vector(features("小区门口垃圾三天没人清运，臭气熏天"))
    t = v.top(10)
    assert len(t) == 10
    assert float(np.dot(t.w, t.w)) == pytest.approx(1.0, abs=1e-5)
    assert set(t.ids.tolist()) <= set(v.ids.tolist())
    kept = {int(i) for i in t.ids}
    dropped = [float(w) for i, w in zip(v.ids, v.w, strict=True) if int(i) not in kept]
    assert max(dropped) <= min(float(w) for i, w in zip(v.ids, v.w, strict=True) if int(i) in kept)


def test_half_life_is_validated() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        DocFreq(half_life_days=0)


def test_vector_top_is_the_top_of_the_vector() -> None:
    df = DocFreq()
    for i in range(30):
        df.add(features(f"第{i}号楼下工地夜间施工，噪音扰民，希望尽快处理"), ts=0)
    f = features("幸福小区3栋楼下工地打桩机夜间施工，噪音扰民，吵得睡不着")
    a, b = df.vector(f).top(16), df.vector(f, top=16)
    assert (a.ids == b.ids).all()
    assert np.allclose(a.w, b.w, atol=1e-6)
    assert len(b) == 16
