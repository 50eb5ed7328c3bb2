"""Input events: one typed, frozen msgspec Struct per kind, and the decoder that checks them.

Every record is one JSON object with ``kind`` and ``ts`` (event time, epoch milliseconds UTC).
Missing measurements are ``null``. See ``docs/protocol.md`` for the table of kinds and fields.

The decoder never raises on bad input: it returns a :class:`DeadLetter` whose ``reason`` names
the field and the problem, so ``valid + dead-lettered == input`` always holds. It judges each
record alone; how far ahead of its stream a record may be is the source partition's call
(``flows/sources/horizon.py``), with a wall clock only for live input.

>>> dec = EventDecoder()
>>> ev = dec.decode(b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":35.0}')
>>> (ev.kind, ev.key, ev.pm25)
('air', 'S1', 35.0)
>>> dec.decode(b'{"kind":"air","ts":1767225600000,"station":"S1","pm25":"high"}').reason
'pm25: expected `float | null`, got `str`'
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Final, Literal

import msgspec

__all__ = [
    "BOM",
    "FIELDS",
    "KINDS",
    "MAX_RAW_BYTES",
    "MAX_TEXT_BYTES",
    "TS_MIN_MS",
    "WATER_CHANNELS",
    "Air",
    "DeadLetter",
    "Event",
    "EventDecoder",
    "Gps",
    "Hotline",
    "Order",
    "Power",
    "Region",
    "Video",
    "Water",
    "ahead_of_clock",
    "encode",
]

#: 2000-01-01T00:00:00Z: anything earlier is a unit error (seconds instead of ms) or garbage.
TS_MIN_MS: Final = 946_684_800_000
#: 2100-01-01T00:00:00Z: a static ceiling; how far ahead of its stream a record may be is
#: decided where the stream is known (the source partition, or the wall clock when live).
TS_MAX_MS: Final = 4_102_444_800_000
MAX_TEXT_BYTES: Final = 4096
#: Raw bytes kept in a dead letter.
MAX_RAW_BYTES: Final = 1024
DAY_MS: Final = 86_400_000

Ts = Annotated[int, msgspec.Meta(ge=TS_MIN_MS, le=TS_MAX_MS)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
# Decoder ranges are physical plausibility for the schema, deliberately wider than the
# models' QC gross ranges: a faulty analyser reading 9999 is data for air.range, not garbage.
Conc = Annotated[float, msgspec.Meta(ge=-1000.0, le=100_000.0)]
CoMg = Annotated[float, msgspec.Meta(ge=-100.0, le=1000.0)]
TempC = Annotated[float, msgspec.Meta(ge=-80.0, le=80.0)]
Rh = Annotated[float, msgspec.Meta(ge=0.0, le=110.0)]
WindMs = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
Deg = Annotated[float, msgspec.Meta(ge=0.0, le=360.0)]
Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
SpeedKmh = Annotated[float, msgspec.Meta(ge=0.0, le=300.0)]
Count = Annotated[int, msgspec.Meta(ge=0, le=100_000)]
WindowS = Annotated[int, msgspec.Meta(ge=1, le=86_400)]
Kw = Annotated[float, msgspec.Meta(ge=-1_000_000.0, le=1_000_000.0)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEXT_BYTES)]
Short = Annotated[str, msgspec.Meta(max_length=256)]
Plate = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Ph = Annotated[float, msgspec.Meta(ge=0.0, le=14.0)]
MicroSiemens = Annotated[float, msgspec.Meta(ge=0.0, le=200_000.0)]
Ntu = Annotated[float, msgspec.Meta(ge=0.0, le=10_000.0)]
MgL = Annotated[float, msgspec.Meta(ge=0.0, le=1000.0)]
MilliVolt = Annotated[float, msgspec.Meta(ge=-2000.0, le=2000.0)]
FlowM3h = Annotated[float, msgspec.Meta(ge=-1_000_000.0, le=1_000_000.0)]


class _Base(msgspec.Struct, frozen=True, tag_field="kind", kw_only=True):
    ts: Ts

    #: The record's kind, the tag it is decoded from (a class attribute: read on hot paths).
    kind: ClassVar[str] = ""
    KEY_FIELD: ClassVar[str] = ""

    @property
    def key(self) -> str:
        """The entity this record belongs to (station, vehicle, camera, meter, ticket, site)."""
        return getattr(self, self.KEY_FIELD)  # type: ignore[no-any-return]


class Air(_Base, frozen=True, tag="air"):
    """One reading of an air-quality station; concentrations in µg/m³, ``co`` in mg/m³."""

    kind: ClassVar[str] = "air"
    KEY_FIELD: ClassVar[str] = "station"
    station: Id
    pm25: Conc | None = None
    pm10: Conc | None = None
    no2: Conc | None = None
    so2: Conc | None = None
    o3: Conc | None = None
    co: CoMg | None = None
    temp_c: TempC | None = None
    rh: Rh | None = None
    wind_ms: WindMs | None = None
    wind_deg: Deg | None = None


class Gps(_Base, frozen=True, tag="gps"):
    """One fix of a hazmat vehicle; ``un`` is the UN number of its cargo."""

    kind: ClassVar[str] = "gps"
    KEY_FIELD: ClassVar[str] = "vehicle"
    vehicle: Id
    lat: Lat
    lon: Lon
    speed_kmh: SpeedKmh | None = None
    heading: Deg | None = None
    un: Short | None = None
    plate: Plate | None = None


class Video(_Base, frozen=True, tag="video"):
    """Counts a camera's analytics saw in one window; ``site`` is null for street cameras."""

    kind: ClassVar[str] = "video"
    KEY_FIELD: ClassVar[str] = "camera"
    camera: Id
    site: Id | None = None
    window_s: WindowS = 60
    persons: Count = 0
    vehicles: Count = 0
    machinery: Count = 0
    plates: tuple[Plate, ...] | None = None


class Power(_Base, frozen=True, tag="power"):
    """One reading of a power meter at a site or enterprise, in kW."""

    kind: ClassVar[str] = "power"
    KEY_FIELD: ClassVar[str] = "meter"
    meter: Id
    site: Id | None = None
    kw: Kw | None = None


class Hotline(_Base, frozen=True, tag="hotline"):
    """A 12345 citizen-hotline ticket; ``caller`` is hashed upstream.

    ``address`` is where, in words, as the caller or call-taker gave it (many tickets have no
    coordinates). A record that repeats a ticket id with ``dept`` or ``duplicate_of`` set is
    an officer's decision about that ticket (:attr:`is_decision`): ``dept`` the department it
    was dispatched to (a later one corrects an earlier one), ``category`` the confirmed
    category, ``duplicate_of`` the ticket it was merged into (``""``: split from any merge).
    """

    kind: ClassVar[str] = "hotline"
    KEY_FIELD: ClassVar[str] = "ticket"
    ticket: Id
    text: Text
    category: Short = ""
    lat: Lat | None = None
    lon: Lon | None = None
    grid: Short | None = None
    caller: Short | None = None
    address: Short | None = None
    dept: Short | None = None
    duplicate_of: Short | None = None

    @property
    def is_decision(self) -> bool:
        """An officer's decision about an earlier ticket (dispatch, merge or split)."""
        return bool(self.dept) or self.duplicate_of is not None


class Order(_Base, frozen=True, tag="order"):
    """A suspension order issued (``suspend``) or lifted (``lift``) for a work site."""

    kind: ClassVar[str] = "order"
    KEY_FIELD: ClassVar[str] = "site"
    site: Id
    action: Literal["suspend", "lift"]
    until: Ts | None = None
    reason: Short | None = None


class Water(_Base, frozen=True, tag="water"):
    """One reading of a drinking-water quality station (a plant outlet, a network node).

    Units: ``temp_c`` °C, ``ph``, ``conductivity_us_cm`` µS/cm, ``turbidity_ntu`` NTU,
    ``chlorine_mg_l`` free (or dioxide) chlorine residual mg/L, ``redox_mv`` mV,
    ``flow_m3_h`` m³/h. Every channel is optional: stations measure different subsets.
    """

    kind: ClassVar[str] = "water"
    KEY_FIELD: ClassVar[str] = "station"
    station: Id
    temp_c: TempC | None = None
    ph: Ph | None = None
    conductivity_us_cm: MicroSiemens | None = None
    turbidity_ntu: Ntu | None = None
    chlorine_mg_l: MgL | None = None
    redox_mv: MilliVolt | None = None
    flow_m3_h: FlowM3h | None = None


#: The measurement fields of :class:`Water`, in declaration order (models and simulators share it).
WATER_CHANNELS: Final[tuple[str, ...]] = (
    "temp_c",
    "ph",
    "conductivity_us_cm",
    "turbidity_ntu",
    "chlorine_mg_l",
    "redox_mv",
    "flow_m3_h",
)

Event = Air | Gps | Video | Power | Hotline | Order | Water
KINDS: Final[tuple[str, ...]] = ("air", "gps", "video", "power", "hotline", "order", "water")


class DeadLetter(msgspec.Struct, frozen=True):
    """A record that could not be accepted: the raw bytes (truncated), where it came from, why."""

    raw: bytes
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class Region:
    """The configured bounding box; coordinates outside it are rejected as wrong or foreign."""

    lat_min: float = 31.6
    lat_max: float = 32.7
    lon_min: float = 120.2
    lon_max: float = 121.9

    def contains(self, lat: float, lon: float) -> bool:
        return self.lat_min <= lat <= self.lat_max and self.lon_min <= lon <= self.lon_max


_ENCODER: Final = msgspec.json.Encoder()
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN_TAG = re.compile(r"Invalid value '(?P<tag>.*)'")
#: A UTF-8 byte-order mark: Windows tools and some editors start a file with one.
BOM: Final = b"\xef\xbb\xbf"
#: Every field of every kind. A reason starts with the field only when it is one of these:
#: the dead-letter counters are per field, and garbage keys must not make new ones.
FIELDS: Final[frozenset[str]] = frozenset({"kind"}).union(
    *(cls.__struct_fields__ for cls in (Air, Gps, Video, Power, Hotline, Order))
)
_BYTE = re.compile(r"^JSON is malformed: (?P<what>.*) \(byte (?P<at>\d+)\)$")
#: The tokens of a JSON text, broken or not: strings (an unterminated one runs to the end),
#: structural characters, and scalars (numbers, literals, garbage).
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*(?:(")|\\?\Z)|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.DOTALL)
_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")
#: Nesting deeper than this is reported at the field where it passed this depth.
_DEEP = 64
#: Reasons name fields by their first characters only.
_NAME_CHARS = 40


def encode(event: Event) -> bytes:
    """Encode an event as one JSON line body (no newline); ``decode(encode(e)) == e``."""
    return _ENCODER.encode(event)


@dataclass(slots=True)
class _Spot:
    """Where a byte offset falls in a JSON record that may be broken or cut short.

    ``path`` names the innermost field there (``pm25``, ``plates[1]``; ``""`` at the top
    level) and ``parent`` its container; ``state`` is what that container expected next
    (``key``, ``colon``, ``value``, ``after`` a value; ``top`` outside any container);
    ``inside``: the offset falls within a token that may go on (a number, a literal, a string
    without its closing quote); ``deep`` names the top-level field where nesting first went
    deeper than ``_DEEP``; ``open`` counts the containers still open.
    """

    path: str
    parent: str
    state: str
    inside: bool
    deep: str
    open: int

    @property
    def in_name(self) -> bool:
        return self.state in ("key", "colon")


def _spot(raw: bytes, end: int) -> _Spot:
    """Walk the tokens of ``raw[:end]`` (error paths only: a few µs for a record)."""
    # One frame per open container: [key (object) or index (array), state, is_object].
    frames: list[list[Any]] = []
    state = "value"
    inside = False
    deep = ""
    for m in _TOKEN.finditer(raw, 0, end):
        t = m.group()
        c = t[:1]
        # The offset falls inside a token when one reaches it and may go on: a number, a
        # literal, a string without its closing quote.
        inside = m.end() == end and (m.group(1) is None if c == b'"' else c not in b"{}[]:,")
        if frames and frames[-1][1] == "key" and c == b'"':
            frames[-1][0] = t[1:-1].decode("utf-8", "replace")[:_NAME_CHARS]
            frames[-1][1] = "colon"
        elif c in (b"{", b"["):
            frames.append([None if c == b"{" else 0, "key" if c == b"{" else "value", c == b"{"])
            if len(frames) > _DEEP and not deep:
                deep = _path(frames[:1])
        elif c in (b"}", b"]"):
            if frames:
                frames.pop()
            if frames:
                frames[-1][1] = "after"
            else:
                state = "top"
        elif c == b":":
            if frames and frames[-1][1] == "colon":
                frames[-1][1] = "value"
        elif c == b",":
            if frames and frames[-1][1] == "after":
                top = frames[-1]
                if top[2]:
                    top[1] = "key"
                else:
                    top[0] += 1
                    top[1] = "value"
        elif frames:
            frames[-1][1] = "after"
        else:
            state = "top"
    if frames:
        state = frames[-1][1]
    return _Spot(_path(frames), _path(frames[:-1]), state, inside, deep, len(frames))


def _path(frames: list[list[Any]]) -> str:
    out = ""
    for key, _, is_object in frames:
        if is_object:
            if key is None:
                break
            out = f"{out}.{key}" if out else key
        else:
            out = f"{out}[{key}]"
    return out[:_NAME_CHARS]


def _at(path: str, text: str) -> str:
    """``text`` with the field it concerns: first when it is a field of ours, else after."""
    if not path:
        return text
    if path.split("[", 1)[0].split(".", 1)[0] in FIELDS:
        return f"{path}: {text}"
    return f"{text} (in field {path!r})"


def _at_spot(spot: _Spot, text: str) -> str:
    if spot.in_name:
        return _at(spot.parent, f"{text} (in a field name)")
    return _at(spot.path, text)


def _utf8_reason(raw: bytes) -> str:
    """The dead-letter reason for invalid UTF-8 (offset within the record), or ``""``."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _at_spot(_spot(raw, exc.start), f"not UTF-8: invalid byte at offset {exc.start}")
    return ""


def _truncated(spot: _Spot) -> str:
    """Where a record cut short ends, for its dead letter."""
    name, state = spot.path, spot.state
    if state == "key":  # after "{" or after a value and its comma
        where = f"after the value of {name}" if name else "before its first field"
    elif state == "colon":
        where = "inside a field name" if spot.inside else f"after the field name {name!r}"
    elif state == "value":
        where = f"before the value of {name}" if name else "before a value"
    elif spot.inside:
        where = f"inside the value of {name}" if name else "inside a value"
    else:
        where = f"after the value of {name}" if name else "after a value"
    return f"invalid JSON: truncated record (ends {where})"


def _syntax_reason(raw: bytes, msg: str) -> str:
    """The reason for a record that is not JSON, naming the field where it breaks."""
    m = _BYTE.match(msg)
    if m is None:  # msgspec: "Input data was truncated"
        spot = _spot(raw, len(raw))
        if spot.open or spot.inside:
            return _truncated(spot)
        bad = _SURROGATE.search(raw)
        if bad is not None:  # msgspec reports an unpaired \\ud800 escape as truncation
            text = "invalid JSON: a \\u escape is half of a surrogate pair"
            return _at_spot(_spot(raw, bad.start()), text)
        return f"invalid JSON: {msg}"
    what, at = m.group("what"), int(m.group("at"))
    if what == "trailing characters":
        return f"invalid JSON: trailing characters after the record (byte {at})"
    # A literal like ``nan`` is reported inside it or just after it (msgspec reads ``n`` as
    # far as ``null`` would go): look at the word at the offset, then at the one before.
    start = _word_start(raw, at)
    if not _not_finite(raw, start):
        before = at
        while before > 0 and raw[before - 1 : before] in (b",", b"}", b"]", b" ", b"\t"):
            before -= 1
        start = _word_start(raw, before)
    if _not_finite(raw, start):
        return _at_spot(_spot(raw, start), "NaN/Infinity is not a number JSON allows")
    spot = _spot(raw, at)
    return _at_spot(spot, f"invalid JSON: {what} (byte {at})")


def _word_start(raw: bytes, at: int) -> int:
    while at > 0 and (raw[at - 1 : at].isalnum() or raw[at - 1 : at] in b"+-"):
        at -= 1
    return at


def _not_finite(raw: bytes, start: int) -> bool:
    """Whether a ``NaN``/``Infinity``-like word starts at ``start``."""
    return raw[start : start + 4].lstrip(b"+-")[:3].lower() in (b"nan", b"inf")


def _reason(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    m = _AT.match(text)
    msg, path = (m.group("msg"), (m.group("path") or "").lstrip(".")) if m else (text, "")
    if path == "kind":
        tag = _UNKNOWN_TAG.search(msg)
        if tag:
            return f"kind: unknown kind {tag.group('tag')!r}, expected one of {', '.join(KINDS)}"
    if msg.startswith("Object missing required field"):
        field = msg.split("`")[1] if "`" in msg else "?"
        where = f"{path}." if path else ""
        return f"{where}{field}: missing required field"
    if msg == "Number out of range":
        msg = "number out of range (or not finite)"
    msg = msg[0].lower() + msg[1:] if msg else msg
    return f"{path}: {msg}" if path else msg


def _explain(raw: bytes, exc: Exception) -> str:
    """Why ``raw`` could not be decoded (``exc``: what msgspec raised), field first."""
    if isinstance(exc, RecursionError):
        spot = _spot(raw, len(raw))
        return _at(spot.deep, f"invalid JSON: nested more than {_DEEP} levels deep")
    if isinstance(exc, msgspec.ValidationError):
        # msgspec checks values as it reads: the record may still be broken further on
        # (cut short, NaN, trailing garbage), which is the more useful thing to say.
        try:
            msgspec.json.decode(raw, type=msgspec.Raw)
        except (msgspec.DecodeError, RecursionError) as syntax:
            return _explain(raw, syntax)
        return _reason(exc)
    reason = _utf8_reason(raw)
    if reason:
        return reason
    if not raw.strip():
        return "invalid JSON: empty record"
    return _syntax_reason(raw, str(exc))


class EventDecoder:
    """Decode raw bytes into typed events, or dead letters that say why not.

    Parameters
    ----------
    region
        Coordinates outside this box are rejected.
    future_tolerance_ms, clock
        With a ``clock`` (epoch seconds, e.g. ``time.time``), a ``ts`` more than
        ``future_tolerance_ms`` ahead of it is rejected: the rule for live input. Without one
        (the default) the decoder judges no time: the source partition does, against its
        stream (``flows/sources/horizon.py``), so replays stay deterministic.

    A leading UTF-8 byte-order mark is accepted. The decoder keeps no state between records.
    """

    def __init__(
        self,
        region: Region | None = None,
        *,
        future_tolerance_ms: int = DAY_MS,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.region = region or Region()
        self.future_tolerance_ms = future_tolerance_ms
        self.clock = clock
        self._decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)

    def decode(self, raw: bytes, source: str = "") -> Event | DeadLetter:
        """Return the typed event, or a :class:`DeadLetter` naming the field and the problem."""
        try:
            event = self._decoder.decode(raw)
        except msgspec.DecodeError as exc:
            if raw.startswith(BOM):
                return self._without_bom(raw, source)
            return DeadLetter(raw[:MAX_RAW_BYTES], source, _explain(raw, exc))
        except (msgspec.ValidationError, RecursionError, UnicodeDecodeError) as exc:
            return DeadLetter(raw[:MAX_RAW_BYTES], source, _explain(raw, exc))
        # msgspec skips unknown keys and their values without checking them: a record with
        # invalid UTF-8 there would pass and silently lose data. ASCII (most records) is valid
        # UTF-8 by construction; anything else is checked in full.
        if not raw.isascii():
            bad_utf8 = _utf8_reason(raw)
            if bad_utf8:
                return DeadLetter(raw[:MAX_RAW_BYTES], source, bad_utf8)
        reason = self._check(event)
        if reason is not None:
            return DeadLetter(raw[:MAX_RAW_BYTES], source, reason)
        return event

    def _without_bom(self, raw: bytes, source: str) -> Event | DeadLetter:
        out = self.decode(raw[len(BOM) :], source)
        if type(out) is DeadLetter:  # the dead letter keeps the record as it came
            return DeadLetter(raw[:MAX_RAW_BYTES], source, out.reason)
        return out

    def decode_batch(
        self, raws: list[bytes], source: str = ""
    ) -> tuple[list[Event], list[DeadLetter]]:
        """Decode a batch; the two lists together hold one entry per input, in input order."""
        good: list[Event] = []
        dead: list[DeadLetter] = []
        for raw in raws:
            out = self.decode(raw, source)
            (dead if type(out) is DeadLetter else good).append(out)  # type: ignore[arg-type]
        return good, dead

    def _check(self, ev: Event) -> str | None:
        if self.clock is not None:
            now_ms = int(self.clock() * 1000)
            if ev.ts > now_ms + self.future_tolerance_ms:
                return ahead_of_clock(ev.ts, now_ms)
        cls = type(ev)
        if cls is Gps or cls is Hotline:
            lat, lon = ev.lat, ev.lon  # type: ignore[union-attr]
            if (lat is None) != (lon is None):
                return "lat/lon: one given without the other"
            if lat is not None and not self.region.contains(lat, lon):  # type: ignore[arg-type]
                return f"lat/lon: ({lat}, {lon}) outside the configured region {self._box()}"
            if cls is Hotline:
                size = len(ev.text.encode())  # type: ignore[union-attr]
                if size > MAX_TEXT_BYTES:
                    return f"text: {size} bytes, over the {MAX_TEXT_BYTES}-byte limit"
        elif cls is Order and ev.action == "suspend" and ev.until is not None:  # type: ignore[union-attr]
            if ev.until < ev.ts:  # type: ignore[union-attr]
                return f"until: {ev.until} is before ts {ev.ts}"  # type: ignore[union-attr]
        return None

    def _box(self) -> str:
        r = self.region
        return f"lat {r.lat_min}..{r.lat_max}, lon {r.lon_min}..{r.lon_max}"


def ahead_of_clock(ts: int, now_ms: int) -> str:
    """The dead-letter reason of a live record too far ahead of the wall clock.

    >>> ahead_of_clock(1_767_315_600_000, 1_767_225_600_000)
    'ts: 1767315600000 is 25.0 h ahead of the wall clock (1767225600000)'
    """
    return f"ts: {ts} is {(ts - now_ms) / 3_600_000:.1f} h ahead of the wall clock ({now_ms})"


def is_finite(x: float | None) -> bool:
    """True for a real, finite number (``None`` is not)."""
    return x is not None and math.isfinite(x)
