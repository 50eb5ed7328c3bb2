"""The alert engine: turns models' :class:`~citywatch.alerts.Signal` values into alerts.

Pure logic in event time (no clock, no I/O), so a replay gives the same alerts with the same
ids and versions. Per fingerprint (rule + subject) it keeps one small immutable
:class:`Track` and applies, in this order:

* **inhibition**: while a QC alert (``air.stuck``/``air.range``/``air.drift``) fires for a
  station, that station's pollution signals (``air.exceedance``/``air.spike``) are muted: a
  faulty analyser must not page the duty officer twice;
* **debounce** (``for``): an active signal opens a *pending* episode, which fires once active
  signals have persisted ``for_ms`` and numbered ``for_count``; a clear while pending drops it;
* **dedup**: a repeat of a firing alert updates ``count``/``last_ts``/score in place and is
  emitted as a new version at most every ``refresh_ms`` of event time, and only when it
  changes what a duty officer sees (below);
* **escalation** at once, **de-escalation** only after the lower level held ``deescalate_ms``;
* **resolve** on an explicit clear, or **auto-resolve** when the source has gone quiet
  (checked when event time advances, and before a late-coming signal);
* **reopen**: an active signal within the reopen window after a resolve fires the *same*
  alert again (same id, next version), so a condition that flickers stays one alert;
* **silences** with expiry: a matching alert is tracked but not emitted until the silence
  ends (an alert the console already shows still gets its resolve).

**Time follows the source.** A signal may say how often its source reports
(``Signal.interval_ms``; the track keeps the newest it saw). With an interval ``I`` known, a
firing alert auto-resolves after ``max(quiet_ms, missed_intervals * I)`` without an active
signal (default 2.5 intervals: two expected readings missed), so an hourly station's alert
holds across its hour-apart readings; without one, after ``quiet_ms`` (a fixed period).
A reading stands for the interval it reports on: the ``for`` period counts ``I`` per reading
and never asks for more readings than fit in it (an hourly source meets ``for_ms = 30 min`` with
its first reading, ``for_ms = 3 h`` with its third). An explicit clear resolves at once.

**A version is news.** A repeat at the same level is emitted (once ``refresh_ms`` passed since the
last version) when it is *material*: its score moved by ``score_band`` or more from the last
version's, or its evidence has other fields. A title or evidence value that moved less (the hour's
AQI in the title, say: the exceedance's score is AQI / 500) is not news by itself. Otherwise it
waits for the **heartbeat**, ``max(refresh_ms, heartbeat_intervals * I)`` after the last version (a
source without a known interval: ``refresh_ms``, as before), so an hourly station's alert that holds
at the same level gets a version every 6 hours (its ``last_ts`` and ``count``), not every hour. A
level change is emitted at once (escalation) or after ``deescalate_ms``; a resolve carries the
newest ``last_ts``/``count``/score. What was merged but not emitted is in
:attr:`AlertEngine.touched` (the newest alert of each such id, with the version last emitted),
for a sink to refresh its copy of that version without a new one (the console's snapshot shows
``last_ts`` of the hour; the alert stream keeps one entry per version).

**Lifecycle of one alert id**: ``firing`` (version 1, then a version per emitted change) ->
``resolved`` -> within ``reopen_ms`` (default: the same quiet horizon) after the resolve's end
(the clear's ``ts``, or ``last_ts`` + the horizon) an active signal reopens it: ``firing`` again
with the next version, ``first_ts`` and ``count`` continued, level and evidence from the new
signal (no new ``for``: the episode was confirmed before). After the window a new episode starts
(a new id). Resolved tracks are kept only for their window (:meth:`AlertEngine.advance` drops
them; :meth:`AlertEngine.next_due` includes those times) and are part of the snapshot, so a
restored engine reopens exactly what the uninterrupted one would.

The version counts *emitted* changes (1, 2, 3, ...; strictly increasing per id, a reopen
included), so sinks write idempotently by ``(id, version)``. ``emitted_ms`` is left 0: the flow
stamps the wall clock.

:class:`FloodGuard` groups more than ``limit`` new alerts of one area within ``window_ms``
into one ``incident.correlated`` signal; :class:`LatenessGate` is the event-time lateness rule
applied to input records.

>>> from citywatch.alerts import Level, Signal, Subject
>>> eng = AlertEngine()
>>> s = Subject("station", "S1")
>>> [a.state.value for a in eng.on_signal(Signal("air.spike", s, 60_000, level=Level.YELLOW))]
['firing']
>>> eng.on_signal(Signal("air.spike", s, 120_000, level=Level.YELLOW))   # a repeat: deduped
[]
>>> [(a.level.colour, a.version) for a in eng.on_signal(Signal("air.spike", s, 180_000,
...                                                             level=Level.RED))]
[('red', 2)]
>>> [(a.state.value, a.count, a.last_ts) for a in eng.advance(180_000 + 21 * 60_000)]
[('resolved', 3, 180000)]

An hourly station (``interval_ms``): ten hour-apart readings are one alert; it resolves 2.5 h
after the last one, and a return within the reopen window (here 2.5 h) reopens the same id.

>>> H = 3_600_000
>>> hourly = [Signal("air.exceedance", s, h * H, level=Level.ORANGE, interval_ms=H)
...           for h in range(10)]
>>> out = eng.on_signals(hourly)   # one id; a version at 0 h and a heartbeat at 6 h
>>> len({a.id for a in out}), [a.last_ts // H for a in out], eng.advance(11 * H)
(1, [0, 6], [])
>>> [(a.count, a.last_ts // H) for a in eng.touched.values()]  # merged, not emitted
[(10, 9)]
>>> [(a.state.value, a.version, a.last_ts // H) for a in eng.advance(9 * H + 5 * H // 2 + 1)]
[('resolved', 3, 9)]
>>> (back,) = eng.on_signal(Signal("air.exceedance", s, 13 * H, level=Level.RED, interval_ms=H))
>>> (back.id == out[0].id, back.state.value, back.version, back.count, back.first_ts)
(True, 'firing', 4, 11, 0)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any, Final

from citywatch.alerts import Alert, AlertState, Level, Signal, Subject, episode_id, fingerprint
from citywatch.tiers import Location

__all__ = [
    "DEFAULT_POLICIES",
    "QC_RULES",
    "AlertEngine",
    "EngineSnapshot",
    "FloodGuard",
    "LatenessGate",
    "RulePolicy",
    "Silence",
    "Track",
]

MINUTE_MS: Final = 60_000
#: :meth:`AlertEngine.next_due` not known (recomputed when asked).
_STALE: Final = -1

#: Rules that say "the sensor is faulty"; they inhibit that station's pollution alerts.
QC_RULES: Final = frozenset({"air.stuck", "air.range", "air.drift"})
POLLUTION_RULES: Final = frozenset({"air.exceedance", "air.spike"})


@dataclass(frozen=True, slots=True)
class RulePolicy:
    """How the engine treats one rule's signals (times in event-time milliseconds).

    With the source's interval ``I`` known (``Signal.interval_ms``), the quiet horizon is
    ``max(quiet_ms, missed_intervals * I)``, else ``quiet_ms``; see the module docstring.
    """

    #: Debounce: an episode fires once its active signals span ``for_ms`` (with ``I`` known,
    #: each reading counts for ``I``: the span is ``ts - first_ts + I``) ...
    for_ms: int = 0
    #: ... and number at least ``for_count`` (with ``I`` known and ``for_ms > 0``, at most the
    #: ``ceil(for_ms / I)`` readings the source can give in ``for_ms``).
    for_count: int = 1
    #: Auto-resolve after this long without an active signal (the least quiet horizon).
    quiet_ms: int = 30 * MINUTE_MS
    #: ... or after this many expected intervals of the source without one, if longer.
    missed_intervals: float = 2.5
    #: A resolved alert reopens (same id) on an active signal within this long after its end;
    #: None: the alert's quiet horizon.
    reopen_ms: int | None = None
    #: A repeat (same level) is emitted as a new version at most this often ...
    refresh_ms: int = 5 * MINUTE_MS
    #: ... when it is material (its score moved by ``score_band`` or more from the last
    #: version's, or other evidence fields) ...
    score_band: float = 0.1
    #: ... else after ``heartbeat_intervals`` of the source's interval (at least
    #: ``refresh_ms``; ``refresh_ms`` when the interval is unknown).
    heartbeat_intervals: float = 6.0
    #: A lower level must hold this long before the alert de-escalates.
    deescalate_ms: int = 10 * MINUTE_MS
    #: Firing alerts of these rules on the same subject mute this rule's signals.
    inhibited_by: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("for_ms", "quiet_ms", "refresh_ms", "deescalate_ms"):
            if getattr(self, name) < 0:
                msg = f"{name}: must be >= 0, got {getattr(self, name)!r}"
                raise ValueError(msg)
        if self.for_count < 1:
            msg = f"for_count: must be >= 1, got {self.for_count!r}"
            raise ValueError(msg)
        if not self.missed_intervals > 0 or math.isinf(self.missed_intervals):
            msg = f"missed_intervals: must be a number > 0, got {self.missed_intervals!r}"
            raise ValueError(msg)
        if self.reopen_ms is not None and self.reopen_ms < 0:
            msg = f"reopen_ms: must be >= 0 or None, got {self.reopen_ms!r}"
            raise ValueError(msg)
        for name in ("score_band", "heartbeat_intervals"):
            v = getattr(self, name)
            if not v >= 0 or math.isinf(v):
                msg = f"{name}: must be a number >= 0, got {v!r}"
                raise ValueError(msg)

    def horizon(self, interval_ms: int | None) -> int:
        """How long a firing alert stays without an active signal, for a source reporting
        every ``interval_ms`` (None: unknown).

        >>> p = RulePolicy(quiet_ms=20 * MINUTE_MS)
        >>> p.horizon(None) // MINUTE_MS, p.horizon(60_000) // MINUTE_MS, p.horizon(3_600_000)
        (20, 20, 9000000)
        """
        return _at_least(self.quiet_ms, self.missed_intervals, interval_ms)

    def heartbeat(self, interval_ms: int | None) -> int:
        """How long after the last version a repeat that changes nothing material is emitted,
        for a source reporting every ``interval_ms`` (None: unknown).

        >>> p = RulePolicy(refresh_ms=5 * MINUTE_MS)
        >>> p.heartbeat(None) // MINUTE_MS, p.heartbeat(30_000) // MINUTE_MS, p.heartbeat(3_600_000)
        (5, 5, 21600000)
        """
        return _at_least(self.refresh_ms, self.heartbeat_intervals, interval_ms)

    def reopen_window(self, interval_ms: int | None) -> int:
        """How long after its end a resolved alert reopens on an active signal."""
        return self.horizon(interval_ms) if self.reopen_ms is None else self.reopen_ms


#: Per-rule defaults. Models already debounce their own findings (m-of-n, persistence), so the
#: engine adds no ``for`` by default; quiet periods follow each stream's cadence.
DEFAULT_POLICIES: Final[Mapping[str, RulePolicy]] = {
    "air.exceedance": RulePolicy(quiet_ms=20 * MINUTE_MS, inhibited_by=QC_RULES),
    "air.spike": RulePolicy(quiet_ms=20 * MINUTE_MS, inhibited_by=QC_RULES),
    "air.stuck": RulePolicy(quiet_ms=60 * MINUTE_MS),
    "air.range": RulePolicy(quiet_ms=30 * MINUTE_MS),
    "air.drift": RulePolicy(quiet_ms=6 * 60 * MINUTE_MS),
    "air.episode": RulePolicy(quiet_ms=60 * MINUTE_MS),
    "vehicle.dwell": RulePolicy(quiet_ms=20 * MINUTE_MS),
    "vehicle.workshop": RulePolicy(quiet_ms=24 * 60 * MINUTE_MS, refresh_ms=60 * MINUTE_MS),
    "worksite.resumption": RulePolicy(quiet_ms=30 * MINUTE_MS),
    "hotline.duplicate": RulePolicy(quiet_ms=6 * 60 * MINUTE_MS, refresh_ms=0),
    "hotline.surge": RulePolicy(quiet_ms=2 * 60 * MINUTE_MS),
    "incident.correlated": RulePolicy(quiet_ms=30 * MINUTE_MS, refresh_ms=0),
    "water.event": RulePolicy(quiet_ms=30 * MINUTE_MS),
    "water.range": RulePolicy(quiet_ms=30 * MINUTE_MS),
    "water.stuck": RulePolicy(quiet_ms=2 * 60 * MINUTE_MS, refresh_ms=60 * MINUTE_MS),
}


@dataclass(frozen=True, slots=True)
class Silence:
    """Mute matching alerts until ``until_ms`` (event time). ``None`` matchers match anything."""

    id: str
    until_ms: int
    reason: str = ""
    author: str = ""
    rule: str | None = None
    subject_kind: str | None = None
    subject_id: str | None = None
    district: str | None = None

    def matches(self, alert: Alert) -> bool:
        return (
            (self.rule is None or self.rule == alert.rule)
            and (self.subject_kind is None or self.subject_kind == alert.subject.kind)
            and (self.subject_id is None or self.subject_id == alert.subject.id)
            and (self.district is None or self.district == alert.district)
        )

    @classmethod
    def from_dict(cls, sid: str, d: Mapping[str, Any]) -> Silence:
        """Build from the JSON stored in ``cw:silences`` (``until`` or ``until_ms``)."""
        until = d.get("until_ms", d.get("until"))
        if not isinstance(until, int) or isinstance(until, bool):
            msg = f"silence {sid}: until_ms must be an integer (epoch ms), got {until!r}"
            raise ValueError(msg)
        matcher = d.get("matcher") or d
        subject = matcher.get("subject") or {}

        def opt(v: Any) -> str | None:
            return None if v is None else str(v)

        return cls(
            id=sid,
            until_ms=until,
            reason=str(d.get("reason", "")),
            author=str(d.get("author", "")),
            rule=opt(matcher.get("rule")),
            subject_kind=opt(matcher.get("subject_kind", subject.get("kind"))),
            subject_id=opt(matcher.get("subject_id", subject.get("id"))),
            district=opt(matcher.get("district")),
        )


@dataclass(frozen=True, slots=True)
class Track:
    """The engine's immutable record of one fingerprint's current episode (or, among
    :attr:`AlertEngine.closed`, of its resolved episode while it may reopen)."""

    #: The alert as it stands (its ``version`` is the last emitted one, 0 before the first).
    alert: Alert
    is_pending: bool
    #: Number of active signals seen while pending (for ``for_count``).
    pending_count: int
    #: Event time of the newest active signal.
    last_active_ts: int
    #: Event time at which the last version was emitted (for ``refresh_ms``).
    emitted_ts: int
    #: A lower level seen since ``lower_since`` (for de-escalation), else None.
    lower_level: Level | None = None
    lower_since: int = 0
    #: The current version has changes not yet emitted (silenced, or within refresh_ms).
    is_dirty: bool = False
    #: Whether any version of this episode reached the sink, and at which level.
    was_emitted: bool = False
    emitted_level: Level | None = None
    #: A silence held back the current version: emit it when no silence matches any more.
    is_muted: bool = False
    #: The source's expected reporting interval, the newest the signals said (None: unknown).
    interval_ms: int | None = None
    #: Reopened after a resolve that was emitted, and no firing version emitted since (the
    #: sink's newest version is the resolve: a resolve now would tell it nothing).
    is_reopened: bool = False
    #: Resolved tracks only: an active signal up to this event time reopens the alert.
    reopen_until: int = 0
    #: The last version emitted (None before the first, and in snapshots taken before this
    #: field existed: the next repeat is then taken as material).
    emitted: Alert | None = None

    def __setstate__(self, state: Any) -> None:
        """Unpickle, also from a snapshot taken before the last fields existed (they take
        their defaults), so a resumed run survives an upgrade."""
        names = [f.name for f in fields(self)]
        if isinstance(state, dict):  # not written by us; tolerated
            values = dict(state)
        else:
            values = dict(zip(names, state, strict=False))
        for f in fields(self):
            if f.name in values:
                object.__setattr__(self, f.name, values[f.name])
            elif f.default is not MISSING:
                object.__setattr__(self, f.name, f.default)
            else:
                msg = f"Track: snapshot lacks {f.name!r}"
                raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """What bytewax stores for recovery: plain dicts of immutable values (a cheap copy).

    ``closed``: the resolved tracks still within their reopen window (missing in snapshots
    taken before they existed: read with ``getattr``).
    """

    tracks: dict[str, Track]
    silences: dict[str, Silence]
    watermark: int
    stats: dict[str, int]
    closed: dict[str, Track] = field(default_factory=dict)


class AlertEngine:
    """Signals in, alert versions out; see the module docstring for the rules it applies.

    ``locate(lat, lon) -> Location`` fills ``district``, ``town`` and ``grid`` where a new
    alert's signal has coordinates but not those (the flow passes the registry's
    :class:`~citywatch.tiers.Locator`). ``stats`` counts signals, inhibited,
    silenced and stale ones for the metrics.
    """

    def __init__(
        self,
        policies: Mapping[str, RulePolicy] | None = None,
        *,
        default: RulePolicy | None = None,
        locate: Callable[[float, float], Location] | None = None,
        snapshot: EngineSnapshot | None = None,
    ) -> None:
        self.policies = dict(DEFAULT_POLICIES if policies is None else policies)
        self.default = default or RulePolicy()
        self.locate = locate
        self.tracks: dict[str, Track] = {}
        #: Resolved tracks that may still reopen (their ``reopen_until`` not passed).
        self.closed: dict[str, Track] = {}
        self.silences: dict[str, Silence] = {}
        self.watermark = 0
        self.stats: dict[str, int] = {}
        #: Per fingerprint, the newest alert merged but not emitted (the version last emitted,
        #: newer ``last_ts``/``count``/score/evidence), since the caller last cleared it; an
        #: emitted version or a resolve of the id removes it. Not in the snapshot: a resumed
        #: engine's next repeats fill it again.
        self.touched: dict[str, Alert] = {}
        #: :meth:`next_due`, cached until the next signal, advance or change of silences.
        self._due: int | None = _STALE
        if snapshot is not None:
            self.tracks = dict(snapshot.tracks)
            self.closed = dict(getattr(snapshot, "closed", None) or {})
            self.silences = dict(snapshot.silences)
            self.watermark = snapshot.watermark
            self.stats = dict(snapshot.stats)

    def policy(self, rule: str) -> RulePolicy:
        return self.policies.get(rule, self.default)

    def snapshot(self) -> EngineSnapshot:
        """An immutable copy: tracks and silences are frozen, so shallow dict copies suffice."""
        return EngineSnapshot(
            dict(self.tracks),
            dict(self.silences),
            self.watermark,
            dict(self.stats),
            dict(self.closed),
        )

    # -- signals -----------------------------------------------------------------------------

    def on_signals(self, signals: Iterable[Signal]) -> list[Alert]:
        out: list[Alert] = []
        for sig in signals:
            out.extend(self.on_signal(sig))
        return out

    def on_signal(self, sig: Signal) -> list[Alert]:
        """Apply one signal; return the alert versions to emit (usually zero or one)."""
        self._due = _STALE
        self._count("signals")
        pol = self.policy(sig.rule)
        fp = fingerprint(sig.rule, sig.subject)
        out: list[Alert] = []
        track = self.tracks.get(fp)
        if track is not None and sig.active and sig.ts >= self.resolves_at(track):
            # The old episode went quiet before this signal: close it first, in event time.
            if track.is_pending:
                del self.tracks[fp]
            else:
                out.extend(self._resolve(fp, track, track.last_active_ts, auto=True))
            track = None
        if sig.active and pol.inhibited_by and self._is_inhibited(sig.subject, pol.inhibited_by):
            self._count("inhibited")
            return out
        if not sig.active:
            if track is not None:
                if track.is_pending:
                    del self.tracks[fp]
                else:
                    out.extend(self._resolve(fp, track, max(sig.ts, track.alert.last_ts)))
            return out
        if track is None:
            closed = self.closed.pop(fp, None)
            if closed is not None and sig.ts <= closed.reopen_until:
                self._count("reopened")
                track = self._reopen(closed, sig)
            else:
                track = self._open(fp, sig)
        else:
            track = self._repeat(track, sig, pol)
        if track.is_pending and self._debounced(track, sig.ts, pol):
            track = replace(track, is_pending=False, is_dirty=True)
        self.tracks[fp] = track
        if not track.is_pending and track.is_dirty:
            since = sig.ts - track.emitted_ts
            due = (
                not track.was_emitted
                or track.alert.level != track.emitted_level
                or (
                    since >= pol.refresh_ms
                    and (since >= pol.heartbeat(track.interval_ms) or _material(track, pol))
                )
            )
            if due:
                out.extend(self._emit(fp, track, sig.ts))
            elif track.was_emitted and not track.is_muted and not track.is_reopened:
                self.touched[fp] = track.alert
        return out

    def advance(self, watermark_ms: int) -> list[Alert]:
        """Event time reached ``watermark_ms``: auto-resolve quiet alerts, end silences."""
        if watermark_ms <= self.watermark:
            return []
        self.watermark = watermark_ms
        self._due = _STALE
        out: list[Alert] = []
        expired = [s for s in self.silences.values() if s.until_ms <= watermark_ms]
        for s in expired:
            del self.silences[s.id]
        for fp, track in list(self.tracks.items()):
            if watermark_ms >= self.resolves_at(track):
                if track.is_pending:
                    del self.tracks[fp]
                else:
                    out.extend(self._resolve(fp, track, track.last_active_ts, auto=True))
            elif expired and track.is_muted:
                out.extend(self._emit(fp, track, track.last_active_ts))
        for fp, closed in list(self.closed.items()):
            if watermark_ms > closed.reopen_until:
                del self.closed[fp]  # its reopen window is over: a return is a new episode
        return out

    def horizon(self, track: Track) -> int:
        """How long ``track`` stays without an active signal (:meth:`RulePolicy.horizon`)."""
        return self.policy(track.alert.rule).horizon(track.interval_ms)

    def resolves_at(self, track: Track) -> int:
        """The watermark at which :meth:`advance` auto-resolves (or drops, if pending) ``track``
        unless an active signal comes first (an active signal at or after it finds the track
        resolved too)."""
        return track.last_active_ts + self.horizon(track) + 1

    def next_due(self) -> int | None:
        """The least watermark at which :meth:`advance` would do more than move the watermark:
        auto-resolve or drop a track, drop a resolved track whose reopen window ended, end a
        silence (None: nothing, until the next signal).

        A caller may skip every watermark before it (the flow's clock does: ``flows.city.Gate``).
        Whatever changes what :meth:`advance` does must change this too; a test checks the two
        against each other on random signals.
        """
        due = self._due
        if due == _STALE:
            dues = [self.resolves_at(t) for t in self.tracks.values()]
            dues.extend(t.reopen_until + 1 for t in self.closed.values())
            dues.extend(s.until_ms for s in self.silences.values())
            due = self._due = min(dues) if dues else None
        return due

    # -- silences ----------------------------------------------------------------------------

    def set_silences(self, silences: Iterable[Silence]) -> list[Alert]:
        """Replace the active silences (as read from ``cw:silences``); emit what they unmute.

        Only versions a silence held back are emitted: a track with changes merely waiting for
        its refresh interval stays as it is (the silences are read when a process starts, so
        emitting those would make a resumed run differ from an uninterrupted one).
        """
        self.silences = {s.id: s for s in silences if s.until_ms > self.watermark}
        self._due = _STALE
        out: list[Alert] = []
        for fp, track in list(self.tracks.items()):
            if track.is_muted:
                out.extend(self._emit(fp, track, track.last_active_ts))
        return out

    def is_silenced(self, alert: Alert) -> bool:
        return any(s.matches(alert) for s in self.silences.values())

    # -- internals ---------------------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + n

    def _is_inhibited(self, subject: Subject, by: frozenset[str]) -> bool:
        for rule in by:
            t = self.tracks.get(fingerprint(rule, subject))
            if t is not None and not t.is_pending:
                return True
        return False

    def _open(self, fp: str, sig: Signal) -> Track:
        district, town, grid = sig.district, None, sig.grid
        if self.locate is not None and sig.lat is not None and sig.lon is not None:
            where = self.locate(sig.lat, sig.lon)
            district = district or where.district
            town = where.town if where.district == district else None
            grid = grid or where.grid
        alert = Alert(
            id=episode_id(fp, sig.ts),
            fingerprint=fp,
            rule=sig.rule,
            level=sig.level,
            state=AlertState.FIRING,
            subject=sig.subject,
            first_ts=sig.ts,
            last_ts=sig.ts,
            lat=sig.lat,
            lon=sig.lon,
            district=district,
            town=town,
            grid=grid,
            score=_clamp(sig.score),
            title=sig.title,
            evidence=dict(sig.evidence),
            model=sig.model,
            count=1,
            version=1,  # the version the first emission carries
        )
        return Track(
            alert=alert,
            is_pending=True,
            pending_count=1,
            last_active_ts=sig.ts,
            emitted_ts=sig.ts,
            is_dirty=True,
            interval_ms=_interval(sig, None),
        )

    def _reopen(self, closed: Track, sig: Signal) -> Track:
        """``closed`` (resolved within its reopen window) fires again with ``sig``: the same id,
        ``first_ts`` and count continued, level and evidence of the return. No new ``for``."""
        return Track(
            alert=_merged(closed.alert, sig, sig.level, state=AlertState.FIRING),
            is_pending=False,
            pending_count=closed.pending_count,
            last_active_ts=max(closed.last_active_ts, sig.ts),
            emitted_ts=closed.emitted_ts,
            is_dirty=True,
            was_emitted=closed.was_emitted,
            emitted_level=None,  # due at once: the return is news
            interval_ms=_interval(sig, closed.interval_ms),
            is_reopened=closed.was_emitted,
        )

    def _repeat(self, track: Track, sig: Signal, pol: RulePolicy) -> Track:
        a = track.alert
        level = a.level
        lower_level, lower_since = track.lower_level, track.lower_since
        if track.is_pending or sig.level > level:
            level, lower_level = max(sig.level, level), None
        elif sig.level < level:
            if lower_level is None:
                lower_level, lower_since = sig.level, sig.ts
            elif sig.level > lower_level:
                lower_level = sig.level  # the highest lower level seen since lower_since
            if sig.ts - lower_since >= pol.deescalate_ms:
                level, lower_level = lower_level, None
        else:
            lower_level = None
        return replace(
            track,
            alert=_merged(a, sig, level),
            pending_count=track.pending_count + 1 if track.is_pending else track.pending_count,
            last_active_ts=max(track.last_active_ts, sig.ts),
            lower_level=lower_level,
            lower_since=lower_since,
            is_dirty=True,
            interval_ms=_interval(sig, track.interval_ms),
        )

    def _debounced(self, track: Track, ts: int, pol: RulePolicy) -> bool:
        """Whether a pending episode has held its ``for``: with the source's interval ``I``
        known, each reading counts for ``I`` and no more readings are asked for than the
        source gives in ``for_ms`` (a sparse source is never held longer than the ``for``)."""
        span, need = ts - track.alert.first_ts, pol.for_count
        every = track.interval_ms
        if every and pol.for_ms > 0:
            span += every
            need = min(need, max(1, -(-pol.for_ms // every)))
        return track.pending_count >= need and span >= pol.for_ms

    def _emit(self, fp: str, track: Track, ts: int) -> list[Alert]:
        alert = track.alert
        if self.is_silenced(alert):
            self._count("silenced")
            self.tracks[fp] = replace(track, is_dirty=True, is_muted=True)
            return []
        out = alert if not track.was_emitted else alert.evolve(version=alert.version + 1)
        self.tracks[fp] = replace(
            track,
            alert=out,
            emitted_ts=ts,
            is_dirty=False,
            was_emitted=True,
            emitted_level=out.level,
            is_muted=False,
            is_reopened=False,
            emitted=out,
        )
        self.touched.pop(fp, None)
        return [out]

    def _resolve(self, fp: str, track: Track, last_ts: int, *, auto: bool = False) -> list[Alert]:
        """Resolve the firing ``track`` (pending ones are dropped by the callers); keep it in
        :attr:`closed` for its reopen window, which starts at the clear's ``last_ts``, or for
        an auto-resolve (``auto``) where the quiet horizon ended."""
        del self.tracks[fp]
        self.touched.pop(fp, None)
        a = track.alert
        end = last_ts + self.horizon(track) if auto else last_ts
        pol = self.policy(a.rule)
        emit = track.was_emitted and not track.is_reopened
        resolved = a.evolve(
            state=AlertState.RESOLVED,
            last_ts=max(a.last_ts, last_ts),
            version=a.version + 1 if emit else a.version,
        )
        self.closed[fp] = replace(
            track,
            alert=resolved,
            is_dirty=False,
            is_muted=False,
            is_reopened=False,
            lower_level=None,
            reopen_until=end + pol.reopen_window(track.interval_ms),
        )
        if not emit:
            return []
        self._count("resolved")
        return [resolved]


def _merged(a: Alert, sig: Signal, level: Level, **changes: Any) -> Alert:
    """``a`` with one more active signal ``sig`` merged in, at ``level``."""
    return a.evolve(
        level=level,
        last_ts=max(a.last_ts, sig.ts),
        count=a.count + 1,
        score=_clamp(sig.score),
        title=sig.title or a.title,
        evidence=dict(sig.evidence),
        model=sig.model or a.model,
        lat=sig.lat if sig.lat is not None else a.lat,
        lon=sig.lon if sig.lon is not None else a.lon,
        grid=sig.grid or a.grid,
        **changes,
    )


def _at_least(least_ms: int, intervals: float, interval_ms: int | None) -> int:
    """``intervals`` of a source reporting every ``interval_ms``, at least ``least_ms``
    (``least_ms`` when the interval is unknown)."""
    if interval_ms:
        return max(least_ms, math.ceil(intervals * interval_ms))
    return least_ms


def _material(track: Track, pol: RulePolicy) -> bool:
    """Whether ``track``'s alert differs from its last version in what a duty officer acts
    on: the score by ``score_band`` or more, or the evidence's fields (its shape)."""
    last, now = track.emitted, track.alert
    if last is None:
        return True
    return (
        abs(now.score - last.score) >= pol.score_band or now.evidence.keys() != last.evidence.keys()
    )


def _interval(sig: Signal, before: int | None) -> int | None:
    """The signal's source interval when it states a usable one, else what was known."""
    every = sig.interval_ms
    if isinstance(every, int) and not isinstance(every, bool) and every > 0:
        return every
    return before


def _clamp(score: float) -> float:
    if score != score:  # NaN
        return 0.0
    return min(1.0, max(0.0, float(score)))


@dataclass(slots=True)
class FloodGuard:
    """Groups a burst of new alerts in one area into one incident.

    ``observe(alert)`` takes every new episode (version 1, firing); when more than ``limit``
    arrived in one area within ``window_ms`` of event time it returns an
    ``incident.correlated`` signal on subject ``("incident", "flood:<area>:<start>")`` whose
    evidence lists the member alert ids; later new alerts of that area extend it. The engine
    turns the signal into an alert (and resolves it once the burst is quiet).
    """

    limit: int = 10
    window_ms: int = 10 * MINUTE_MS
    max_members: int = 50
    recent: dict[str, deque[tuple[int, str, str]]] = field(default_factory=dict)
    open_since: dict[str, int] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    #: Alerts in the current burst of each area (``members`` keeps only the first ones).
    sizes: dict[str, int] = field(default_factory=dict)
    last_new: dict[str, int] = field(default_factory=dict)

    def observe(self, alert: Alert) -> list[Signal]:
        if alert.version != 1 or not alert.is_firing or alert.rule == "incident.correlated":
            return []
        area = alert.district or ""
        if not area:
            return []
        ts = alert.first_ts
        q = self.recent.setdefault(area, deque())
        q.append((ts, alert.id, alert.rule))
        while q and q[0][0] < ts - self.window_ms:
            q.popleft()
        previous = self.last_new.get(area)
        self.last_new[area] = ts
        start = self.open_since.get(area)
        if start is not None and previous is not None and ts - previous > self.window_ms:
            start = None  # the previous burst went quiet: a new one may start below
            del self.open_since[area]
        if start is None:
            if len(q) <= self.limit:
                return []
            start = q[0][0]
            self.open_since[area] = start
            self.members[area] = [i for _, i, _ in q][: self.max_members]
            self.sizes[area] = len(q)
        else:
            self.sizes[area] += 1
            if len(self.members[area]) < self.max_members:
                self.members[area].append(alert.id)
        members, size = self.members[area], self.sizes[area]
        rules = sorted({r for _, _, r in q})
        return [
            Signal(
                rule="incident.correlated",
                subject=Subject("incident", f"flood:{area}:{start:x}"),
                ts=alert.first_ts,
                level=Level.ORANGE if size < 3 * self.limit else Level.RED,
                score=min(1.0, size / (3 * self.limit)),
                title=f"{area}告警激增：{size}条/{self.window_ms // MINUTE_MS}分钟",
                evidence={
                    "reason": "flood",
                    "area": area,
                    "alerts": size,
                    "members": list(members),
                    "rules": rules,
                },
                model="engine.flood@1",
                lat=alert.lat,
                lon=alert.lon,
                district=area,
            )
        ]


@dataclass(slots=True)
class LatenessGate:
    """Event-time lateness for input records: how far behind its partition a record may be.

    ``high_ts`` is the newest ``ts`` admitted so far (per source partition). ``admit`` returns
    None for a record to process, or the dead-letter reason.

    A record is late when it is more than ``lateness_ms`` behind ``high_ts``, unless its entity
    declares a reporting interval (``intervals``: ``(kind, entity) -> ms``, from the registry's
    ``Station.interval_s``). Such a record stands for the period ``[ts, ts + interval)``: it
    exists only once the period has ended, and a publishing platform releases it within the
    next period (the national network's hourly values come 15-60 min after the hour; HJ
    633-2012 allows the real-time report up to 1 h). Its allowance is therefore
    ``lateness_ms + 2 * interval``: an hourly average stamped 10:00 is on time until 12:10
    of the partition's event time (default lateness), a minute reading 2 min longer than the
    lateness, and a lone record three hours behind is still late.

    >>> g = LatenessGate(60_000)
    >>> g.admit(1_000_000), g.admit(950_000), g.admit(900_000)
    (None, None, 'late: ts 900000 is 100.0 s behind the newest seen (1000000), lateness 60.0 s')
    >>> g = LatenessGate(600_000, intervals={("air", "N1"): 3_600_000})
    >>> g.admit(20_000_000), g.admit(20_000_000 - 4_500_000, ("air", "N1"))
    (None, None)
    >>> g.admit(20_000_000 - 10_800_000, ("air", "N1"))  # doctest: +NORMALIZE_WHITESPACE
    'late: ts 9200000 is 10800.0 s behind the newest seen (20000000), lateness 600.0 s
     + twice its reporting interval 3600 s'
    """

    lateness_ms: int
    high_ts: int = 0
    #: ``(kind, entity) -> declared reporting interval (ms)``: read only for records that
    #: are behind by more than the lateness (never on the hot path).
    intervals: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def admit(self, ts: int, entity: tuple[str, str] | None = None) -> str | None:
        """None to process the record at ``ts`` of ``entity`` (``(kind, id)``), else why not."""
        if ts > self.high_ts:
            self.high_ts = ts
            return None
        behind = self.high_ts - ts
        if behind <= self.lateness_ms:
            return None
        interval = self.intervals.get(entity, 0) if entity is not None else 0
        if behind <= self.lateness_ms + 2 * interval:
            return None
        extra = f" + twice its reporting interval {interval / 1000:.0f} s" if interval else ""
        return (
            f"late: ts {ts} is {behind / 1000:.1f} s behind the newest seen "
            f"({self.high_ts}), lateness {self.lateness_ms / 1000:.1f} s{extra}"
        )
