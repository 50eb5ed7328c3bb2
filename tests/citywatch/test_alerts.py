from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from citywatch.alerts import Alert, AlertState, Level, Signal, Subject, episode_id, fingerprint
from citywatch.errors import SchemaError

T0 = 1_767_225_600_000


def _alert(**kw: object) -> Alert:
    subj = Subject("station", "S1")
    fp = fingerprint("air.spike", subj)
    base: dict[str, object] = dict(
        id=episode_id(fp, T0),
        fingerprint=fp,
        rule="air.spike",
        level=Level.ORANGE,
        state=AlertState.FIRING,
        subject=subj,
        first_ts=T0,
        last_ts=T0 + 60_000,
        lat=32.0,
        lon=120.9,
        district="崇川区",
        grid="G0034-0059",
        score=0.9,
        title="PM2.5 突增",
        evidence={"pm25": 180.0, "neighbours_median": 40.0},
        model="air.qc@1",
    )
    base.update(kw)
    return Alert(**base)  # type: ignore[arg-type]


def test_levels_are_ordered_with_colours_and_chinese_labels() -> None:
    assert sorted([Level.RED, Level.BLUE, Level.ORANGE, Level.YELLOW]) == [
        Level.BLUE,
        Level.YELLOW,
        Level.ORANGE,
        Level.RED,
    ]
    assert Level.RED.colour == "red"
    assert Level.YELLOW.label_zh == "黄色"


@pytest.mark.parametrize(
    ("raw", "level"), [(1, Level.BLUE), ("red", Level.RED), ("ORANGE", Level.ORANGE)]
)
def test_level_parse(raw: int | str, level: Level) -> None:
    assert Level.parse(raw) is level


@pytest.mark.parametrize("raw", [0, 5, "purple", True, ""])
def test_level_parse_rejects(raw: int | str) -> None:
    with pytest.raises(SchemaError, match="level"):
        Level.parse(raw)


def test_fingerprint_depends_on_rule_and_subject_only() -> None:
    a = fingerprint("air.spike", Subject("station", "S1"))
    assert a == fingerprint("air.spike", Subject("station", "S1"))
    assert a != fingerprint("air.spike", Subject("station", "S2"))
    assert a != fingerprint("air.drift", Subject("station", "S1"))
    assert a != fingerprint("air.spike", Subject("vehicle", "S1"))
    assert len(a) == 16


def test_episode_ids_differ_per_episode_and_are_deterministic() -> None:
    fp = fingerprint("vehicle.dwell", Subject("vehicle", "V1"))
    assert episode_id(fp, T0) == episode_id(fp, T0)
    assert episode_id(fp, T0) != episode_id(fp, T0 + 1)
    assert episode_id(fp, T0).startswith(fp)


def test_json_round_trip_and_wire_shape() -> None:
    a = _alert()
    wire = orjson.loads(a.to_json())
    assert wire["level"] == "orange"
    assert wire["state"] == "firing"
    assert wire["subject"] == {"kind": "station", "id": "S1"}
    assert Alert.from_json(a.to_json()) == a


@given(
    level=st.sampled_from(list(Level)),
    score=st.floats(0, 1),
    count=st.integers(1, 10**6),
    title=st.text(max_size=50),
    ev=st.dictionaries(
        st.text(max_size=8), st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8), max_size=5
    ),
)
def test_round_trip_property(level: Level, score: float, count: int, title: str, ev: dict) -> None:  # type: ignore[type-arg]
    a = _alert(level=level, score=score, count=count, title=title, evidence=ev)
    assert Alert.from_json(a.to_json()) == a


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [({"score": 1.5}, "score"), ({"score": float("nan")}, "score"), ({"version": 0}, "version")],
)
def test_invalid_alerts_raise(kw: dict[str, object], fragment: str) -> None:
    with pytest.raises(SchemaError, match=fragment):
        _alert(**kw)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"[]",
        b'{"id": "x"}',
        b'{"id":"x","fingerprint":"f","rule":"r",'
        b'"level":"pink","state":"firing","subject":{"kind":"a","id":"b"},'
        b'"first_ts":1,"last_ts":1}',
    ],
)
def test_from_json_rejects_malformed(raw: bytes) -> None:
    with pytest.raises(SchemaError):
        Alert.from_json(raw)


def test_evolve_and_signal_fingerprint() -> None:
    a = _alert()
    b = a.evolve(version=2, level=Level.RED)
    assert (b.version, b.level, a.version) == (2, Level.RED, 1)
    s = Signal(rule="air.spike", subject=Subject("station", "S1"), ts=T0)
    assert s.fingerprint == a.fingerprint


@pytest.mark.parametrize("value", [2**70, object(), {1, 2}])
def test_unserialisable_evidence_is_a_schema_error(value: object) -> None:
    with pytest.raises(SchemaError, match="evidence"):
        _alert(evidence={"x": value}).to_json()
