"""Dwell context and level: is this stop normal, suspicious or abnormal, and how urgent?

A stop's *context* is where it is (:class:`models.vehicles.spatial.Context`): at a registered
place (enterprise, depot, fuel station), inside a sensitive zone (school, hospital, residential
area, water source), at a place's *gate* (outside its radius but within twice it: trucks queue
there before they are let in), or at none ("unregistered": the kind of spot a workshop is).
Precedence in that order: a chemical plant next to a housing estate is still where the truck is
supposed to stop, but a queue that reaches a school is a queue by a school. The
:class:`DwellPolicy` maps a context and a dwell duration to a
:class:`Verdict` and a warning :class:`~citywatch.alerts.Level`.

Default thresholds (seconds of dwell since arrival; ``None`` = never):

=============  ============  ===========  ======  ==========================================
context        suspicious    abnormal     red     why
=============  ============  ===========  ======  ==========================================
enterprise     --            --           --      loading/unloading is the job
depot          --            --           --      trucks live there
fuel           1 h           --           --      a long stay at a pump is odd, not a hazard
gate           45 min        90 min       3 h     queueing outside a place (up to 2x radius)
school         --            10 min       30 min  children; evacuation is slow
water          --            10 min       30 min  a leak poisons a water source
hospital       --            15 min       45 min
residential    --            15 min       45 min
unregistered   15 min        30 min       2 h     loading at an unlicensed workshop
=============  ============  ===========  ======  ==========================================

Levels: suspicious is blue; abnormal is orange, red from the red threshold on. The alert's
*threshold* (what detection delay is measured from) is the first non-normal threshold of the
context.

>>> policy = DwellPolicy()
>>> policy.classify("unregistered", 600.0)
(<Verdict.NORMAL: 'normal'>, None)
>>> policy.classify("unregistered", 2000.0)
(<Verdict.ABNORMAL: 'abnormal'>, <Level.ORANGE: 3>)
>>> policy.classify("school", 3600.0)[1].name
'RED'
>>> policy.threshold_s("school")
600.0
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from citywatch.alerts import Level
from models.vehicles.spatial import Context

__all__ = ["CONTEXTS", "DEFAULT_THRESHOLDS", "DwellPolicy", "Thresholds", "Verdict", "context_key"]


class Verdict(enum.StrEnum):
    NORMAL = "normal"
    SUSPICIOUS = "suspicious"
    ABNORMAL = "abnormal"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Dwell seconds at which a context turns suspicious, abnormal and red (None = never)."""

    suspicious_s: float | None = None
    abnormal_s: float | None = None
    red_s: float | None = None

    def __post_init__(self) -> None:
        steps = [x for x in (self.suspicious_s, self.abnormal_s, self.red_s) if x is not None]
        if any(not (math.isfinite(x) and x > 0) for x in steps) or steps != sorted(steps):
            msg = f"thresholds: must be positive and increasing, got {self}"
            raise ValueError(msg)
        if self.red_s is not None and self.abnormal_s is None:
            msg = f"thresholds: red_s needs abnormal_s, got {self}"
            raise ValueError(msg)


_MIN: Final = 60.0
DEFAULT_THRESHOLDS: Final[Mapping[str, Thresholds]] = {
    "enterprise": Thresholds(),
    "depot": Thresholds(),
    "fuel": Thresholds(suspicious_s=60 * _MIN),
    "gate": Thresholds(suspicious_s=45 * _MIN, abnormal_s=90 * _MIN, red_s=180 * _MIN),
    "school": Thresholds(abnormal_s=10 * _MIN, red_s=30 * _MIN),
    "water": Thresholds(abnormal_s=10 * _MIN, red_s=30 * _MIN),
    "hospital": Thresholds(abnormal_s=15 * _MIN, red_s=45 * _MIN),
    "residential": Thresholds(abnormal_s=15 * _MIN, red_s=45 * _MIN),
    "unregistered": Thresholds(suspicious_s=15 * _MIN, abnormal_s=30 * _MIN, red_s=120 * _MIN),
}
CONTEXTS: Final[tuple[str, ...]] = tuple(DEFAULT_THRESHOLDS)


def context_key(ctx: Context) -> tuple[str, str | None, float | None]:
    """(context name, id of the place or zone, distance to its centre in m) for a lookup.

    Precedence: at a registered place, in a sensitive zone, at a place's gate, unregistered.
    """
    if ctx.place is not None:
        return ctx.place.category, ctx.place.id, ctx.place_m
    if ctx.zone is not None:
        return ctx.zone.category, ctx.zone.id, ctx.zone_m
    if ctx.gate is not None:
        return "gate", ctx.gate.id, ctx.gate_m
    return "unregistered", None, None


class DwellPolicy:
    """Context + dwell duration -> (verdict, level); thresholds per context (module table).

    ``overrides`` replaces the thresholds of the named contexts; unknown names are an error.
    """

    def __init__(self, overrides: Mapping[str, Thresholds] | None = None) -> None:
        table = dict(DEFAULT_THRESHOLDS)
        for name, th in (overrides or {}).items():
            if name not in table:
                msg = f"overrides: unknown context {name!r}, expected one of {', '.join(CONTEXTS)}"
                raise ValueError(msg)
            table[name] = th
        self.thresholds: Mapping[str, Thresholds] = table

    def classify(self, context: str, dwell_s: float) -> tuple[Verdict, Level | None]:
        """Verdict and level of a stop in ``context`` that has lasted ``dwell_s`` so far."""
        th = self.thresholds.get(context) or self.thresholds["unregistered"]
        if th.red_s is not None and dwell_s >= th.red_s:
            return Verdict.ABNORMAL, Level.RED
        if th.abnormal_s is not None and dwell_s >= th.abnormal_s:
            return Verdict.ABNORMAL, Level.ORANGE
        if th.suspicious_s is not None and dwell_s >= th.suspicious_s:
            return Verdict.SUSPICIOUS, Level.BLUE
        return Verdict.NORMAL, None

    def threshold_s(self, context: str) -> float | None:
        """Dwell seconds at which ``context`` first stops being normal (None = never)."""
        th = self.thresholds.get(context) or self.thresholds["unregistered"]
        return th.suspicious_s if th.suspicious_s is not None else th.abnormal_s

    def score(self, context: str, dwell_s: float) -> float:
        """How far past normal, in [0, 1]: 0.5 at the first threshold, 1.0 at red (or 4x it)."""
        first = self.threshold_s(context)
        if first is None or dwell_s < first:
            return 0.0
        th = self.thresholds.get(context) or self.thresholds["unregistered"]
        top = th.red_s if th.red_s is not None else 4.0 * first
        if top <= first:
            return 1.0
        return min(1.0, 0.5 + 0.5 * (dwell_s - first) / (top - first))
