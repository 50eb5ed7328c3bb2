"""The event contract: typed round-trips for every kind, and dead letters that say why."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citywatch.events import (
    KINDS,
    MAX_RAW_BYTES,
    TS_MIN_MS,
    Air,
    DeadLetter,
    EventDecoder,
    Gps,
    Hotline,
    Order,
    Power,
    Region,
    Video,
    Water,
    encode,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20
)
ts = st.integers(min_value=TS_MIN_MS, max_value=T0 + 3_600_000)


def opt(s: st.SearchStrategy[float]) -> st.SearchStrategy[float | None]:
    return st.none() | s


def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


lat = floats(31.6, 32.7)
lon = floats(120.2, 121.9)
conc = opt(floats(-1000, 100_000))

STRATEGIES = {
    "air": st.builds(
        Air,
        ts=ts,
        station=ids,
        pm25=conc,
        pm10=conc,
        no2=conc,
        so2=conc,
        o3=conc,
        co=opt(floats(-100, 1000)),
        temp_c=opt(floats(-80, 80)),
        rh=opt(floats(0, 110)),
        wind_ms=opt(floats(0, 100)),
        wind_deg=opt(floats(0, 360)),
    ),
    "gps": st.builds(
        Gps,
        ts=ts,
        vehicle=ids,
        lat=lat,
        lon=lon,
        speed_kmh=opt(floats(0, 300)),
        heading=opt(floats(0, 360)),
        un=st.none() | st.text(max_size=8),
        plate=st.none() | st.text(min_size=1, max_size=10),
    ),
    "video": st.builds(
        Video,
        ts=ts,
        camera=ids,
        site=st.none() | ids,
        window_s=st.integers(1, 3600),
        persons=st.integers(0, 500),
        vehicles=st.integers(0, 500),
        machinery=st.integers(0, 50),
        plates=st.none() | st.lists(st.text(min_size=1, max_size=10), max_size=3).map(tuple),
    ),
    "power": st.builds(Power, ts=ts, meter=ids, site=st.none() | ids, kw=opt(floats(-1e5, 1e5))),
    "hotline": st.builds(
        Hotline,
        ts=ts,
        ticket=ids,
        text=st.text(min_size=1, max_size=300),
        category=st.text(max_size=10),
        lat=lat,
        lon=lon,
        grid=st.none() | st.text(max_size=12),
        caller=st.none() | st.text(max_size=16),
    ),
    "order": st.builds(
        Order,
        ts=st.just(T0),
        site=ids,
        action=st.sampled_from(["suspend", "lift"]),
        until=st.none() | st.integers(T0, T0 + 86_400_000),
        reason=st.none() | st.text(max_size=30),
    ),
    "water": st.builds(
        Water,
        ts=ts,
        station=ids,
        temp_c=opt(floats(-80, 80)),
        ph=opt(floats(0, 14)),
        conductivity_us_cm=opt(floats(0, 200_000)),
        turbidity_ntu=opt(floats(0, 10_000)),
        chlorine_mg_l=opt(floats(0, 1000)),
        redox_mv=opt(floats(-2000, 2000)),
        flow_m3_h=opt(floats(-1e6, 1e6)),
    ),
}


def test_every_kind_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip(kind: str) -> None:
    @settings(max_examples=150, deadline=None)
    @given(STRATEGIES[kind])
    def check(event: object) -> None:
        dec = EventDecoder(future_tolerance_ms=10**15)
        raw = encode(event)  # type: ignore[arg-type]
        out = dec.decode(raw, "test")
        assert not isinstance(out, DeadLetter), out
        assert out == event
        assert out.kind == kind
        assert encode(out) == raw

    check()


def test_key_is_the_entity_field() -> None:
    assert Air(ts=T0, station="S9").key == "S9"
    assert Gps(ts=T0, vehicle="V1", lat=32.0, lon=121.0).key == "V1"
    assert Video(ts=T0, camera="C1").key == "C1"
    assert Power(ts=T0, meter="M1").key == "M1"
    assert Hotline(ts=T0, ticket="T1", text="噪音").key == "T1"
    assert Order(ts=T0, site="W1", action="lift").key == "W1"
    assert Water(ts=T0, station="WS1").key == "WS1"


def _air(**fields: object) -> bytes:
    base: dict[str, object] = {"kind": "air", "ts": T0, "station": "S1"}
    base.update(fields)
    return msgspec.json.encode(base)


def _gps(**fields: object) -> bytes:
    base: dict[str, object] = {"kind": "gps", "ts": T0, "vehicle": "V1", "lat": 32.0, "lon": 121.0}
    base.update(fields)
    return msgspec.json.encode(base)


def _hot(**fields: object) -> bytes:
    base: dict[str, object] = {
        "kind": "hotline",
        "ts": T0,
        "ticket": "T1",
        "text": "有异味",
        "lat": 32.0,
        "lon": 121.0,
    }
    base.update(fields)
    return msgspec.json.encode(base)


#: (raw record, a fragment the reason must contain)
MALFORMED: list[tuple[bytes, str]] = [
    (b"", "empty record"),
    (b"   ", "empty record"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1"', "invalid JSON"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1",}', "invalid JSON"),
    (b"{kind:air}", "invalid JSON"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":NaN}', "pm25: NaN/Infinity is not"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":Infinity}', "pm25: NaN/Infinity"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":-Infinity}', "pm25: NaN/Infinity"),
    (b'{"kind":"air","ts":NaN,"x":1767225600000,"station":"S1"}', "ts: NaN/Infinity"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":nan}', "pm25: NaN/Infinity"),
    (
        b'{"kind":"video","ts":1767225600000,"camera":"C1","plates":["A",NaN]}',
        "plates[1]: NaN/Infinity",
    ),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","note":NaN}', "(in field 'note')"),
    # cut short: msgspec checks ts before it meets the end; the truncation is what to say
    (b'{"kind":"air","ts":17672', "invalid JSON: truncated record (ends inside the value of ts)"),
    (b'{"kind":"air","ts":1767225600000,"station":"S', "(ends inside the value of station)"),
    (b'{"kind":"air","ts":1767225600000,"station":', "(ends before the value of station)"),
    (b'{"kind":"air","ts":1767225600000,"sta', "(ends inside a field name)"),
    (b'{"kind":"air","ts":1767225600000,', "(ends after the value of ts)"),
    (
        b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":[1,',
        "ends before the value of pm25[1]",
    ),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","x":"abc', "truncated record"),
    (b'{"kind":"air","ts":1767225600000,"station":"\\ud800"}', "station: invalid JSON: a \\u"),
    (b'{"kind":"air","ts":1767225600000,"station":S1}', "station: invalid JSON: invalid character"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":1e999}', "pm25: number out of range"),
    (b"[1,2,3]", "expected `object`, got `array`"),
    (b'"air"', "expected `object`, got `str`"),
    (b"null", "expected `object`, got `null`"),
    (b"42", "expected `object`, got `int`"),
    (b'{"ts":1767225600000,"station":"S1"}', "kind: missing required field"),
    (b'{"kind":"weather","ts":1767225600000}', "kind: unknown kind 'weather'"),
    (b'{"kind":"","ts":1767225600000}', "unknown kind ''"),
    (b'{"kind":7,"ts":1767225600000}', "kind"),
    (_air(ts=None), "ts: expected `int`, got `null`"),
    (b'{"kind":"air","station":"S1"}', "ts: missing required field"),
    (_air(ts="2026-01-01T00:00:00Z"), "ts: expected `int`, got `str`"),
    (_air(ts=1767225600.5), "ts: expected `int`, got `float`"),
    (_air(ts=1_767_225_600), "ts: expected `int` >= 946684800000"),
    (_air(ts=0), "ts: expected `int` >= 946684800000"),
    (_air(ts=-5), "ts: expected `int` >= 946684800000"),
    (_air(ts=99_999_999_999_999), "ts: expected `int` <= "),
    (b'{"kind":"air","ts":1767225600000}', "station: missing required field"),
    (_air(station=""), "station: expected `str` of length >= 1"),
    (_air(station="x" * 200), "station: expected `str` of length <= 128"),
    (_air(station=17), "station: expected `str`, got `int`"),
    (_air(pm25="high"), "pm25: expected `float | null`, got `str`"),
    (_air(pm25=True), "pm25: expected `float | null`, got `bool`"),
    (_air(pm25=[1, 2]), "pm25: expected `float | null`, got `array`"),
    (_air(pm25={"a": [1, {"b": None}]}), "pm25: expected `float | null`, got `object`"),
    (_air(pm10=-5000.0), "pm10: expected `float` >= -1000.0"),
    (_air(rh=150.0), "rh: expected `float` <= 110.0"),
    (_air(wind_deg=400.0), "wind_deg: expected `float` <= 360.0"),
    (_air(temp_c=-200.0), "temp_c: expected `float` >= -80.0"),
    (_gps(lat=40.0), "lat/lon: (40.0, 121.0) outside the configured region"),
    (_gps(lon=119.0), "outside the configured region"),
    (_gps(lat=95.0), "lat: expected `float` <= 90.0"),
    (_gps(lat=None), "lat: expected `float`, got `null`"),
    (b'{"kind":"gps","ts":1767225600000,"vehicle":"V1","lat":32.0}', "lon: missing required field"),
    (_gps(speed_kmh=-3.0), "speed_kmh: expected `float` >= 0.0"),
    (_gps(speed_kmh=900.0), "speed_kmh: expected `float` <= 300.0"),
    (
        b'{"kind":"video","ts":1767225600000,"camera":"C1","persons":-1}',
        "persons: expected `int` >= 0",
    ),
    (
        b'{"kind":"video","ts":1767225600000,"camera":"C1","persons":2.5}',
        "persons: expected `int`, got `float`",
    ),
    (
        b'{"kind":"video","ts":1767225600000,"camera":"C1","machinery":"3"}',
        "machinery: expected `int`, got `str`",
    ),
    (
        b'{"kind":"video","ts":1767225600000,"camera":"C1","window_s":0}',
        "window_s: expected `int` >= 1",
    ),
    (
        b'{"kind":"video","ts":1767225600000,"camera":"C1","plates":"AB123"}',
        "plates: expected `array | null`, got `str`",
    ),
    (
        b'{"kind":"video","ts":1767225600000,"camera":"C1","plates":[1]}',
        "plates[0]: expected `str`, got `int`",
    ),
    (
        b'{"kind":"power","ts":1767225600000,"meter":"M1","kw":"12kW"}',
        "kw: expected `float | null`, got `str`",
    ),
    (
        b'{"kind":"power","ts":1767225600000,"meter":"M1","kw":1e12}',
        "kw: expected `float` <= 1000000.0",
    ),
    (
        b'{"kind":"water","ts":1767225600000,"station":"WS1","ph":15.2}',
        "ph: expected `float` <= 14.0",
    ),
    (
        b'{"kind":"water","ts":1767225600000,"station":"WS1","turbidity_ntu":-0.5}',
        "turbidity_ntu: expected `float` >= 0.0",
    ),
    (
        b'{"kind":"water","ts":1767225600000,"station":"WS1","chlorine_mg_l":"0.3mg"}',
        "chlorine_mg_l: expected `float | null`, got `str`",
    ),
    (b'{"kind":"water","ts":1767225600000,"ph":7.1}', "station: missing required field"),
    (_hot(text="x" * 5000), "text: expected `str` of length <= 4096"),
    (_hot(text="噪" * 2000), "text: 6000 bytes, over the 4096-byte limit"),
    (_hot(text=""), "text: expected `str` of length >= 1"),
    (_hot(lat=None), "lat/lon: one given without the other"),
    (_hot(lat=10.0, lon=10.0), "outside the configured region"),
    (
        b'{"kind":"order","ts":1767225600000,"site":"W1","action":"pause"}',
        "action: invalid enum value 'pause'",
    ),
    (b'{"kind":"order","ts":1767225600000,"site":"W1"}', "action: missing required field"),
    (
        b'{"kind":"order","ts":1767225600000,"site":"W1","action":"suspend","until":1767225500000}',
        "until: 1767225500000 is before ts",
    ),
    (b'{"kind":"air","ts":1767225600000,"station":"S\xff1"}', "not UTF-8: invalid byte at offset"),
    (b"\xff\xfe\x00\x00", "not UTF-8"),
    # msgspec skips unknown keys unchecked: invalid UTF-8 there must still dead-letter
    (b'{"kind":"air","ts":1767225600000,"station":"S1","pm1\xff0":64}', "offset 52"),
    (b'{"kind":"air","ts":1767225600000,"station":"S1","note":"\xc3\x28"}', "offset 56"),
    # a byte-order mark is accepted: what follows it is judged
    (b'\xef\xbb\xbf{"kind":"air"}', "station: missing required field"),
    (b"\xef\xbb\xbf", "invalid JSON: empty record"),
    # nested deeper than the parser's recursion limit, in a field msgspec skips unchecked
    (
        b'{"kind":"air","ts":1767225600000,"station":"S1","x":' + b"[" * 5000 + b"]" * 5000 + b"}",
        "nested more than 64 levels deep (in field 'x')",
    ),
    (b'{"kind":"air","ts":1767225600000,"station":"S1"}garbage', "invalid JSON"),
    (
        b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":'
        + b"[" * 2000
        + b"]" * 2000
        + b"}",
        "pm25",
    ),
    (b'{"kind":"air","ts":1767225600000,"station":"S1"}' + b" " * 3000 + b"x", "invalid JSON"),
]


def test_corpus_is_large_enough() -> None:
    assert len(MALFORMED) >= 40


@pytest.mark.parametrize(("raw", "fragment"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_record_dead_letters_with_reason(raw: bytes, fragment: str) -> None:
    out = EventDecoder().decode(raw, "corpus")
    assert isinstance(out, DeadLetter), out
    assert fragment in out.reason, out.reason
    assert out.source == "corpus"
    assert out.raw == raw[:MAX_RAW_BYTES]
    assert len(out.raw) <= MAX_RAW_BYTES
    assert "\n" not in out.reason


def test_valid_plus_dead_equals_input_and_valid_survive() -> None:
    good = [encode(Air(ts=T0 + i, station=f"S{i}", pm25=float(i))) for i in range(50)]
    mixed: list[bytes] = []
    for i, raw in enumerate(good):
        mixed.append(raw)
        mixed.append(MALFORMED[i % len(MALFORMED)][0])
    events, dead = EventDecoder().decode_batch(mixed, "mix")
    assert len(events) + len(dead) == len(mixed)
    assert [e.key for e in events] == [f"S{i}" for i in range(50)]
    assert len(dead) == 50


def test_a_leading_byte_order_mark_is_accepted() -> None:
    out = EventDecoder().decode(b"\xef\xbb\xbf" + _air(pm25=3.0))
    assert isinstance(out, Air)
    assert out.pm25 == 3.0


def test_without_a_clock_the_decoder_judges_no_time() -> None:
    """How far ahead of its stream a record may be is the source partition's decision
    (flows/sources/horizon.py): a decoder alone never locks on an old "newest seen"."""
    dec = EventDecoder()
    assert not isinstance(dec.decode(_air(ts=T0)), DeadLetter)
    assert not isinstance(dec.decode(_air(ts=T0 + 30 * 3_600_000)), DeadLetter)
    assert not isinstance(dec.decode(_air(ts=T0 + 60 * 3_600_000)), DeadLetter)


def test_with_a_clock_a_ts_too_far_ahead_of_it_is_rejected() -> None:
    now = [T0 / 1000]
    dec = EventDecoder(future_tolerance_ms=24 * 3_600_000, clock=lambda: now[0])
    assert not isinstance(dec.decode(_air(ts=T0 + 23 * 3_600_000)), DeadLetter)
    ahead = dec.decode(_air(ts=T0 + 25 * 3_600_000))
    assert isinstance(ahead, DeadLetter)
    assert ahead.reason == f"ts: {T0 + 25 * 3_600_000} is 25.0 h ahead of the wall clock ({T0})"
    now[0] += 2 * 3600  # the clock moves on: the same record is now fine
    assert not isinstance(dec.decode(_air(ts=T0 + 25 * 3_600_000)), DeadLetter)


def test_configured_region_is_used() -> None:
    small = EventDecoder(Region(32.0, 32.1, 120.9, 121.0))
    assert not isinstance(small.decode(_gps(lat=32.05, lon=120.95)), DeadLetter)
    out = small.decode(_gps(lat=32.5, lon=121.0))
    assert isinstance(out, DeadLetter)
    assert "lat 32.0..32.1" in out.reason


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    out = EventDecoder().decode(_air(firmware="v2", pm25=3.0))
    assert isinstance(out, Air)
    assert out.pm25 == 3.0


def test_events_are_frozen() -> None:
    ev = Air(ts=T0, station="S1")
    with pytest.raises(AttributeError):
        ev.pm25 = 3.0  # type: ignore[misc]


@pytest.mark.parametrize("cls", [Air, Gps, Video, Power, Hotline, Order])
def test_kind_attribute_is_the_decoding_tag(cls: type) -> None:
    assert cls.kind == cls.__struct_config__.tag  # type: ignore[attr-defined]
    assert cls.kind in KINDS


def test_water_channels_are_the_water_fields() -> None:
    from citywatch.events import WATER_CHANNELS

    fields = tuple(f for f in Water.__struct_fields__ if f not in ("ts", "station"))
    assert fields == WATER_CHANNELS
