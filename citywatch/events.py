"""Input events: one typed, frozen msgspec Struct per kind, and the decoder that checks them.

Every record is one JSON object with ``kind`` and ``ts`` (event time, epoch milliseconds UTC).
Missing measurements are ``null``. See ``docs/protocol.md`` for the table of kinds and fields.

The decoder never raises on bad input: it returns a :class:`DeadLetter` whose ``reason`` names
the field and the problem, so ``valid + dead-lettered == input`` always holds.

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
from dataclasses import dataclass
from typing import Annotated, ClassVar, Final, Literal

import msgspec

__all__ = [
    "KINDS",
    "MAX_RAW_BYTES",
    "MAX_TEXT_BYTES",
    "TS_MIN_MS",
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
    "encode",
]

#: 2000-01-01T00:00:00Z: anything earlier is a unit error (seconds instead of ms) or garbage.
TS_MIN_MS: Final = 946_684_800_000
#: 2100-01-01T00:00:00Z: a static ceiling, before the "ahead of the newest seen" check applies.
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
    """A 12345 citizen-hotline ticket; ``caller`` is hashed upstream."""

    kind: ClassVar[str] = "hotline"
    KEY_FIELD: ClassVar[str] = "ticket"
    ticket: Id
    text: Text
    category: Short = ""
    lat: Lat | None = None
    lon: Lon | None = None
    grid: Short | None = None
    caller: Short | None = None


class Order(_Base, frozen=True, tag="order"):
    """A suspension order issued (``suspend``) or lifted (``lift``) for a work site."""

    kind: ClassVar[str] = "order"
    KEY_FIELD: ClassVar[str] = "site"
    site: Id
    action: Literal["suspend", "lift"]
    until: Ts | None = None
    reason: Short | None = None


Event = Air | Gps | Video | Power | Hotline | Order
KINDS: Final[tuple[str, ...]] = ("air", "gps", "video", "power", "hotline", "order")


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


def encode(event: Event) -> bytes:
    """Encode an event as one JSON line body (no newline); ``decode(encode(e)) == e``."""
    return _ENCODER.encode(event)


def _utf8_reason(raw: bytes) -> str:
    """The dead-letter reason for invalid UTF-8 (offset within the record), or ``""``."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8: invalid byte at offset {exc.start}"
    return ""


def _reason(exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
    text = str(exc)
    if isinstance(exc, msgspec.ValidationError):
        m = _AT.match(text)
        msg, path = (m.group("msg"), (m.group("path") or "").lstrip(".")) if m else (text, "")
        if path == "kind":
            tag = _UNKNOWN_TAG.search(msg)
            if tag:
                return (
                    f"kind: unknown kind {tag.group('tag')!r}, expected one of {', '.join(KINDS)}"
                )
        if msg.startswith("Object missing required field"):
            field = msg.split("`")[1] if "`" in msg else "?"
            where = f"{path}." if path else ""
            return f"{where}{field}: missing required field"
        if msg == "Number out of range":
            msg = "number out of range (or not finite)"
        msg = msg[0].lower() + msg[1:] if msg else msg
        return f"{path}: {msg}" if path else msg
    return f"invalid JSON: {text}"


class EventDecoder:
    """Decode raw bytes into typed events, or dead letters that say why not.

    Parameters
    ----------
    region
        Coordinates outside this box are rejected.
    future_tolerance_ms
        A ``ts`` more than this far ahead of the newest accepted ``ts`` is rejected (24 h).
    anchor_ms
        An optional initial "newest seen" (e.g. the wall clock at start); without it the first
        accepted record sets it.

    The decoder keeps one number of state (the newest accepted ``ts``); give each worker its own.
    """

    def __init__(
        self,
        region: Region | None = None,
        *,
        future_tolerance_ms: int = DAY_MS,
        anchor_ms: int | None = None,
    ) -> None:
        self.region = region or Region()
        self.future_tolerance_ms = future_tolerance_ms
        self.newest_ts = anchor_ms if anchor_ms is not None else 0
        self._decoder: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)

    def decode(self, raw: bytes, source: str = "") -> Event | DeadLetter:
        """Return the typed event, or a :class:`DeadLetter` naming the field and the problem."""
        try:
            event = self._decoder.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return DeadLetter(raw[:MAX_RAW_BYTES], source, self._explain(raw, exc))
        except UnicodeDecodeError:
            return DeadLetter(raw[:MAX_RAW_BYTES], source, _utf8_reason(raw))
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
        if event.ts > self.newest_ts:
            self.newest_ts = event.ts
        return event

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

    def _explain(self, raw: bytes, exc: msgspec.ValidationError | msgspec.DecodeError) -> str:
        if isinstance(exc, msgspec.DecodeError):
            reason = _utf8_reason(raw)
            if reason:
                return reason
            if not raw.strip():
                return "invalid JSON: empty record"
        return _reason(exc)

    def _check(self, ev: Event) -> str | None:
        if self.newest_ts and ev.ts > self.newest_ts + self.future_tolerance_ms:
            ahead_h = (ev.ts - self.newest_ts) / 3_600_000
            return f"ts: {ev.ts} is {ahead_h:.1f} h ahead of the newest seen ({self.newest_ts})"
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


def is_finite(x: float | None) -> bool:
    """True for a real, finite number (``None`` is not)."""
    return x is not None and math.isfinite(x)
