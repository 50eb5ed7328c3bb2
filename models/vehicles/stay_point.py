"""Streaming stay-point detection for one vehicle: O(1) state, about 1 µs per fix.

Semantics (scikit-mobility's ``stay_locations``, made streaming):

* A *candidate* starts at a fix, its *anchor*. Later fixes within ``radius_m`` of the anchor
  (distance ``<= radius_m``: a fix exactly on the boundary is inside) extend it.
* Once the candidate has lasted ``min_duration_s`` (last fix time minus anchor time) it is a
  *stop*: :meth:`StayPointDetector.update` returns an open :class:`Stop` on that fix.
* The first fix farther than ``radius_m`` from the anchor ends the candidate or stop and becomes
  the anchor of the next candidate. A stop ended this way has ``end_ms`` = that fix's time (the
  leaving time, as scikit-mobility's ``leaving_datetime``) and ``closed_by="left"``.
* Multipath outliers and GPS jumps: a single fix outside the radius whose next fix (within the
  silence allowance S below) is back inside is dropped and counted in ``outliers``
  (``drop_outliers=True``, the default), so one bad fix neither ends a stop nor restarts a
  candidate. The price: an end is reported one fix later (its ``end_ms`` is still the first
  fix outside).
* Terminals that sleep: with the ignition off a hazmat terminal reports once every 5-60
  minutes. ``sleep_s`` (E) is that *standing interval*, declared per vehicle or learned (below);
  0 for a terminal that keeps reporting. A stop survives a silence of up to S = 2E + G
  (``max_gap_s``; one lost sleep report is no departure: leaving wakes the terminal): the
  next fix inside the radius continues it. A fix outside after a silence
  ends it at that fix, but no later than E (or G) after the last fix inside: a terminal that
  reports every E would have shown the vehicle there. A silence longer than S splits it: it
  ends E after its last fix (``closed_by="gap"``; with E = 0 at the last fix) and the fix
  after anchors a new candidate. :meth:`StayPointDetector.flush` applies the same rule when
  event time passes S with no fix at all (a vehicle that went dark), and, for a terminal
  known to sleep (E > 0), confirms a candidate whose believed presence (up to E after its
  last fix) has lasted T, if its fixes before the silence spanned 30 s (it was standing, not
  passing through).
* Learning E: a silence of at least 4 minutes that ends with a fix inside the radius of the
  anchor (the vehicle did not move) shows how long the terminal sleeps: E becomes that
  silence, at most 60 minutes, and never shrinks. A *candidate* (not yet a stop: nothing was said
  about it) learns at once and goes on across that silence; a stop was already ended when
  event time passed S, so it learns for the next stop. A declared E is not learned over.
* Out-of-order and duplicate fixes (``ts`` <= the newest accepted fix) are dropped and counted in
  ``dropped``: a late fix only tells us about a past we already decided on, and accepting it
  would make the output depend on arrival order. Upstream buffering of a few fixes is therefore
  lossy by design; the flow orders per key before this step.

Differences from scikit-mobility's ``stay_locations`` (a stop from a point while later points
stay within R; it ends at the first point outside, if that is more than T after the first):
the duration is measured to the last fix inside (the stop is confirmed while the vehicle is
there, without the fix that ends it); silences longer than S split a stop (scikit-mobility
has no gap rule by default, and drops the points before a gap when it has one); one fix
outside between fixes inside is dropped; the leaving time after a silence is bounded by E;
the centre is the mean, not the median. ``docs/models/vehicles.md`` justifies each.

Distances are planar (equirectangular around the anchor, on the sphere of
:func:`citywatch.geo.haversine_m`): within a few hundred metres they differ from the haversine
distance by millimetres, and they cost a few multiplications.

>>> det = StayPointDetector(radius_m=100.0, min_duration_s=300.0, max_gap_s=600.0)
>>> t0 = 1_767_225_600_000
>>> [det.update(t0 + i * 60_000, 32.0, 120.9) for i in range(5)]
[None, None, None, None, None]
>>> det.update(t0 + 5 * 60_000, 32.0, 120.9)  # 300 s after the anchor: a stop
Stop(start_ms=1767225600000, end_ms=None, lat=32.0, lon=120.9, n_fixes=6, closed_by='')
>>> det.update(t0 + 6 * 60_000, 32.01, 120.9) is None  # 1.1 km away: an outlier?
True
>>> det.update(t0 + 7 * 60_000, 32.02, 120.9)  # still away: it left at the first fix outside
Stop(start_ms=1767225600000, end_ms=1767225960000, lat=32.0, lon=120.9, n_fixes=6, closed_by='left')
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from citywatch.geo import EARTH_R_M
from models.vehicles.slots import CompactSlots

__all__ = [
    "DEFAULT_MAX_GAP_S",
    "DEFAULT_MIN_DURATION_S",
    "DEFAULT_RADIUS_M",
    "MAX_SLEEP_S",
    "M_PER_DEG_LAT",
    "StayPointDetector",
    "Stop",
    "planar_distance_m",
]

#: Default radius: 4-5x the GPS noise of a parked truck (5-20 m), smaller than a yard.
DEFAULT_RADIUS_M: Final = 150.0
#: Default minimum stop: longer than a red light or a queue at a gate.
DEFAULT_MIN_DURATION_S: Final = 180.0
#: Default gap: fixes come every 10 s; ten minutes of silence means we lost the vehicle.
DEFAULT_MAX_GAP_S: Final = 600.0
#: The longest standing interval a terminal may declare or be learned to have: sleep-mode
#: (ignition off) reporting runs from 5 to 60 minutes.
MAX_SLEEP_S: Final = 3600.0
#: Metres per degree of latitude on the sphere ``citywatch.geo.haversine_m`` uses.
M_PER_DEG_LAT: Final = EARTH_R_M * math.pi / 180.0
_MAX_SILENCE_MS: Final = round(MAX_SLEEP_S * 1000)
#: A standing silence this long is a sleeping terminal's (sleep intervals start at 5 minutes;
#: an awake one reports every 1-30 s, a lost fix or two leave far shorter silences).
_MIN_SLEEP_MS: Final = 240_000
#: A candidate whose fixes span this long before a silence was standing, not passing by (at
#: 18 km/h a vehicle crosses a 150-m radius in 30 s): only then is its silence a sleep.
_STANDING_MS: Final = 30_000


def planar_distance_m(lat0: float, lon0: float, lat: float, lon: float) -> float:
    """Equirectangular distance in metres around (lat0, lon0), the metric the detector uses."""
    dy = (lat - lat0) * M_PER_DEG_LAT
    dx = (lon - lon0) * M_PER_DEG_LAT * math.cos(math.radians(lat0))
    return math.sqrt(dx * dx + dy * dy)


@dataclass(frozen=True, slots=True)
class Stop:
    """A stop: open (``end_ms`` None, ``closed_by`` "") when confirmed, closed when it ends.

    ``lat``/``lon`` are the centroid of the stop's fixes (the anchor's neighbours average out
    the jitter); ``start_ms`` is the anchor's time (arrival), ``n_fixes`` counts the fixes in it.
    ``closed_by`` is ``"left"`` (a fix outside the radius), ``"gap"`` (no fix for too long) or
    ``"flush"`` (:meth:`StayPointDetector.close` at the end of a stream).
    """

    start_ms: int
    end_ms: int | None
    lat: float
    lon: float
    n_fixes: int
    closed_by: str = ""

    @property
    def duration_s(self) -> float:
        """Seconds from arrival to ``end_ms`` (0 while open)."""
        return 0.0 if self.end_ms is None else (self.end_ms - self.start_ms) / 1000.0


class StayPointDetector(CompactSlots):
    """Stay points of one vehicle's fixes, one fix at a time (see the module docstring).

    Parameters
    ----------
    radius_m
        R: a fix farther than this from the stop's first fix ends it.
    min_duration_s
        T: a candidate becomes a stop once its fixes span this long.
    max_gap_s
        G: consecutive fixes farther apart than this split a stop.
    drop_outliers
        Drop a single fix outside R when the next fix (within S) is back inside (a multipath
        excursion, a GPS jump); the stop then ends one fix later. False: scikit-mobility's rule.
    sleep_s
        E: how long the terminal may stay silent while the vehicle stands (sleep-mode
        reporting, declared per vehicle); 0: it keeps reporting.
    learn
        Learn E upwards from standing silences (``sleep_ms``); off where E is declared.

    ``update`` returns a :class:`Stop` when one is confirmed (open) or ends (closed), else None;
    ``in_stop``, ``start_ms``, ``last_ms`` and :meth:`centroid` describe the current stop.

    ``arrival_ms`` does not change what a stop is; it is a better estimate of when the vehicle
    got there: the anchor time, or, when the previous candidate lasted at least T/2 and failed
    before T on a fix still within R of that candidate's centre (a slow approach anchored it
    short of the spot, and a jittered fix left its radius), that candidate's start. One step
    back at most: less than T (the failed candidate) plus G (the step to the fix that ended
    it) before the anchor.

    ``dropped`` counts out-of-order fixes, ``outliers`` one-fix excursions dropped.
    State: 22 slots of numbers, ~260 bytes pickled with the parameters.
    """

    __slots__ = (
        "_kx",
        "_n",
        "_pend_lat",
        "_pend_lon",
        "_pend_ms",
        "_r2",
        "_sx",
        "_sy",
        "anchor_lat",
        "anchor_lon",
        "arrival_ms",
        "drop_outliers",
        "dropped",
        "in_stop",
        "last_ms",
        "learn",
        "max_gap_ms",
        "min_duration_ms",
        "outliers",
        "radius_m",
        "sleep_ms",
        "start_ms",
    )

    def __init__(
        self,
        radius_m: float = DEFAULT_RADIUS_M,
        min_duration_s: float = DEFAULT_MIN_DURATION_S,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
        *,
        drop_outliers: bool = True,
        sleep_s: float = 0.0,
        learn: bool = True,
    ) -> None:
        if not (radius_m > 0 and math.isfinite(radius_m)):
            msg = f"radius_m: must be a positive finite number, got {radius_m!r}"
            raise ValueError(msg)
        if not (min_duration_s > 0 and math.isfinite(min_duration_s)):
            msg = f"min_duration_s: must be a positive finite number, got {min_duration_s!r}"
            raise ValueError(msg)
        if not (max_gap_s > 0 and math.isfinite(max_gap_s)):
            msg = f"max_gap_s: must be a positive finite number, got {max_gap_s!r}"
            raise ValueError(msg)
        if not (0 <= sleep_s <= MAX_SLEEP_S):
            msg = f"sleep_s: must be within 0-{MAX_SLEEP_S:g} s, got {sleep_s!r}"
            raise ValueError(msg)
        self.radius_m = float(radius_m)
        self.sleep_ms = round(sleep_s * 1000)
        self.learn = bool(learn)
        self.min_duration_ms = round(min_duration_s * 1000)
        self.max_gap_ms = round(max_gap_s * 1000)
        self.drop_outliers = bool(drop_outliers)
        self._r2 = self.radius_m * self.radius_m
        # learned state
        self.last_ms = -1  # newest accepted fix; -1 before the first
        self.start_ms = 0  # anchor time = the stop's first fix
        self.arrival_ms = 0  # see the class docstring
        self.anchor_lat = 0.0
        self.anchor_lon = 0.0
        self._kx = 0.0  # metres per degree of longitude at the anchor
        self._n = 0  # fixes in the current candidate; 0 = no candidate
        self._sy = 0.0  # sums of the fixes' offsets from the anchor, metres (for the centroid)
        self._sx = 0.0
        self.in_stop = False
        self.dropped = 0
        self.outliers = 0
        self._pend_ms = -1  # a fix outside the radius waiting for the next one; -1 = none
        self._pend_lat = 0.0
        self._pend_lon = 0.0

    def update(self, ts: int, lat: float, lon: float) -> Stop | None:
        """Feed one fix; return the stop it confirms or ends, else None.

        A fix that both settles an ended stop and confirms the next one (only after a silence
        of T right after leaving) returns the ended stop; ``in_stop`` shows the confirmation.
        """
        if ts <= self.last_ms or ts <= self._pend_ms:
            self.dropped += 1
            return None
        if self._n == 0:
            self._anchor(ts, lat, lon)
            return None
        ended: Stop | None = None
        allowed = self.allowed_ms  # S
        if self._pend_ms >= 0:
            if ts - self._pend_ms <= allowed and self._inside(lat, lon):
                self.outliers += 1  # the fix outside was a one-fix excursion: forget it
                self._pend_ms = -1
            else:
                ended = self._leave()  # it was real: the stop ended there
        silence = ts - self.last_ms
        if silence > allowed:
            standing = self._inside(lat, lon)
            if (
                standing
                and self.learn
                and not self.in_stop
                and silence <= _MAX_SILENCE_MS + self.max_gap_ms
            ):
                self._learn(silence)  # a candidate's first sleep: it goes on (see above)
            else:
                if self.in_stop:
                    ended = self._close(self.last_ms + self.sleep_ms, "gap")
                if standing:
                    self._learn(silence)
                self._anchor(ts, lat, lon)
                return ended
        dy = (lat - self.anchor_lat) * M_PER_DEG_LAT
        dx = (lon - self.anchor_lon) * self._kx
        if dx * dx + dy * dy <= self._r2:
            if silence > self.sleep_ms and silence >= _MIN_SLEEP_MS:
                self._learn(silence)  # standing and silent that long: the terminal sleeps
            self._n += 1
            self._sy += dy
            self._sx += dx
            self.last_ms = ts
            if not self.in_stop and ts - self.start_ms >= self.min_duration_ms:
                self.in_stop = True
                return ended if ended is not None else self._stop(None, "")
            return ended
        self._pend_ms, self._pend_lat, self._pend_lon = ts, lat, lon
        if self.drop_outliers:
            return ended  # decided by the next fix
        return self._leave()

    def flush(self, watermark_ms: int) -> Stop | None:
        """Settle what event time ``watermark_ms`` decides with no new fix (a vehicle gone dark).

        A pending fix outside the radius with nothing after it for S ends the stop there
        (``"left"``); a stop with no fix for S ends E after its last fix (``"gap"``); a sleeping
        terminal's candidate whose believed presence reached T is confirmed (an open stop).
        """
        allowed = self.allowed_ms
        if self._pend_ms >= 0:
            return self._leave() if watermark_ms - self._pend_ms > allowed else None
        if self.in_stop:
            if watermark_ms - self.last_ms > allowed:
                ended = self._close(self.last_ms + self.sleep_ms, "gap")
                self._n = 0
                return ended
        elif (
            self.sleep_ms
            and self.last_ms - self.start_ms >= _STANDING_MS
            and min(watermark_ms, self.last_ms + self.sleep_ms) - self.start_ms
            >= self.min_duration_ms
            and watermark_ms - self.last_ms <= allowed
        ):
            # A sleeping terminal's silence: the vehicle stands there until E after its last
            # fix (it would report otherwise), long enough to be a stop.
            self.in_stop = True
            return self._stop(None, "")
        return None

    def close(self) -> Stop | None:
        """End of the stream: a pending fix outside ends the stop (``"left"``), else it ends at
        its last fix (``closed_by="flush"``)."""
        if self._pend_ms >= 0:
            ended = self._leave()
        else:
            ended = self._close(self.last_ms, "flush") if self.in_stop else None
        self._n = 0
        return ended

    @property
    def allowed_ms(self) -> int:
        """S = 2E + G: the longest silence a stop survives (one lost sleep report, plus G)."""
        return self.max_gap_ms + 2 * self.sleep_ms

    def present_ms(self, watermark_ms: int) -> int:
        """Until when the vehicle is known or believed to stand at the current stop: its last
        fix, or up to E later while a sleeping terminal is silent."""
        if self.sleep_ms == 0 or watermark_ms <= self.last_ms:
            return self.last_ms
        return min(watermark_ms, self.last_ms + self.sleep_ms)

    def centroid(self) -> tuple[float, float]:
        """(lat, lon) of the mean of the current candidate's fixes; the anchor if none."""
        if self._n == 0 or self._kx == 0.0:
            return self.anchor_lat, self.anchor_lon
        return (
            self.anchor_lat + self._sy / self._n / M_PER_DEG_LAT,
            self.anchor_lon + self._sx / self._n / self._kx,
        )

    @property
    def n_fixes(self) -> int:
        """Fixes in the current candidate or stop."""
        return self._n

    # -- internals ---------------------------------------------------------------------------

    def _inside(self, lat: float, lon: float) -> bool:
        dy = (lat - self.anchor_lat) * M_PER_DEG_LAT
        dx = (lon - self.anchor_lon) * self._kx
        return dx * dx + dy * dy <= self._r2

    def _leave(self) -> Stop | None:
        """The pending fix outside the radius is real: end the stop (or candidate) there."""
        ts, lat, lon = self._pend_ms, self._pend_lat, self._pend_lon
        self._pend_ms = -1
        if self.in_stop:
            # Left by that fix, but after a silence no later than a terminal standing there
            # would have reported (E; within G the fix's own time is as close as we know).
            latest = self.last_ms + max(self.sleep_ms, self.max_gap_ms)
            ended = self._close(min(ts, latest), "left")
            self._anchor(ts, lat, lon)
            return ended
        # A candidate failed before T. If it lasted at least T/2 and this fix is still within R
        # of its centre, the vehicle was standing there (a slow approach anchored the candidate
        # short of the spot): remember when that candidate began, for ``arrival_ms``. (A
        # vehicle merely driving slowly fails its candidates sooner, or leaves the centre.)
        cy = (lat - self.anchor_lat) * M_PER_DEG_LAT - self._sy / self._n
        cx = (lon - self.anchor_lon) * self._kx - self._sx / self._n
        settling = (
            2 * (self.last_ms - self.start_ms) >= self.min_duration_ms
            and cy * cy + cx * cx <= self._r2
        )
        prev = self.start_ms
        self._anchor(ts, lat, lon)
        if settling:
            self.arrival_ms = prev
        return None

    def _learn(self, silence_ms: int) -> None:
        """A standing silence of ``silence_ms``: the terminal sleeps that long (at most 60
        minutes); E never shrinks."""
        learned = min(_MAX_SILENCE_MS, silence_ms)
        if self.learn and learned > self.sleep_ms:
            self.sleep_ms = learned

    def _anchor(self, ts: int, lat: float, lon: float) -> None:
        self.start_ms = ts
        self.arrival_ms = ts
        self.last_ms = ts
        self.anchor_lat = lat
        self.anchor_lon = lon
        self._kx = M_PER_DEG_LAT * math.cos(math.radians(lat))
        self._n = 1
        self._sy = 0.0
        self._sx = 0.0
        self.in_stop = False

    def _stop(self, end_ms: int | None, closed_by: str) -> Stop:
        lat, lon = self.centroid()
        return Stop(self.start_ms, end_ms, lat, lon, self._n, closed_by)

    def _close(self, end_ms: int, closed_by: str) -> Stop:
        stop = self._stop(end_ms, closed_by)
        self.in_stop = False
        return stop
