from __future__ import annotations

import copy
import pickle

import pytest

from citywatch.geo import offset
from models.hotline.dedup import DedupConfig, band_keys
from models.hotline.model import HotlineConfig

from .conftest import DUPLICATES, HOUR, MIN, NEAR_MISSES, T0, Pipe, ticket


@pytest.mark.parametrize(("a", "b", "ca", "cb"), DUPLICATES)
def test_paraphrased_duplicate_with_place_jitter_is_found(a: str, b: str, ca: str, cb: str) -> None:
    dc = Pipe()
    lat, lon = offset(32.0, 120.9, 150.0, -120.0)  # ~190 m away
    assert dc.update(ticket("A", a, category=ca)).duplicate_of is None
    r = dc.update(ticket("B", b, ts=T0 + 40 * MIN, category=cb, lat=lat, lon=lon))
    assert r.duplicate_of == "A"
    assert (r.canonical, r.size, r.cluster.members) == ("A", 2, ("A", "B"))


OTHER_CATEGORY = [x for x in NEAR_MISSES if x[2] != x[3]]


@pytest.mark.parametrize(("a", "b", "ca", "cb"), OTHER_CATEGORY)
def test_same_place_other_problem_is_not_a_duplicate(a: str, b: str, ca: str, cb: str) -> None:
    dc = Pipe()
    dc.update(ticket("A", a, category=ca))
    r = dc.update(ticket("B", b, ts=T0 + 10 * MIN, category=cb))
    assert r.duplicate_of is None
    assert r.size == 1


def test_same_problem_other_place_is_not_a_duplicate() -> None:
    dc = Pipe()
    text = "小区门口垃圾堆放好几天没人清运，气味难闻"
    dc.update(ticket("A", text, category="garbage"))
    lat, lon = offset(32.0, 120.9, 0.0, 3000.0)
    assert dc.update(ticket("B", text, category="garbage", lat=lat, lon=lon)).duplicate_of is None
    lat, lon = offset(32.0, 120.9, 2000.0, 0.0)  # known to be 2 km apart
    assert dc.update(ticket("C", text, category="garbage", lat=lat, lon=lon)).duplicate_of is None


def test_same_problem_days_later_is_a_new_ticket() -> None:
    dc = Pipe()
    a, b, ca, cb = DUPLICATES[1]
    dc.update(ticket("A", a, category=ca))
    assert dc.update(ticket("B", b, ts=T0 + 2 * 24 * HOUR, category=cb)).duplicate_of is None


def test_duplicate_across_a_grid_cell_border() -> None:
    dc = Pipe()
    a, b, ca, cb = DUPLICATES[4]
    # 31.6 + 34 * 0.0117 = 31.9978: the row border; one ticket each side, 60 m apart.
    dc.update(ticket("A", a, category=ca, lat=31.9975, lon=120.9))
    r = dc.update(ticket("B", b, ts=T0 + MIN, category=cb, lat=31.9980, lon=120.9))
    assert r.duplicate_of == "A"


def _bridge(merge_threshold: float) -> tuple[Pipe, object]:
    dc = Pipe(config=HotlineConfig(dedup=DedupConfig(merge_threshold=merge_threshold)))
    text = "星湖花园东门外工地夜间施工打桩噪音扰民"
    west = offset(32.0, 120.9, 0.0, -850.0)
    east = offset(32.0, 120.9, 0.0, 850.0)
    dc.update(ticket("W", text, lat=west[0], lon=west[1]))
    dc.update(ticket("E", text, ts=T0 + MIN, lat=east[0], lon=east[1]))  # 1.7 km from W: apart
    assert dc.dc.n_clusters == 2
    return dc, dc.update(ticket("M", text, ts=T0 + 2 * MIN))  # in between: matches both


def test_clusters_merge_and_keep_the_earliest_canonical() -> None:
    dc, r = _bridge(merge_threshold=0.05)
    assert set(r.matches) == {"W", "E"}  # type: ignore[attr-defined]
    assert r.canonical == "W"  # type: ignore[attr-defined]
    assert r.merged == ("E",)  # type: ignore[attr-defined]
    assert r.size == 3  # type: ignore[attr-defined]
    assert dc.dc.n_clusters == 1


def test_one_ticket_does_not_chain_two_clusters_without_confidence() -> None:
    dc, r = _bridge(merge_threshold=0.999)
    assert r.duplicate_of in {"W", "E"}  # type: ignore[attr-defined]
    assert r.merged == ()  # type: ignore[attr-defined]
    assert r.size == 2  # type: ignore[attr-defined]
    assert dc.dc.n_clusters == 2


def test_expiry_bounds_memory_and_closes_clusters() -> None:
    dc = Pipe(config=HotlineConfig(dedup=DedupConfig(window_ms=HOUR, place_window_ms=HOUR)))
    a, b, ca, cb = DUPLICATES[0]
    dc.update(ticket("A", a, category=ca))
    dc.update(ticket("B", b, ts=T0 + 10 * MIN, category=cb))
    assert len(dc.dc) == 2
    assert dc.dc.expire(T0 + HOUR + 5 * MIN) == []  # A left, B keeps the cluster open
    assert len(dc.dc) == 1
    assert dc.dc.cluster("B") is not None
    closed = dc.dc.expire(T0 + 2 * HOUR)
    assert [(c.canonical, c.size, c.members) for c in closed] == [("A", 2, ("A", "B"))]
    assert len(dc.dc) == 0
    assert dc.dc.n_clusters == 0
    assert dc.dc._index == {}
    assert dc.dc._cluster_of == {}
    assert dc.dc._live == {}


def test_flood_sheds_oldest_beyond_max_live() -> None:
    dc = Pipe(config=HotlineConfig(dedup=DedupConfig(max_live=50)))
    for i in range(200):
        lat, lon = offset(32.0, 120.9, 37.0 * i, 0.0)
        dc.update(ticket(f"T{i}", f"第{i}号问题：路灯不亮", ts=T0 + i * 1000, lat=lat, lon=lon))
    assert len(dc.dc) == 50
    assert dc.dc.n_clusters <= 50


def test_ticket_without_place_uses_grid_or_category_block() -> None:
    dc = Pipe()
    a, b, ca, cb = DUPLICATES[4]
    dc.update(ticket("A", a, category=ca, lat=None, lon=None, grid="G0034-0059"))
    r = dc.update(ticket("B", b, ts=T0 + MIN, category=cb, lat=None, lon=None, grid="G0034-0059"))
    assert r.duplicate_of == "A"
    # nowhere at all: the same words, the same category, a minute apart still match
    dc.update(ticket("C", a, category=ca, lat=None, lon=None, grid="nonsense"))
    r = dc.update(ticket("D", a + "！", ts=T0 + MIN, category=ca, lat=None, lon=None))
    assert r.duplicate_of in {"A", "B", "C"}  # one problem, whichever it joins


def test_same_caller_calling_again_is_a_duplicate() -> None:
    dc = Pipe()
    dc.update(ticket("A", "小区门口下水道堵了", caller="h1"))
    r = dc.update(ticket("B", "还是那个下水道问题，到现在没人来", ts=T0 + HOUR, caller="h1"))
    assert r.duplicate_of == "A"


def test_redelivered_ticket_changes_nothing() -> None:
    dc = Pipe()
    a, b, ca, cb = DUPLICATES[0]
    dc.update(ticket("A", a, category=ca))
    dc.update(ticket("B", b, ts=T0 + MIN, category=cb))
    again = dc.update(ticket("B", b, ts=T0 + MIN, category=cb))
    assert again.duplicate_of is None
    assert again.size == 2
    assert len(dc.dc) == 2


def _run(dc: Pipe, tickets: list) -> list[tuple[str | None, str, int]]:  # type: ignore[type-arg]
    return [(r.duplicate_of, r.canonical, r.size) for r in map(dc.update, tickets)]


def _stream() -> list:  # type: ignore[type-arg]
    out = []
    for i, (a, b, ca, cb) in enumerate(DUPLICATES + NEAR_MISSES):
        lat, lon = offset(32.0, 120.9, 2500.0 * i, 0.0)
        out.append(ticket(f"A{i}", a, ts=T0 + i * MIN, category=ca, lat=lat, lon=lon))
        out.append(ticket(f"B{i}", b, ts=T0 + (i + 30) * MIN, category=cb, lat=lat, lon=lon))
    return sorted(out, key=lambda t: t.ts)


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))])  # noqa: S301
def test_mid_stream_clone_gives_identical_results(clone) -> None:  # type: ignore[no-untyped-def]
    stream = _stream()
    expected = _run(Pipe(), stream)
    dc = Pipe()
    first = _run(dc, stream[:9])
    dc.state = clone(dc.state)
    dc.dc = dc.state.dedup
    assert first + _run(dc, stream[9:]) == expected
    # the paraphrases, and (a cold model: no document frequencies yet) at most the two
    # same-category near misses
    assert len(DUPLICATES) <= sum(d is not None for d, _, _ in expected) <= len(DUPLICATES) + 2


def test_state_pickled_with_the_older_index_layout_still_works() -> None:
    stream = _stream()
    expected = _run(Pipe(), stream)
    dc = Pipe()
    first = _run(dc, stream[:9])
    # the older layout: buckets of ids (id -> None), cells keyed ("c", (row, col))
    old = {}
    for key, bucket in dc.dc._index.items():
        if isinstance(key, int):
            key = ("c", (key >> 24, key & 0xFFFFFF))
        old[key] = dict.fromkeys(bucket)
    dc.dc._index = old
    dc.state = pickle.loads(pickle.dumps(dc.state))  # noqa: S301
    dc.dc = dc.state.dedup
    assert first + _run(dc, stream[9:]) == expected


def test_input_is_not_mutated() -> None:
    t = ticket("A", DUPLICATES[0][0])
    before = pickle.dumps(t)
    Pipe().update(t)
    assert pickle.dumps(t) == before


def test_minhash_keys_collide_more_the_more_features_are_shared() -> None:
    import numpy as np

    base = np.arange(1000, 1100)
    same = band_keys(base, 16, 2)
    assert band_keys(base, 16, 2) == same  # fixed constants: the same in every process
    near = sum(a == b for a, b in zip(same, band_keys(np.arange(1010, 1110), 16, 2), strict=True))
    far = sum(a == b for a, b in zip(same, band_keys(np.arange(1080, 1180), 16, 2), strict=True))
    assert near > far
    assert band_keys(np.zeros(0, dtype=np.int64), 16, 2) == ()


@pytest.mark.parametrize(
    "bad",
    [
        {"window_ms": 0},
        {"radius_m": -1.0},
        {"place_window_ms": 0},
        {"bands": -1},
        {"rare_share": 0.0},
        {"max_live": 0},
    ],
)
def test_config_is_validated(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=next(iter(bad))):
        DedupConfig(**bad)


def test_placed_tickets_look_for_text_twins_only_among_the_unplaced() -> None:
    """LSH candidates: a placed ticket does not fetch placed tickets far away (they cannot be
    its duplicates), but finds an unplaced one; an unplaced ticket finds both."""
    import numpy as np

    from models.hotline.dedup import DuplicateClusterer, TicketFeatures
    from models.hotline.docfreq import SparseVector

    vec = SparseVector(np.arange(8), np.full(8, 8**-0.5, dtype=np.float32))
    keys = band_keys(np.arange(8), 12, 2)

    def f(tid: str, ts: int, lat: float | None, prec: float = 0.0) -> TicketFeatures:
        return TicketFeatures(
            tid,
            ts,
            vec,
            lat=lat,
            lon=None if lat is None else 120.9,
            precision_m=prec,
            band_keys=keys,
        )

    dc = DuplicateClusterer()
    dc.update(f("far", T0, 31.8))  # placed 20 km south
    dc.update(f("nowhere", T0 + MIN, None, prec=float("inf")))
    here = dc.candidates(f("here", T0 + 2 * MIN, 32.0))
    assert [c.id for c in here] == ["nowhere"]
    lost = dc.candidates(f("lost", T0 + 3 * MIN, None, prec=float("inf")))
    assert {c.id for c in lost} == {"far", "nowhere"}
