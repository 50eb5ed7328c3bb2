"""Score alerts against ground-truth labels: event-level precision, recall, F1, detection delay
and false alerts per entity-day. Pure: no I/O, no clock.

An alert *matches* a label when the rules are equal, the alert's event-time span
``[first_ts, last_ts]`` overlaps ``[start_ms - tolerance_ms, end_ms + tolerance_ms]``, and

- for rules matched by place (``incident.correlated``, ``vehicle.workshop``): the alert's
  ``lat``/``lon`` lie within ``params["radius_m"]`` of the label's ``params["lat"/"lon"]``;
- for every other rule: ``alert.subject.id`` is the label's ``subject_id`` or one in ``also``.

Precision counts alerts (an alert matching any label is a true positive), recall counts labels
(a label matched by any alert is detected), F1 is their harmonic mean. Several versions of one
alert (same ``id``, as in the ``cw:alerts`` stream) count once, spanning all their versions.
The delay of a detected label is the earliest matching alert's ``first_ts`` minus the label's
``start_ms`` (negative when the alert fired early, inside the tolerance). False alerts per
entity-day divide unmatched alerts by the entity-days of the rule's population (say 20
stations over 2 days = 40), when given.

Alerts can be :class:`citywatch.alerts.Alert`, Signal-like objects (``ts`` stands in for
``first_ts``/``last_ts``) or dicts in the ``Alert.to_dict()`` layout.

>>> from simulators.labels import Label
>>> lab = Label(rule="air.spike", subject_kind="station", subject_id="S1",
...             start_ms=1000, end_ms=5000)
>>> hit = {"id": "a", "rule": "air.spike", "subject": {"kind": "station", "id": "S1"},
...        "first_ts": 2000, "last_ts": 3000}
>>> miss = dict(hit, id="b", subject={"kind": "station", "id": "S2"})
>>> r = score([hit, miss], [lab], tolerance_ms=0).rules["air.spike"]
>>> (r.precision, r.recall, r.delays_ms)
(0.5, 1.0, (1000,))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from citywatch.geo import haversine_m
from simulators.labels import Label

__all__ = [
    "PLACE_RULES",
    "AlertView",
    "RuleScore",
    "ScoreReport",
    "collapse",
    "matches",
    "population_days",
    "prf",
    "quantile",
    "score",
    "scores",
    "view",
]

#: Rules whose subject is a model's own id (a candidate spot, an incident): matched by place.
PLACE_RULES: Final = frozenset({"incident.correlated", "vehicle.workshop"})
DEFAULT_TOLERANCE_MS: Final = 5 * 60_000


@dataclass(frozen=True, slots=True)
class AlertView:
    """What scoring needs of an alert."""

    id: str
    rule: str
    subject_id: str
    first_ts: int
    last_ts: int
    lat: float | None = None
    lon: float | None = None


def view(alert: Any) -> AlertView:
    """Read an Alert, a Signal-like object or an alert dict."""
    if isinstance(alert, Mapping):
        subj = alert.get("subject") or {}
        sid = subj.get("id") if isinstance(subj, Mapping) else getattr(subj, "id", "")
        first = alert.get("first_ts", alert.get("ts"))
        last = alert.get("last_ts", first)
        return AlertView(
            id=str(alert.get("id") or f"{alert.get('rule')}/{sid}/{first}"),
            rule=str(alert["rule"]),
            subject_id=str(sid),
            first_ts=int(first),
            last_ts=int(last if last is not None else first),
            lat=alert.get("lat"),
            lon=alert.get("lon"),
        )
    first = getattr(alert, "first_ts", None)
    if first is None:
        first = alert.ts
    last = getattr(alert, "last_ts", None)
    if last is None:
        last = first
    sid = alert.subject.id
    aid = getattr(alert, "id", None) or f"{alert.rule}/{sid}/{first}"
    return AlertView(
        id=str(aid),
        rule=alert.rule,
        subject_id=str(sid),
        first_ts=int(first),
        last_ts=int(last),
        lat=getattr(alert, "lat", None),
        lon=getattr(alert, "lon", None),
    )


def collapse(alerts: Iterable[Any]) -> list[AlertView]:
    """One view per alert id, spanning all its versions."""
    by_id: dict[str, AlertView] = {}
    for a in alerts:
        v = view(a)
        old = by_id.get(v.id)
        if old is not None:
            v = AlertView(
                id=v.id,
                rule=v.rule,
                subject_id=v.subject_id,
                first_ts=min(old.first_ts, v.first_ts),
                last_ts=max(old.last_ts, v.last_ts),
                lat=v.lat if v.lat is not None else old.lat,
                lon=v.lon if v.lon is not None else old.lon,
            )
        by_id[v.id] = v
    return list(by_id.values())


def matches(a: AlertView, lab: Label, tolerance_ms: int) -> bool:
    """Does alert ``a`` detect label ``lab``? (The rule of the module docstring.)"""
    if a.rule != lab.rule:
        return False
    if a.last_ts < lab.start_ms - tolerance_ms or a.first_ts > lab.end_ms + tolerance_ms:
        return False
    if lab.rule in PLACE_RULES:
        p = lab.params
        if a.lat is None or a.lon is None or "lat" not in p or "lon" not in p:
            return False
        return haversine_m(a.lat, a.lon, p["lat"], p["lon"]) <= float(p.get("radius_m", 500.0))
    return a.subject_id in lab.subject_ids


@dataclass(frozen=True, slots=True)
class RuleScore:
    rule: str
    labels: int
    alerts: int
    detected: int  # labels matched by at least one alert
    true_alerts: int  # alerts matching at least one label
    precision: float  # true_alerts / alerts (1.0 when there is no alert)
    recall: float  # detected / labels (1.0 when there is no label)
    f1: float
    delays_ms: tuple[int, ...] = ()
    false_alerts: int = 0
    false_per_entity_day: float | None = None
    missed: tuple[str, ...] = ()  # subject ids of undetected labels

    @property
    def delay_median_ms(self) -> float | None:
        return quantile(self.delays_ms, 0.5)

    @property
    def delay_p90_ms(self) -> float | None:
        return quantile(self.delays_ms, 0.9)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "labels": self.labels,
            "alerts": self.alerts,
            "detected": self.detected,
            "true_alerts": self.true_alerts,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "delay_median_ms": self.delay_median_ms,
            "delay_p90_ms": self.delay_p90_ms,
            "false_alerts": self.false_alerts,
            "false_per_entity_day": self.false_per_entity_day,
        }


@dataclass(frozen=True, slots=True)
class ScoreReport:
    rules: dict[str, RuleScore] = field(default_factory=dict)
    overall: RuleScore | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": {k: v.to_dict() for k, v in sorted(self.rules.items())},
            "overall": self.overall.to_dict() if self.overall else None,
        }


def quantile(xs: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile of ``xs`` by linear interpolation, or None when empty."""
    if not xs:
        return None
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def scores(
    tp_alerts: int, alerts: int, detected: int, labels: int
) -> tuple[float | None, float | None, float | None]:
    """Event-level precision, recall and F1, None where undefined.

    Precision is undefined without alerts, recall without labels. F1 is their harmonic
    mean; when one is undefined it is 0 if the other side has anything (labels all missed,
    or alerts all false) and undefined when there is neither an alert nor a label.

    >>> scores(2, 4, 1, 2), scores(0, 0, 0, 3), scores(0, 0, 0, 0)
    ((0.5, 0.5, 0.5), (None, 0.0, 0.0), (None, None, None))
    """
    p = tp_alerts / alerts if alerts else None
    r = detected / labels if labels else None
    if p is None or r is None:
        f = None if p is None and r is None else 0.0
    else:
        f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f


def prf(tp_alerts: int, alerts: int, detected: int, labels: int) -> tuple[float, float, float]:
    """:func:`scores` with the conventions of a number always: no alerts gives precision 1,
    no labels recall 1 (use :func:`scores` to show them as undefined)."""
    p, r, _ = scores(tp_alerts, alerts, detected, labels)
    p = 1.0 if p is None else p
    r = 1.0 if r is None else r
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return p, r, f


def population_days(
    *,
    days: float,
    stations: int,
    districts: int,
    vehicles: int,
    sites: int,
    tickets: int,
    water_stations: int = 0,
) -> dict[str, float]:
    """Entity-days of each rule's subject population over ``days``: what false alerts per
    entity-day divide by (every ticket is one entity, whatever the span)."""
    per = {
        "air.exceedance": stations,
        "air.spike": stations,
        "air.stuck": stations,
        "air.range": stations,
        "air.drift": stations,
        "air.episode": districts,
        "vehicle.dwell": vehicles,
        "vehicle.workshop": districts,
        "worksite.resumption": sites,
        "hotline.duplicate": max(1, tickets) / max(days, 1e-9),
        "hotline.surge": districts * 8,
        "hotline.unplaced": max(1, tickets) / max(days, 1e-9),
        "incident.correlated": districts,
        "water.event": water_stations,
        "water.range": water_stations,
        "water.stuck": water_stations,
    }
    return {rule: n * days for rule, n in per.items()}


def score(
    alerts: Iterable[Any],
    labels: Iterable[Label],
    *,
    rules: Iterable[str] | None = None,
    entity_days: float | Mapping[str, float] | None = None,
    tolerance_ms: int = DEFAULT_TOLERANCE_MS,
) -> ScoreReport:
    """Per-rule and overall (micro-averaged) scores; see the module docstring."""
    views = collapse(alerts)
    labs = list(labels)
    wanted = set(rules) if rules is not None else {a.rule for a in views} | {x.rule for x in labs}
    out: dict[str, RuleScore] = {}
    tot = [0, 0, 0, 0, 0]
    all_delays: list[int] = []
    ed_total = 0.0
    for rule in sorted(wanted):
        ra = [a for a in views if a.rule == rule]
        rl = [x for x in labs if x.rule == rule]
        true_alerts = sum(1 for a in ra if any(matches(a, x, tolerance_ms) for x in rl))
        delays: list[int] = []
        missed: list[str] = []
        for x in rl:
            hits = [a.first_ts for a in ra if matches(a, x, tolerance_ms)]
            if hits:
                delays.append(min(hits) - x.start_ms)
            else:
                missed.append(x.subject_id)
        detected = len(delays)
        p, r, f = prf(true_alerts, len(ra), detected, len(rl))
        false = len(ra) - true_alerts
        ed = entity_days.get(rule) if isinstance(entity_days, Mapping) else entity_days
        fped = false / ed if ed else None
        ed_total += ed or 0.0
        out[rule] = RuleScore(
            rule=rule,
            labels=len(rl),
            alerts=len(ra),
            detected=detected,
            true_alerts=true_alerts,
            precision=p,
            recall=r,
            f1=f,
            delays_ms=tuple(delays),
            false_alerts=false,
            false_per_entity_day=fped,
            missed=tuple(missed),
        )
        for i, v in enumerate((len(rl), len(ra), detected, true_alerts, false)):
            tot[i] += v
        all_delays += delays
    p, r, f = prf(tot[3], tot[1], tot[2], tot[0])
    overall = RuleScore(
        rule="*",
        labels=tot[0],
        alerts=tot[1],
        detected=tot[2],
        true_alerts=tot[3],
        precision=p,
        recall=r,
        f1=f,
        delays_ms=tuple(all_delays),
        false_alerts=tot[4],
        false_per_entity_day=tot[4] / ed_total if ed_total else None,
    )
    return ScoreReport(rules=out, overall=overall)
