from __future__ import annotations

import pickle

from models.hotline.docfreq import DocFreq
from models.hotline.routing import Router
from models.hotline.text import features

TEXTS = {
    "市公安局": ["楼下广场舞音响太吵", "KTV唱歌到半夜扰民", "酒吧音乐声音太大吵得睡不着"],
    "市水务集团": ["家里突然停水了", "自来水发黄有怪味", "路边水管爆了一直冒水"],
    "市人力资源和社会保障局": ["老板拖欠工资不给", "公司不交社保", "工地欠我们三个月工钱"],
}


def _vectors() -> tuple[DocFreq, dict[str, list]]:  # type: ignore[type-arg]
    df = DocFreq()
    for texts in TEXTS.values():
        for t in texts:
            df.add(features(t), 0)
    return df, {d: [df.vector(features(t)) for t in texts] for d, texts in TEXTS.items()}


def test_learns_departments_from_dispatches() -> None:
    df, vecs = _vectors()
    r = Router(bits=12)
    assert r.predict(vecs["市公安局"][0], "dept") == []  # nothing learned: no guess
    for _ in range(15):
        for dept, vs in vecs.items():
            for v in vs:
                r.learn(v, {"dept": dept})
    for dept, vs in vecs.items():
        for v in vs:
            top = r.predict(v, "dept")
            assert top[0][0] == dept
            assert len(top) == 3
            assert top[0][1] > top[1][1] >= top[2][1]
            assert sum(p for _, p in top) <= 1.0 + 1e-9
    new = df.vector(features("又停水了，整栋楼没水"))
    assert r.predict(new, "dept")[0][0] == "市水务集团"


def test_a_correction_is_a_label() -> None:
    _, vecs = _vectors()
    r = Router(bits=12)
    v = vecs["市水务集团"][0]
    for _ in range(5):
        r.learn(v, {"dept": "市水务集团"})
    assert r.predict(v, "dept")[0][0] == "市水务集团"
    for _ in range(10):  # officers keep re-dispatching this kind of ticket elsewhere
        r.learn(v, {"dept": "国网南通供电公司"}, weight=2.0)
    assert r.predict(v, "dept")[0][0] == "国网南通供电公司"


def test_heads_are_independent_and_labels_grow() -> None:
    _, vecs = _vectors()
    r = Router(bits=12, heads={"dept": ["市公安局"]})
    assert r.labels("dept") == ["市公安局"]
    r.learn(vecs["市公安局"][0], {"dept": "市公安局", "category": "noise"})
    r.learn(vecs["市水务集团"][0], {"dept": "市水务集团", "category": "water"})
    assert r.labels("category") == ["noise", "water"]
    both = r.predict_heads(vecs["市公安局"][0], ("category", "dept"), k=2)
    assert {c for c, _ in both["category"]} == {"noise", "water"}
    assert r.W.shape == (1 << 12, 4)  # one column per label of every head, nothing else


def test_state_pickles() -> None:
    _, vecs = _vectors()
    r = Router(bits=12)
    r.learn(vecs["市公安局"][0], {"dept": "市公安局"})
    again = pickle.loads(pickle.dumps(r))  # noqa: S301 - our own bytes
    v = vecs["市公安局"][1]
    assert again.predict(v, "dept") == r.predict(v, "dept")
