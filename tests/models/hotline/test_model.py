from __future__ import annotations

import copy
import pickle

from citywatch.alerts import Level
from citywatch.events import Air
from citywatch.registry import District, Registry
from models.base import Model
from models.hotline.dedup import DedupConfig, pair_features
from models.hotline.model import HotlineConfig, HotlineModel

from .conftest import DUPLICATES, HOUR, MIN, NEAR_MISSES, T0, ticket

SQUARE = District(
    name="崇川区",
    code="320602",
    rings=(((120.8, 31.9), (121.0, 31.9), (121.0, 32.1), (120.8, 32.1), (120.8, 31.9)),),
)


def _model(**cfg: object) -> HotlineModel:
    return HotlineModel(Registry(districts=[SQUARE]), HotlineConfig(**cfg))  # type: ignore[arg-type]


def test_is_a_model_routing_only_hotline_to_one_key() -> None:
    m = _model()
    assert isinstance(m, Model)
    assert m.model_id == "hotline@2"
    assert m.route(ticket("A", "x")) == "city"
    assert m.route(Air(ts=T0, station="S1")) is None
    assert m.update(m.new_state("city"), Air(ts=T0, station="S1")) == []


def test_duplicate_signal_carries_cluster_size_members_and_district() -> None:
    m = _model()
    st = m.new_state("city")
    a, b, ca, cb = DUPLICATES[1]
    assert m.update(st, ticket("A", a, category=ca)) == []
    out = m.update(st, ticket("B", b, ts=T0 + MIN, category=cb))
    (sig,) = out
    assert sig.rule == "hotline.duplicate"
    assert (sig.subject.kind, sig.subject.id) == ("ticket", "A")
    assert sig.active
    assert sig.evidence["size"] == 2
    assert sig.evidence["members"] == ["A", "B"]
    assert sig.evidence["duplicate_of"] == "A"
    assert sig.district == "崇川区"
    assert sig.grid == "G0034-0059"
    assert sig.level is Level.BLUE
    assert 0.0 < sig.score <= 1.0
    out = m.update(st, ticket("C", a + "，还没人管", ts=T0 + 2 * MIN, category=ca))
    out = m.update(st, ticket("D", b + "，请尽快", ts=T0 + 3 * MIN, category=cb))
    assert out[-1].evidence["size"] == 4
    assert out[-1].level is Level.YELLOW


def test_near_misses_in_other_categories_emit_nothing() -> None:
    m = _model()
    st = m.new_state("city")
    for i, (a, b, ca, cb) in enumerate(NEAR_MISSES):  # each pair at its own place
        if ca == cb:
            continue
        lat = 31.92 + 0.02 * i
        assert m.update(st, ticket(f"A{i}", a, ts=T0 + i * MIN, category=ca, lat=lat)) == []
        assert m.update(st, ticket(f"B{i}", b, ts=T0 + i * MIN, category=cb, lat=lat)) == []


def test_other_words_at_one_place_weigh_less_than_a_paraphrase() -> None:
    """Same place, time and category: the words decide which pair is more likely one problem."""
    m = _model()
    st = m.new_state("city")
    for i in range(40):  # some history, so document frequencies mean something
        a, _, ca, _ = (DUPLICATES + NEAR_MISSES)[i % 14]
        m.update(st, ticket(f"H{i}", a, ts=T0 - 30 * HOUR + i * HOUR, category=ca, lat=31.5))
    base, other, para = (
        "星湖花园东门外工地夜间施工打桩噪音扰民",
        "星湖花园东门外烧烤店油烟味很重",
        "星湖花园东门旁边工地晚上还在施工打桩，吵死了",
    )
    f0, _ = m.ticket_features(st, ticket("X", base, category="noise"), learn_df=False)
    f1, _ = m.ticket_features(st, ticket("Y", other, category="noise"), learn_df=False)
    f2, _ = m.ticket_features(st, ticket("Z", para, category="noise"), learn_df=False)
    pm = st.dedup.pairs
    assert pm.probability(pair_features(f0, f2)) > pm.probability(pair_features(f0, f1))


def test_watermark_closes_expired_clusters_with_a_clear() -> None:
    m = _model(dedup=DedupConfig(window_ms=HOUR, place_window_ms=HOUR))
    st = m.new_state("city")
    a, b, ca, cb = DUPLICATES[0]
    m.update(st, ticket("A", a, category=ca))
    m.update(st, ticket("B", b, ts=T0 + MIN, category=cb))
    assert m.on_watermark(st, T0 + 30 * MIN) == []
    (clear,) = m.on_watermark(st, T0 + 2 * HOUR)
    assert (clear.rule, clear.subject.id, clear.active) == ("hotline.duplicate", "A", False)
    assert clear.evidence["size"] == 2


def test_surge_signal_subject_is_district_slash_category_and_it_clears() -> None:
    m = _model()
    st = m.new_state("city")
    texts = ["第{}栋楼下有人烧烤冒烟", "小区{}号门口垃圾没人清运", "{}号路口井盖破损"]
    n = 0
    for day in range(3):  # quiet days: a few unrelated tickets a day far apart
        for h, tmpl in enumerate(texts):
            lat = 31.92 + 0.015 * n % 0.15
            m.update(
                st,
                ticket(
                    f"Q{n}",
                    tmpl.format(n),
                    ts=T0 + day * 24 * HOUR + h * HOUR,
                    category="garbage",
                    lat=lat,
                    lon=120.85,
                ),
            )
            n += 1
    t = T0 + 3 * 24 * HOUR + 4 * HOUR
    sigs = []
    for i in range(12):
        lat = 31.91 + 0.016 * i  # 1.8 km apart: twelve places, not one
        sigs += m.update(
            st,
            ticket(
                f"S{i}",
                f"第{i}小区附近工地夜间施工噪音",
                ts=t + i * 4 * MIN,
                category="noise",
                lat=lat,
                lon=120.95,
            ),
        )
    surge = [s for s in sigs if s.rule == "hotline.surge"]
    assert surge
    assert all(s.subject.kind == "district" and s.subject.id == "崇川区/noise" for s in surge)
    assert surge[0].active
    assert surge[0].district == "崇川区"
    assert surge[0].evidence["count"] >= 5
    ends = m.on_watermark(st, t + 8 * HOUR)
    assert [(s.rule, s.active) for s in ends if s.rule == "hotline.surge"] == [
        ("hotline.surge", False)
    ]


def test_unknown_district_without_registry() -> None:
    m = HotlineModel()
    assert m.district_of(32.0, 120.9) == "unknown"
    assert _model().district_of(None, None, "G0034-0059") == "崇川区"
    assert _model().district_of(None, None, "bogus") == "unknown"
    assert _model().district_of(32.5, 121.5) == "unknown"


def test_state_survives_pickle_and_deepcopy_mid_stream() -> None:
    m = _model()
    stream = []
    for i, (a, b, ca, cb) in enumerate(DUPLICATES):
        lat = 31.92 + 0.02 * i
        stream.append(ticket(f"A{i}", a, ts=T0 + i * MIN, category=ca, lat=lat))
        stream.append(ticket(f"B{i}", b, ts=T0 + (i + 20) * MIN, category=cb, lat=lat))
    stream.sort(key=lambda t: t.ts)
    ref_state = m.new_state("city")
    expected = [m.update(ref_state, t) for t in stream]
    st = m.new_state("city")
    got = [m.update(st, t) for t in stream[:5]]
    st = copy.deepcopy(pickle.loads(pickle.dumps(st)))  # noqa: S301 (our own bytes)
    got += [m.update(st, t) for t in stream[5:]]
    assert got == expected
    assert sum(len(x) for x in expected) == len(DUPLICATES)


def _decision(t, **kw):  # type: ignore[no-untyped-def]
    import msgspec

    return msgspec.structs.replace(t, **kw)


def test_dispatch_decisions_teach_routing_and_are_scored_at_intake() -> None:
    m = _model()
    st = m.new_state("city")
    kinds = [
        ("市公安局", "noise", "楼下{}号广场舞音响太吵，晚上睡不着"),
        ("市水务集团", "water", "{}号楼突然停水了，没有通知"),
        ("市人力资源和社会保障局", "labour", "在{}号工地干活，老板拖欠工资"),
    ]
    n = 0
    for day in range(6):
        for k in range(30):
            dept, cat, text = kinds[k % 3]
            ts = T0 + day * 24 * HOUR + k * 20 * MIN
            t = ticket(f"T{n}", text.format(n), ts=ts, lat=31.92 + 0.001 * (n % 90))
            m.update(st, t)
            assert m.update(st, _decision(t, ts=ts + 5 * MIN, dept=dept, category=cat)) == []
            n += 1
    days = sorted(st.routing.days)
    assert len(days) == 6
    first, last = st.routing.days[days[0]], st.routing.days[days[-1]]
    assert last[0] == 30
    assert last[1] / last[0] > first[1] / first[0]
    assert st.routing.accuracy(last_days=2)["top1"] >= 0.9
    assert st.router.labels("dept") == [k[0] for k in kinds]


def test_a_correction_rescores_the_intake_prediction() -> None:
    m = _model()
    st = m.new_state("city")
    for i in range(20):
        t = ticket(f"W{i}", f"{i}号楼停水了", ts=T0 + i * HOUR, lat=31.92 + 0.002 * i)
        m.update(st, t)
        m.update(st, _decision(t, ts=t.ts + MIN, dept="市水务集团", category="water"))
    t = ticket("X", "99号楼停水了", ts=T0 + 30 * HOUR, lat=31.95)
    m.update(st, t)
    m.update(st, _decision(t, ts=t.ts + MIN, dept="国网南通供电公司", category="water"))
    day = max(st.routing.days)
    n, hits = st.routing.days[day][:2]
    m.update(st, _decision(t, ts=t.ts + HOUR, dept="市水务集团", category="water"))
    assert st.routing.days[day][:2] == [n, hits + 1]  # the correction is the label: right
    assert st.routing.days[day][2] >= hits + 1


def test_duplicate_evidence_carries_routing_and_place() -> None:
    m = _model()
    st = m.new_state("city")
    for i in range(10):
        t = ticket(f"P{i}", f"{i}号小区有个工地晚上打桩，噪音太大", ts=T0 + i * HOUR, lat=31.5)
        m.update(st, t)
        m.update(st, _decision(t, ts=t.ts + MIN, dept="市住房和城乡建设局", category="noise"))
    a, b, ca, cb = DUPLICATES[2]
    m.update(st, ticket("A", a, ts=T0 + 20 * HOUR, category=ca))
    (sig,) = m.update(st, ticket("B", b, ts=T0 + 20 * HOUR + MIN, category=cb))
    routing = sig.evidence["routing"]
    assert routing[0]["dept"] == "市住房和城乡建设局"
    assert 0.0 < routing[0]["p"] <= 1.0
    assert sig.evidence["place"]["placed"] is True
    assert 0.0 < sig.evidence["probability"] <= 1.0


def test_unplaceable_ticket_is_kept_and_flagged() -> None:
    m = _model()
    st = m.new_state("city")
    (flag,) = m.update(st, ticket("U", "我家楼下有人烧垃圾，烟很大", lat=None, lon=None))
    assert (flag.rule, flag.subject.id, flag.level) == ("hotline.unplaced", "U", Level.BLUE)
    assert st.unplaced == 1
    assert st.dedup.get("U") is not None  # kept: a later call in other words can join it
    out = m.update(
        st, ticket("V", "我家楼下有人烧垃圾，烟很大", ts=T0 + MIN, caller=None, lat=None, lon=None)
    )
    assert any(s.rule == "hotline.duplicate" for s in out)


def test_state_stays_bounded_over_a_long_stream() -> None:
    m = _model(dedup=DedupConfig(window_ms=6 * HOUR, place_window_ms=HOUR))
    st = m.new_state("city")
    sizes = []
    for i in range(1500):
        t = ticket(f"L{i}", f"第{i}号路灯不亮了", ts=T0 + i * 10 * MIN, lat=31.9 + (i % 50) * 0.004)
        m.update(st, t)
        m.update(st, _decision(t, ts=t.ts + MIN, dept="崇川区城市管理局", category="streetlight"))
        if i % 500 == 499:
            sizes.append(len(pickle.dumps(st)))
    assert len(st.dedup) <= 37  # six hours of tickets, ten minutes apart
    assert len(st.pending) <= 40
    assert sizes[-1] < sizes[0] * 1.1


def test_an_officers_decision_is_what_later_tickets_are_compared_with() -> None:
    """Once an officer filed a ticket under a category and department, a later ticket at the
    same place filed under another category is not its duplicate (before that decision it
    would have been: nothing said the first one was about something else)."""
    text = "幸福小区3栋楼下晚上一直有声音，吵得睡不着"

    def run(decide: bool) -> list[str]:
        m = _model()
        st = m.new_state("city")
        a = ticket("A", text)
        m.update(st, a)
        if decide:
            m.update(st, _decision(a, ts=T0 + 5 * MIN, dept="市公安局", category="noise"))
            live = st.dedup.get("A")
            assert live is not None
            assert live.category == "noise"
            assert live.dept_dist["市公安局"] >= 0.9
        out = m.update(st, ticket("B", text + "，麻烦处理", ts=T0 + 10 * MIN, category="odor"))
        return [s.rule for s in out]

    assert "hotline.duplicate" in run(decide=False)
    assert "hotline.duplicate" not in run(decide=True)


def test_a_dispatch_the_router_foresaw_is_not_a_learning_step() -> None:
    m = _model()
    st = m.new_state("city")
    a = ticket("A", "3号楼停水了", lat=31.95)
    b = ticket("B", "5号楼路灯坏了", ts=T0 + HOUR, lat=31.93)
    m.update(st, a)
    m.update(st, b)
    live = st.dedup.get("A")
    assert live is not None
    live.dept_dist = {"市水务集团": 0.97}  # as if the router had been sure at intake
    live.cat_dist = {"water": 0.96}
    before = st.router.n_learned
    m.update(st, _decision(a, ts=T0 + 2 * HOUR, dept="市水务集团", category="water"))
    assert st.router.n_learned == before  # foreseen: no step
    m.update(st, _decision(b, ts=T0 + 2 * HOUR, dept="崇川区城市管理局", category="streetlight"))
    assert st.router.n_learned == before + 1  # a surprise is a step
    # both are scored all the same
    assert st.routing.accuracy()["n"] == 2
