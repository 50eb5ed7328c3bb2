"""Alerts, and the signals models emit that become alerts.

Models do not build :class:`Alert` objects: they emit :class:`Signal` values ("this condition
holds / no longer holds for this subject at this event time, at this level, with this evidence").
The alert engine turns signals into alerts: fingerprint, debounce, dedup, escalation, resolve.

An :class:`Alert` is one ongoing condition of one subject (an *episode*). Its ``id`` is stable
for the episode, ``fingerprint`` is stable for the rule + subject across episodes, and
``version`` increments on every change, so sinks can write idempotently by ``(id, version)``.

>>> fp = fingerprint("air.spike", Subject("station", "S1"))
>>> a = Alert(id=episode_id(fp, 1767225600000), fingerprint=fp, rule="air.spike",
...           level=Level.ORANGE, state=AlertState.FIRING, subject=Subject("station", "S1"),
...           first_ts=1767225600000, last_ts=1767225600000)
>>> Alert.from_json(a.to_json()) == a
True
>>> Level.RED > Level.ORANGE > Level.YELLOW > Level.BLUE
True
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

import orjson

from citywatch.errors import SchemaError

__all__ = [
    "RULES",
    "Alert",
    "AlertState",
    "Level",
    "Observation",
    "Signal",
    "Subject",
    "episode_id",
    "fingerprint",
]

#: The rules of docs/contracts.md; models may add their own (the engine accepts any dotted name).
RULES: Final[tuple[str, ...]] = (
    "air.exceedance",
    "air.spike",
    "air.stuck",
    "air.range",
    "air.drift",
    "air.episode",
    "vehicle.dwell",
    "vehicle.workshop",
    "worksite.resumption",
    "hotline.duplicate",
    "hotline.surge",
    "incident.correlated",
    "water.event",
    "water.range",
    "water.stuck",
    "hotline.unplaced",
)


class Level(enum.IntEnum):
    """China's four warning colours, ordered: blue < yellow < orange < red."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def colour(self) -> str:
        return self.name.lower()

    @property
    def label_zh(self) -> str:
        return _LEVEL_ZH[self]

    @classmethod
    def parse(cls, value: int | str) -> Level:
        """Accept 1-4, ``"red"`` or ``"RED"``."""
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        elif isinstance(value, str):
            try:
                return cls[value.upper()]
            except KeyError:
                pass
        msg = f"level: {value!r} is not one of blue, yellow, orange, red (1-4)"
        raise SchemaError(msg)


_LEVEL_ZH: Final = {
    Level.BLUE: "蓝色",
    Level.YELLOW: "黄色",
    Level.ORANGE: "橙色",
    Level.RED: "红色",
}


class AlertState(enum.StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert is about: ``kind`` (station, vehicle, site, grid, ...) and its ``id``."""

    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


def fingerprint(rule: str, subject: Subject) -> str:
    """Stable hash of rule + subject (labels, not values, as in Alertmanager): 16 hex chars."""
    h = hashlib.blake2b(f"{rule}\x1f{subject.kind}\x1f{subject.id}".encode(), digest_size=8)
    return h.hexdigest()


def episode_id(fp: str, first_ts: int) -> str:
    """The id of one episode of a fingerprint: deterministic, so a replay yields the same ids."""
    return f"{fp}-{first_ts:x}"


@dataclass(frozen=True, slots=True)
class Observation:
    """A model's measurement of one subject for one period, not a finding: the hourly AQI of
    a station, say. It bypasses the alert engine: the sink keeps the newest per subject
    (``obs:{name}`` hash, for maps) and appends every one to a stream (``obs:{name}:log``,
    for reports). ``values`` holds builtin scalars only; ``ts`` is the period's event time.

    >>> o = Observation("air.hourly", Subject("station", "S1"), 3_600_000, {"aqi": 87})
    >>> Observation.from_dict(o.to_dict()) == o
    True
    """

    name: str
    subject: Subject
    ts: int
    values: Mapping[str, Any] = field(default_factory=dict)
    lat: float | None = None
    lon: float | None = None
    district: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject": {"kind": self.subject.kind, "id": self.subject.id},
            "ts": self.ts,
            "values": dict(self.values),
            "lat": self.lat,
            "lon": self.lon,
            "district": self.district,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Observation:
        try:
            subj = d["subject"]
            return cls(
                name=str(d["name"]),
                subject=Subject(str(subj["kind"]), str(subj["id"])),
                ts=int(d["ts"]),
                values=dict(d.get("values") or {}),
                lat=d.get("lat"),
                lon=d.get("lon"),
                district=d.get("district"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"observation: malformed ({exc!r})"
            raise SchemaError(msg) from exc


@dataclass(frozen=True, slots=True)
class Signal:
    """A model's finding for one subject at one event time; the alert engine's input.

    ``active`` says whether the condition holds now. An inactive signal is an explicit clear
    (the truck left, the order was lifted); the engine also resolves alerts that go quiet.
    ``score`` is in [0, 1], higher = more anomalous. ``evidence`` holds builtin scalars only.
    ``interval_ms`` is the source's expected reporting interval (an hourly station: 3,600,000;
    None: unknown); the engine then waits for missed intervals, not a fixed quiet period,
    before it auto-resolves (see :class:`models.alert_engine.RulePolicy`).
    """

    rule: str
    subject: Subject
    ts: int
    active: bool = True
    level: Level = Level.BLUE
    score: float = 0.0
    title: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""
    lat: float | None = None
    lon: float | None = None
    district: str | None = None
    grid: str | None = None
    interval_ms: int | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.subject)


@dataclass(frozen=True, slots=True)
class Alert:
    """One episode of one rule for one subject, as written to ``cw:alerts`` (field ``a``).

    Times: ``first_ts``/``last_ts`` are event time (epoch ms); ``emitted_ms`` is the wall clock
    when the engine produced this version (for latency), set by the flow, not by models.
    """

    id: str
    fingerprint: str
    rule: str
    level: Level
    state: AlertState
    subject: Subject
    first_ts: int
    last_ts: int
    lat: float | None = None
    lon: float | None = None
    district: str | None = None
    grid: str | None = None
    emitted_ms: int = 0
    #: The town (street) the alert is in: its command centre's area (citywatch.tiers).
    town: str | None = None
    score: float = 0.0
    title: str = ""
    evidence: Mapping[str, Any] = field(default_factory=dict)
    model: str = ""
    count: int = 1
    version: int = 1

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0) or math.isnan(self.score):
            msg = f"score: {self.score!r} is outside [0, 1]"
            raise SchemaError(msg)
        if self.version < 1 or self.count < 1:
            msg = f"version/count: must be >= 1, got {self.version}/{self.count}"
            raise SchemaError(msg)

    @property
    def is_firing(self) -> bool:
        return self.state is AlertState.FIRING

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "level": self.level.colour,
            "state": self.state.value,
            "subject": {"kind": self.subject.kind, "id": self.subject.id},
            "lat": self.lat,
            "lon": self.lon,
            "district": self.district,
            "grid": self.grid,
            "town": self.town,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "emitted_ms": self.emitted_ms,
            "score": self.score,
            "title": self.title,
            "evidence": dict(self.evidence),
            "model": self.model,
            "count": self.count,
            "version": self.version,
        }

    def to_json(self) -> bytes:
        """orjson bytes; levels are written as colour names (``"red"``).

        Evidence must hold builtin JSON values (ints within 64 bits); NaN is written as null.
        """
        try:
            return orjson.dumps(self.to_dict())
        except orjson.JSONEncodeError as exc:
            msg = f"alert {self.id}: evidence is not JSON-serialisable ({exc})"
            raise SchemaError(msg) from exc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alert:
        try:
            subj = d["subject"]
            return cls(
                id=str(d["id"]),
                fingerprint=str(d["fingerprint"]),
                rule=str(d["rule"]),
                level=Level.parse(d["level"]),
                state=AlertState(d["state"]),
                subject=Subject(str(subj["kind"]), str(subj["id"])),
                first_ts=int(d["first_ts"]),
                last_ts=int(d["last_ts"]),
                lat=d.get("lat"),
                lon=d.get("lon"),
                district=d.get("district"),
                grid=d.get("grid"),
                town=d.get("town"),
                emitted_ms=int(d.get("emitted_ms", 0)),
                score=float(d.get("score", 0.0)),
                title=str(d.get("title", "")),
                evidence=dict(d.get("evidence") or {}),
                model=str(d.get("model", "")),
                count=int(d.get("count", 1)),
                version=int(d.get("version", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"alert: malformed ({exc!r})"
            raise SchemaError(msg) from exc

    @classmethod
    def from_json(cls, data: bytes | str) -> Alert:
        try:
            d = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            msg = f"alert: invalid JSON ({exc})"
            raise SchemaError(msg) from exc
        if not isinstance(d, dict):
            msg = "alert: expected a JSON object"
            raise SchemaError(msg)
        return cls.from_dict(d)

    def evolve(self, **changes: Any) -> Alert:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return replace(self, **changes)
