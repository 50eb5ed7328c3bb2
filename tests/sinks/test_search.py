"""Search: Chinese and mixed text, filters, ranking, catch-up from the real streams, both
backends (SQLite always; PostgreSQL when one answers at 127.0.0.1:5432)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from citywatch.cli import main
from citywatch.keys import Keys
from citywatch.settings import Settings
from sinks.search.documents import Doc, alert_doc, ticket_doc
from sinks.search.feeder import SearchFeeder
from sinks.search.sqlite_index import Filters, SqliteIndex
from sinks.search.tokens import QueryError, match_expression, parse_query, tokens

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
DAY = 86_400_000
T0 = 1_796_000_000_000


def _pg_up() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=2).close()
    except Exception:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgres"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "sqlite":
        idx: Any = SqliteIndex(tmp_path / "i.sqlite")
        yield idx
        idx.close()
        return
    if not _pg_up():
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    from sinks.search.postgres_index import PostgresIndex

    idx = PostgresIndex(PG_URL, table_prefix=f"t{uuid.uuid4().hex[:10]}")
    yield idx
    idx.drop()
    idx.close()


def ticket(n: int, text: str, ts: int = T0, **kw: Any) -> Doc:
    return ticket_doc({"ticket": f"T{n}", "ts": ts, "text": text, "category": "noise", **kw})


def alert(aid: str, title: str, ts: int = T0, **kw: Any) -> dict[str, Any]:
    a = {"id": aid, "rule": "air.spike", "level": "orange", "state": "firing",
         "subject": {"kind": "station", "id": "ST0001"}, "first_ts": ts, "last_ts": ts,
         "district": "崇川区", "title": title, "evidence": {}, "version": 1}  # fmt: skip
    a.update(kw)
    return a


# -- tokens and queries ------------------------------------------------------------------------


def test_two_character_words_and_mixed_text_are_tokens() -> None:
    assert tokens("工地噪声") == ["工", "工地", "地噪", "噪声", "声"]
    assert tokens("苏F12345 停在ST0003旁") == ["苏", "f12345", "停", "停在", "在", "st0003", "旁"]


@pytest.mark.parametrize(
    "query",
    ['"', '""', "NEAR(a b)", "a:b", "*", "-", "OR", "^x", "'; DROP TABLE docs; --", "( )"],
)
def test_hostile_queries_never_reach_the_engine_as_syntax(query: str, index: Any) -> None:
    index.add([ticket(1, "夜间施工噪声")])
    try:
        results = index.search(query)
    except QueryError:
        return  # nothing to search for: a clear error
    assert isinstance(results.hits, list)


def test_a_query_without_words_is_an_error() -> None:
    with pytest.raises(QueryError, match="nothing to search for"):
        parse_query("-噪声 ，。")


def test_or_groups_and_exclusions() -> None:
    assert match_expression("异味 OR 臭味 化工") == '("异味" OR "臭味") AND "化工"'
    assert match_expression("噪声 -装修") == '"噪声" NOT "装修"'


# -- the index ---------------------------------------------------------------------------------


def test_chinese_words_and_phrases_match_exactly(index: Any) -> None:
    index.add(
        [
            ticket(1, "小区旁边有危化品车辆停放"),
            ticket(2, "危化车停了一夜，化品味道很重"),  # 危化 and 化品, not 危化品
            ticket(3, "楼下装修噪声太大"),
            ticket(4, "垃圾桶满了有异味"),
        ]
    )
    assert [h.doc.ref for h in index.search("危化品").hits] == ["T1"]
    assert [h.doc.ref for h in index.search("噪声").hits] == ["T3"]
    assert [h.doc.ref for h in index.search("异味").hits] == ["T4"]
    assert {h.doc.ref for h in index.search("危化 OR 装修").hits} == {"T1", "T2", "T3"}
    assert [h.doc.ref for h in index.search("危化 -化品").hits] == []
    assert {h.doc.ref for h in index.search("化").hits} == {"T1", "T2"}  # one character
    assert [h.doc.ref for h in index.search("停放").hits] == ["T1"]  # at the end of a run


def test_exclusion_removes_documents(index: Any) -> None:
    index.add([ticket(1, "装修噪声"), ticket(2, "广场舞噪声")])
    assert [h.doc.ref for h in index.search("噪声 -装修").hits] == ["T2"]


def test_ascii_ids_and_plates_and_prefixes(index: Any) -> None:
    index.add(
        [
            ticket(1, "车牌苏F12345的槽罐车停在学校门口"),
            ticket(2, "监测站ST0003数据异常"),
            ticket(3, "监测站ST0104数据异常"),
        ]
    )
    assert [h.doc.ref for h in index.search("苏F12345").hits] == ["T1"]
    assert [h.doc.ref for h in index.search("牌苏F12345的").hits] == ["T1"]
    assert [h.doc.ref for h in index.search("苏F").hits] == []  # a word, not a prefix
    assert [h.doc.ref for h in index.search("苏F*").hits] == ["T1"]
    assert [h.doc.ref for h in index.search("st0003").hits] == ["T2"]
    assert {h.doc.ref for h in index.search("ST0*").hits} == {"T2", "T3"}


def test_a_newer_version_replaces_the_older(index: Any) -> None:
    index.add([alert_doc(alert("a1", "PM2.5 局地突增"))])
    index.add([alert_doc(alert("a1", "PM2.5 局地突增 已升级", level="red", state="resolved"))])
    hits = index.search("突增").hits
    assert len(hits) == 1
    assert hits[0].doc.level == 4
    assert hits[0].doc.status == "resolved"
    assert index.search("升级").hits[0].doc.ref == "a1"


def test_filters_time_district_kind_level_status(index: Any) -> None:
    index.add(
        [
            ticket(1, "噪声扰民", ts=T0, district="崇川区"),
            ticket(2, "噪声扰民", ts=T0 + 2 * DAY, district="通州区"),
            alert_doc(alert("a1", "施工噪声", ts=T0 + DAY, level="red")),
            alert_doc(alert("a2", "施工噪声", ts=T0 + DAY, level="blue", state="resolved")),
        ]
    )

    def refs(**kw: Any) -> set[str]:
        return {h.doc.ref for h in index.search("噪声", Filters(**kw)).hits}

    assert refs() == {"T1", "T2", "a1", "a2"}
    assert refs(from_ms=T0 + DAY) == {"T2", "a1", "a2"}
    assert refs(to_ms=T0 + DAY) == {"T1"}
    assert refs(districts=("通州区",)) == {"T2"}
    assert refs(kinds=("alert",)) == {"a1", "a2"}
    assert refs(min_level=3) == {"a1"}
    assert refs(statuses=("resolved",)) == {"a2"}


def test_relevance_first_then_recency(index: Any) -> None:
    index.add(
        [
            ticket(1, "噪声", ts=T0),
            ticket(2, "噪声", ts=T0 + DAY),  # same text, newer
            alert_doc(alert("a1", "夜间施工噪声扰民严重", ts=T0 - DAY)),  # title match
        ]
    )
    refs = [h.doc.ref for h in index.search("噪声").hits]
    assert refs.index("T2") < refs.index("T1")


def test_snippets_mark_the_matched_words(index: Any) -> None:
    index.add([ticket(1, "昨天晚上十一点以后，楼下的工地还在施工，噪声非常大，影响孩子休息")])
    hit = index.search("噪声 施工").hits[0]
    marked = [s for s, is_hit in hit.snippet if is_hit]
    assert "噪声" in marked
    assert "施工" in marked


def test_traditional_and_simplified_find_each_other(index: Any) -> None:
    index.add(
        [
            ticket(1, "樓下工地夜間施工，噪聲很大，還有危險化學品車輛"),  # traditional
            ticket(2, "楼下工地夜间施工噪声很大"),  # simplified
            ticket(3, "垃圾桶满了"),
        ]
    )
    for query in ("噪声", "噪聲", '"夜间施工"', "夜間施工"):
        assert {h.doc.ref for h in index.search(query).hits} == {"T1", "T2"}, query
    assert [h.doc.ref for h in index.search("危险化学品").hits] == ["T1"]
    hit = next(h for h in index.search("噪聲").hits if h.doc.ref == "T1")
    assert ("噪声", True) in hit.snippet  # marked in the simplified text
    assert hit.doc.body.startswith("樓下")  # the document itself is as the caller wrote it


def test_only_the_newest_matches_are_ranked_when_too_many(tmp_path: Path) -> None:
    idx = SqliteIndex(tmp_path / "i.sqlite", max_candidates=50)
    idx.add([ticket(n, "噪声扰民", ts=T0 + n) for n in range(200)])
    res = idx.search("噪声", limit=5)
    assert res.capped
    assert res.matched == 50
    assert all(int(h.doc.ref[1:]) >= 150 for h in res.hits)
    res = idx.search("噪声", Filters(to_ms=T0 + 40), limit=5)
    assert {int(h.doc.ref[1:]) for h in res.hits} <= set(range(40))
    assert res.hits


# -- fed from the real streams -----------------------------------------------------------------


def _xadd(client: redis.Redis, keys: Keys, a: list[dict[str, Any]], t: list[dict[str, Any]],
          e: list[dict[str, Any]]) -> None:  # fmt: skip
    for x in a:
        client.xadd(keys.alerts, {"a": orjson.dumps(x)})
    for x in t:
        client.xadd(keys.tickets, {"t": orjson.dumps(x)})
    for x in e:
        client.xadd(keys.audit, {"e": orjson.dumps(x)})


def test_the_index_catches_up_with_the_streams_and_after_a_restart(
    redis_client: redis.Redis, settings: Settings, tmp_path: Path
) -> None:
    keys = settings.keys
    _xadd(
        redis_client,
        keys,
        [alert("a1", "PM2.5 局地突增"), alert("a1", "PM2.5 局地突增", version=2, level="red")],
        [
            {
                "kind": "hotline",
                "ticket": "T1",
                "ts": T0,
                "text": "化工厂方向有刺鼻异味",
                "category": "odor",
                "grid": "G1",
            }
        ],
        [
            {
                "id": "a1",
                "action": "dispatch",
                "actor": "张三",
                "dept": "生态环境局",
                "to": "dispatched",
                "ts_ms": T0,
                "note": "请尽快核查排放口",
            },
            {"not json": 1},
        ],
    )
    redis_client.xadd(keys.alerts, {"a": b"{broken"})
    path = tmp_path / "i.sqlite"
    idx = SqliteIndex(path)
    done = SearchFeeder(idx, redis_client, keys).catch_up(page=2)
    assert done.added == {"alerts": 2, "tickets": 1, "audit": 1}
    assert done.unreadable == 2
    assert idx.search("异味").hits[0].doc.ref == "T1"
    assert idx.search("突增").hits[0].doc.level == 4
    order = idx.search("排放口").hits[0].doc
    assert (order.kind, order.ref, order.status) == ("order", "a1", "dispatched")
    assert SearchFeeder(idx, redis_client, keys).catch_up().total == 0
    idx.close()
    # a restart: a new process opens the same file and reads only what is new
    _xadd(redis_client, keys, [], [{"kind": "hotline", "ticket": "T2", "ts": T0 + 1,
          "text": "深夜广场舞音响扰民", "category": "noise"}], [])  # fmt: skip
    idx = SqliteIndex(path)
    assert SearchFeeder(idx, redis_client, keys).catch_up().added == {"tickets": 1}
    assert idx.search("广场舞").hits[0].doc.ref == "T2"
    assert SearchFeeder(idx, redis_client, keys).rebuild().total == 5
    assert idx.count() == 4
    idx.close()


def test_search_command(
    redis_client: redis.Redis,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _xadd(redis_client, settings.keys, [], [{"kind": "hotline", "ticket": "T9", "ts": T0,
          "text": "小区门口危化品槽罐车停了一整夜", "category": "hazmat"}], [])  # fmt: skip
    monkeypatch.setenv("REDIS_URL", str(settings.redis_url))
    monkeypatch.setenv("CW_PREFIX", settings.prefix)
    monkeypatch.setenv("CW_DATA_DIR", str(tmp_path))
    assert main(["search", "危化品"]) == 0
    out = capsys.readouterr().out
    assert "T9" in out
    assert "[危化品]" in out
    assert main(["search", "危化品", "--json", "--offline"]) == 0
    got = orjson.loads(capsys.readouterr().out)
    assert got["hits"][0]["ref"] == "T9"
    assert main(["search", "，。"]) == 2
    assert "nothing to search for" in capsys.readouterr().err
    assert main(["search"]) == 2
    capsys.readouterr()
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["search", "危化品"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--offline" in err
    # no Redis named and no demo running here: say both ways to get one, like `report` does
    monkeypatch.delenv("REDIS_URL")
    assert main(["search", "危化品"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "REDIS_URL" in err
    assert "citywatch demo" in err


def test_tickets_are_placed_in_their_district_and_town(
    redis_client: redis.Redis, settings: Settings
) -> None:
    from citywatch.registry import District, Registry
    from citywatch.tiers import Grid, Town

    square = ((120.0, 31.0), (121.0, 31.0), (121.0, 32.0), (120.0, 32.0), (120.0, 31.0))
    reg = Registry(
        districts=[District(name="崇川区", code="1", rings=(square,))],
        towns={"TA": Town(id="TA", name="城东街道", district="崇川区", lat=31.5, lon=120.5)},
        grids={"G9": Grid(id="G9", town="TA", district="崇川区", lat=31.5, lon=120.5)},
    )
    _xadd(redis_client, settings.keys, [], [
        {"kind": "hotline", "ticket": "T1", "ts": T0, "text": "路灯不亮", "lat": 31.4,
         "lon": 120.4},
        {"kind": "hotline", "ticket": "T2", "ts": T0, "text": "路灯不亮", "grid": "G9"},
        {"kind": "hotline", "ticket": "T3", "ts": T0, "text": "路灯不亮"},
    ], [])  # fmt: skip
    idx = SqliteIndex(":memory:")
    SearchFeeder(idx, redis_client, settings.keys, reg.locator()).catch_up()
    got = {h.doc.ref: (h.doc.district, h.doc.town) for h in idx.search("路灯").hits}
    assert got == {"T1": ("崇川区", "TA"), "T2": ("崇川区", "TA"), "T3": ("", "")}
    assert {h.doc.ref for h in idx.search("路灯", Filters(towns=("TA",))).hits} == {"T1", "T2"}


def test_documents_with_every_word_come_first_then_some_of_them(index: Any) -> None:
    index.add(
        [
            ticket(1, "跃秀路183号华光小区施工渣土车带泥上路"),  # both words
            ticket(2, "华光小区东门工地的土方车把路面弄脏了"),  # the community only
            ticket(3, "跃秀路附近渣土车撒土"),  # the street only
            ticket(4, "人民路路灯不亮"),  # neither
        ]
    )
    res = index.search("华光 跃秀")
    assert (res.hits[0].doc.ref, res.hits[0].is_partial) == ("T1", False)
    assert {(h.doc.ref, h.is_partial) for h in res.hits[1:]} == {("T2", True), ("T3", True)}
    assert res.relaxed
    assert res.matched == 1  # documents with every word
    assert [h.doc.ref for h in index.search("华光 跃秀", limit=1).hits] == ["T1"]
    assert not index.search("华光 跃秀", limit=1).relaxed
    assert {h.doc.ref for h in index.search("华光 跃秀 -渣土").hits} == {"T2"}


# -- places ------------------------------------------------------------------------------------


def _registry() -> Any:
    from citywatch.registry import District, Locality, Registry
    from citywatch.tiers import Town

    square = ((120.0, 32.0), (121.0, 32.0), (121.0, 33.0), (120.0, 33.0), (120.0, 32.0))
    return Registry(
        districts=[District(name="如皋市", code="1", rings=(square,))],
        towns={"T1": Town(id="T1", name="如城街道", district="如皋市", lat=32.4, lon=120.6)},
        localities={
            "C1": Locality(id="C1", name="琅晖公寓", kind="community", lat=32.39, lon=120.57,
                           district="如皋市", town="T1"),
            "R1": Locality(id="R1", name="解放路", kind="road", lat=32.39, lon=120.58,
                           line=((120.56, 32.39), (120.60, 32.39)), district="如皋市",
                           town="T1"),
        },
    )  # fmt: skip


def test_a_place_name_also_finds_what_is_at_the_place(index: Any) -> None:
    from sinks.search.places import Gazetteer

    index.places = Gazetteer.from_registry(_registry())
    index.add(
        [
            ticket(1, "琅晖公寓1栋工地破碎锤一直在响", lat=32.3901, lon=120.5701),
            ticket(2, "解放路194号工地晚上还用破碎锤干活", lat=32.3912, lon=120.5722),  # 200 m
            ticket(3, "工地破碎锤半夜施工", lat=32.60, lon=120.90),  # 30 km away
            ticket(4, "琅晖公寓门口路灯不亮", lat=32.3902, lon=120.5702),  # another problem
            ticket(5, "解放路194号破碎锤"),  # no coordinates: its words only
            ticket(6, "工地破碎锤", town="T1"),  # placed in the town (by its grid, say)
        ]
    )
    res = index.search("琅晖公寓 破碎锤")
    full = {h.doc.ref for h in res.hits if not h.is_partial}
    assert full == {"T1", "T2"}
    assert res.matched == 2
    # a road: near its centre line (T3 is far from it, T5 says it)
    assert {h.doc.ref for h in index.search("解放路 破碎锤").hits if not h.is_partial} == {
        "T1", "T2", "T5"}  # fmt: skip
    # a town by its short name, by where tickets are placed
    assert {h.doc.ref for h in index.search("如城 破碎锤").hits if not h.is_partial} == {"T6"}
    index.places = None  # without a registry a place name is a word like any other
    assert {h.doc.ref for h in index.search("琅晖公寓 破碎锤").hits if not h.is_partial} == {"T1"}


def test_among_some_of_the_words_those_near_the_found_ones_come_first(index: Any) -> None:
    index.add(
        [
            ticket(1, "幸福小区东门夜市收摊后满地垃圾", lat=32.0, lon=120.8),
            # other callers about the same mess, in other words, nearby and far away
            ticket(2, "烧烤摊收摊以后垃圾扔一地", lat=32.002, lon=120.801, ts=T0 - 1000),
            ticket(3, "夜市收摊以后垃圾扔一地", lat=32.3, lon=121.2),
            ticket(4, "收摊后垃圾没人管", lat=32.5, lon=121.5),
        ]
    )
    res = index.search("幸福小区 收摊")
    assert [h.doc.ref for h in res.hits][:2] == ["T1", "T2"]
    assert [h.is_partial for h in res.hits][:2] == [False, True]


def test_a_common_name_places_nothing() -> None:
    from citywatch.registry import Locality, Registry
    from sinks.search.places import MAX_SPOTS, Gazetteer, place_text

    roads = {
        f"R{i}": Locality(id=f"R{i}", name="人民路", kind="road", lat=32.0 + i / 100,
                          lon=120.5, line=((120.5, 32.0 + i / 100), (120.51, 32.0 + i / 100)))
        for i in range(MAX_SPOTS + 1)
    }  # fmt: skip
    roads["C"] = Locality(id="C", name="幸福小区", kind="community", lat=32.0, lon=120.5)
    g = Gazetteer.from_registry(Registry(localities=roads))
    assert g.get("人民路") is None
    assert g.get("幸福小区").holds(place_text(32.001, 120.501, "", ""))
    assert not g.get("幸福小区").holds(place_text(32.02, 120.5, "", ""))  # 2 km north
    assert g.names_in("人民路幸福小区3栋") == ["幸福小区"]


def test_an_index_of_an_older_format_is_emptied_to_be_filled_again(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    idx = SqliteIndex(path)
    idx.add([ticket(1, "噪声")], {"tickets": "5-0"})
    idx.db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    idx.db.commit()
    idx.close()
    idx = SqliteIndex(path)
    assert idx.rebuilt
    assert idx.count() == 0
    assert idx.positions() == {}
    idx.add([ticket(2, "噪声")])
    assert [h.doc.ref for h in idx.search("噪声").hits] == ["T2"]
    idx.close()
    assert not SqliteIndex(path).rebuilt
