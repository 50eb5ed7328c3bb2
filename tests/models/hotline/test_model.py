from __future__ import annotations

import copy
import pickle

from citywatch.alerts import Level
from citywatch.events import Air
from citywatch.registry import District, Registry
from models.base import Model
from models.hotline.dedup import DedupConfig
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
    assert m.model_id == "hotline@1"
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


def test_near_misses_emit_nothing() -> None:
    m = _model()
    st = m.new_state("city")
    for i, (a, b, ca, cb) in enumerate(NEAR_MISSES):  # each pair at its own place
        lat = 31.92 + 0.02 * i
        assert m.update(st, ticket(f"A{i}", a, ts=T0 + i * MIN, category=ca, lat=lat)) == []
        assert m.update(st, ticket(f"B{i}", b, ts=T0 + i * MIN, category=cb, lat=lat)) == []


def test_watermark_closes_expired_clusters_with_a_clear() -> None:
    m = _model(dedup=DedupConfig(window_ms=HOUR))
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
        lat = 31.92 + 0.012 * i
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
