from __future__ import annotations

import subprocess
import sys

import numpy as np

from models.hotline.text import BITS, clauses, features, normalize


def test_normalize_folds_traditional_full_width_and_case() -> None:
    assert normalize("幸福小區門口垃圾沒人清運") == "幸福小区门口垃圾没人清运"
    assert normalize("ＫＴＶ１２号") == "ktv12号"


def test_traditional_and_simplified_texts_have_the_same_features() -> None:
    a = features("幸福小區門口垃圾三天沒人清運")
    b = features("幸福小区门口垃圾三天没人清运")
    assert np.array_equal(a.ids, b.ids)
    assert np.array_equal(a.counts, b.counts)


def test_ngrams_never_cross_punctuation() -> None:
    joined = features("噪音扰民")
    split = features("噪音，扰民")
    # "音扰" (and the trigrams over it) exist only when the clause is not broken
    assert len(joined.ids) > len(split.ids)
    assert set(split.ids.tolist()) < set(joined.ids.tolist())


def test_words_add_features_beyond_characters() -> None:
    with_words = features("挖掘机晚上施工")
    chars_only = features("挖掘机晚上施工", words=False)
    assert set(chars_only.ids.tolist()) < set(with_words.ids.tolist())


def test_feature_ids_are_in_range_sorted_unique_and_counted() -> None:
    f = features("路灯不亮，路灯不亮，路灯不亮")
    assert f.ids.min() >= 0
    assert f.ids.max() < 1 << BITS
    assert np.all(np.diff(f.ids) > 0)
    assert f.counts.max() == 3.0  # each of the repeated clause's n-grams three times
    assert f.n_tokens == 12


def test_empty_and_punctuation_only_texts() -> None:
    assert len(features("！！，。").ids) == 0
    assert clauses("。。") == []


def test_hashing_is_the_same_in_another_process() -> None:
    """State pickled by one worker is read by another: ids must not depend on the process."""
    code = "from models.hotline.text import features; print(features('幸福小区噪音').ids.tolist())"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == str(features("幸福小区噪音").ids.tolist())


def test_the_fast_path_for_simplified_text_agrees_with_opencc() -> None:
    import opencc

    t2s = opencc.OpenCC("t2s")
    for text in (
        "幸福小区门口垃圾没人收，臭气熏天",
        "網友留言：我是外地來這打工的，和潤苑南門工地圍牆塌了",
        "麵包過期了還在賣，乾脆不管了",
        "只有一个字是繁體",
        "plain ascii 123",
    ):
        assert normalize(text) == t2s.convert(text.lower())


def test_features_do_not_depend_on_what_was_seen_before() -> None:
    import models.hotline.text as text

    texts = ["幸福小区门口垃圾没人清运，希望尽快处理", "希望尽快处理，路灯不亮", "ktv12号，噪音"]
    warm = [features(t) for t in texts + texts]
    text._cache_new.clear()
    text._cache_old.clear()
    text._GRAMS.clear()
    text._WORDS.clear()
    cold = [features(t) for t in reversed(texts)][::-1]
    for a, b in zip(warm[len(texts) :], cold, strict=True):
        assert np.array_equal(a.ids, b.ids)
        assert np.array_equal(a.counts, b.counts)
        assert a.n_tokens == b.n_tokens
