"""Ensemble: several detectors on one series, their calibrated tail probabilities combined.

Every member reports ``p``, the share of readings this unusual under the series' recent
behaviour (:mod:`models.detect.base`), so their findings are on one scale and combine without
guesswork. The rules (``combine``):

* ``"hmp_fisher"`` (default): the smaller of two combinations, doubled (Bonferroni over the
  two): the harmonic mean of the members' ``p`` (``"hmp"``: one member sure of its fault is
  enough) and Fisher's sum of the evidence of the members named by ``agree``, *calibrated on
  the series* (several members each a little surprised: a slow drift that the trend and
  seasonal members both see). By default ``agree`` is the members that watch a lasting
  deviation: the spike and flat-line members' chance surprises, a few in every stretch of
  readings, would only dilute that sum.
* ``"hmp"``: the harmonic mean ``p = k / sum(1 / p_i)`` (Wilson 2019). Never above
  Bonferroni's ``k * min p_i`` and below it when several members agree; exact for independent
  members at small ``p``, optimistic by at most a factor ``e ln k`` under any dependence
  (Vovk and Wang 2020).
* ``"bonferroni"``: ``p = min(1, k * min_i p_i)`` for ``k`` members. Valid whatever the
  members' dependence, and the least sensitive.
* ``"fisher"``: ``-2 sum ln p_i`` against a chi-squared law with ``2k`` degrees of freedom,
  uncalibrated: exact only for independent members; on one series it over-alarms (0.4-1.7% of
  clean readings at 0.999 on the real series). In ``"hmp_fisher"`` the same statistic is
  calibrated (:class:`~models.detect.calibrate.TailCalibrator`), which makes it honest whatever
  the dependence.

On the real series of ``benchmarks/eval_detectors.py`` (docs/models/detectors.md has the
figures) ``"hmp_fisher"`` found injected variance changes and trends clearly more often than
Bonferroni at the same false-alarm rate, spikes and level shifts as often.

The default members cover the usual faults and events of a sensor series: a spike or burst of
noise (:class:`~models.detect.robust_z.RobustZ`), a noisier series
(:class:`~models.detect.variance_shift.VarianceShift`), a value wrong for the time of day or week
(:class:`~models.detect.seasonal.Seasonal`, needs ``t``), a frozen sensor
(:class:`~models.detect.flat_line.FlatLine`) and a slow drift or lasting shift
(:class:`~models.detect.trend.Trend`; :class:`~models.detect.level_shift.LevelShift` is not a
default member: on the real series it added no AUC on level shifts that ``trend`` and
``robust_z`` did not already give, and cost a sixth of the ensemble's time). :meth:`explain`
names the member behind a score, for an alert's evidence.

>>> e = Ensemble()
>>> for i in range(3000):
...     _ = e.update(10.0 + (i * 37 % 11) * 0.1, i * 60_000)
>>> e.score_one(10.5, 3000 * 60_000) < 0.99
True
>>> e.score_one(25.0, 3000 * 60_000) > 0.999
True
>>> e.explain(25.0, 3000 * 60_000)[0][0]
'robust_z'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from models.detect.base import Detector, SurpriseDetector, clean
from models.detect.calibrate import P_FLOOR, TailCalibrator
from models.detect.flat_line import FlatLine
from models.detect.robust_z import RobustZ
from models.detect.seasonal import Seasonal
from models.detect.trend import Trend
from models.detect.variance_shift import VarianceShift

__all__ = ["COMBINE_RULES", "DEFAULT_AGREE", "Combine", "Ensemble", "default_members"]

Combine = Literal["hmp_fisher", "hmp", "bonferroni", "fisher"]
COMBINE_RULES: tuple[Combine, ...] = ("hmp_fisher", "hmp", "bonferroni", "fisher")
#: Fisher's statistic's calibration before any data: the nominal tail
_NOMINAL = TailCalibrator()


#: the default members whose evidence Fisher's calibrated sum adds up (``agree``)
DEFAULT_AGREE: tuple[str, ...] = ("seasonal", "trend")


def default_members() -> dict[str, Detector]:
    """Fresh default members: robust z, variance shift, seasonal, flat line (runs of at least
    three repeats), trend."""
    return {
        "robust_z": RobustZ(),
        "variance_shift": VarianceShift(),
        "seasonal": Seasonal(),
        "flat_line": FlatLine(min_run=3),
        "trend": Trend(),
    }


def _fisher_surprise(ps: Sequence[float]) -> float:
    """``-ln`` of Fisher's combined p of ``ps`` (uncalibrated): the chi-squared tail of
    ``-2 sum ln p_i`` with ``2k`` degrees of freedom, in logs (members' p are at least
    :data:`P_FLOOR`, so the sum below stays small)."""
    h = 0.0
    for p in ps:
        h -= math.log(p)
    return _chi2_surprise(h, len(ps))


def _chi2_surprise(h: float, k: int) -> float:
    """``-ln P(X >= 2 h)`` for ``X`` chi-squared with ``2k`` degrees of freedom (0 for
    ``h <= 0``): ``h - ln sum_{j < k} h^j / j!``."""
    if h <= 0.0:
        return 0.0
    term = 1.0
    total = 1.0
    for j in range(1, k):
        term *= h / j
        total += term
    return h - math.log(total)


def _hmp(ps: Sequence[float]) -> float:
    inv = 0.0
    for p in ps:
        inv += 1.0 / (p if p > P_FLOOR else P_FLOOR)
    return len(ps) / inv


class Ensemble(Detector):
    """Combined calibrated tail probability of named member detectors.

    Parameters
    ----------
    members
        Name -> detector (None: :func:`default_members`). The ensemble owns them.
    combine
        ``"hmp_fisher"`` (default), ``"hmp"``, ``"bonferroni"`` or ``"fisher"`` (see the
        module docstring).
    agree
        Names of the members whose evidence the calibrated Fisher statistic of
        ``"hmp_fisher"`` adds up: the members that see one lasting deviation together. None:
        :data:`DEFAULT_AGREE` for the default members, else every member.
    calibration_half_life
        Half-life (readings) of the calibration of Fisher's statistic (``"hmp_fisher"``).
    """

    __slots__ = (
        "_agree",
        "_all_direct",
        "_direct",
        "calibration_half_life",
        "calibrator",
        "combine",
        "members",
        "names",
    )

    def __init__(
        self,
        members: dict[str, Detector] | None = None,
        *,
        combine: Combine = "hmp_fisher",
        agree: Sequence[str] | None = None,
        calibration_half_life: float = 3000.0,
    ) -> None:
        ms = default_members() if members is None else dict(members)
        if not ms:
            msg = "members: need at least one detector"
            raise ValueError(msg)
        if combine not in COMBINE_RULES:
            msg = f"combine: must be one of {', '.join(COMBINE_RULES)}, got {combine!r}"
            raise ValueError(msg)
        names = tuple(ms)
        if agree is None:
            agree = DEFAULT_AGREE if members is None else names
        unknown = [a for a in agree if a not in ms]
        if unknown or not agree:
            msg = f"agree: must name at least one member, got {tuple(agree)!r}"
            raise ValueError(msg)
        self.names: tuple[str, ...] = names
        self.members: tuple[Detector, ...] = tuple(ms.values())
        self.combine: Combine = combine
        self.calibration_half_life = float(calibration_half_life)
        #: the calibration of Fisher's statistic (``"hmp_fisher"``; created when first learned)
        self.calibrator: TailCalibrator | None = None
        #: members whose cleaned-value fast path the ensemble calls (no repeated cleaning)
        self._direct = tuple(isinstance(m, SurpriseDetector) for m in self.members)
        self._all_direct = all(self._direct)
        #: positions of the members Fisher's statistic adds up, in order
        self._agree = tuple(i for i, n in enumerate(names) if n in set(agree))

    @property
    def agree(self) -> tuple[str, ...]:
        """Names of the members whose evidence Fisher's statistic adds up."""
        return tuple(self.names[i] for i in self._agree)

    def _combine(self, ps: Sequence[float], learn: bool = False) -> float:
        """The combined ``p`` of the members' ``ps``; ``learn``: the calibration learns it."""
        rule = self.combine
        if rule == "hmp_fisher":
            s = _fisher_surprise([ps[i] for i in self._agree])
            cal = self.calibrator
            if learn:
                if cal is None:
                    cal = self.calibrator = TailCalibrator(self.calibration_half_life)
                pf = cal.update(s)  # p, then learn s: one call
            else:
                pf = (_NOMINAL if cal is None else cal).p(s) if s > 0.0 else 1.0
            ph = _hmp(ps)
            p = 2.0 * (ph if ph < pf else pf)
        elif rule == "hmp":
            p = _hmp(ps)
        elif rule == "bonferroni":
            p = len(ps) * min(ps)
        else:
            p = math.exp(-_fisher_surprise(ps))
        if p > 1.0:
            return 1.0
        return p if p > P_FLOOR else P_FLOOR

    def p_values(self, x: float | None, t: int | None = None) -> dict[str, float]:
        """Each member's tail probability of ``x`` (state unchanged)."""
        return {n: m.p_one(x, t) for n, m in zip(self.names, self.members, strict=True)}

    def explain(self, x: float | None, t: int | None = None) -> list[tuple[str, float]]:
        """Members by how unusual they find ``x``: ``(name, score)``, highest first."""
        ps = self.p_values(x, t)
        return sorted(((n, 1.0 - p) for n, p in ps.items()), key=lambda kv: -kv[1])

    def p_one(self, x: float | None, t: int | None = None) -> float:
        if clean(x) is None:
            return 1.0
        return self._combine([m.p_one(x, t) for m in self.members])

    def learn_one(self, x: float | None, t: int | None = None) -> None:
        v = clean(x)
        if v is None:
            return
        ps = [m.p_one(v, t) for m in self.members]
        for m in self.members:
            m.learn_one(v, t)
        self._combine(ps, learn=True)

    def update_p(self, x: float | None, t: int | None = None) -> float:
        return self.update_all(x, t)[0]

    def update(self, x: float | None, t: int | None = None) -> float:
        return 1.0 - self.update_all(x, t)[0]

    def update_all(self, x: float | None, t: int | None = None) -> tuple[float, list[float]]:
        """Score then learn ``x``: the combined ``p`` and every member's ``p``, in order."""
        v = clean(x)
        if v is None:
            return 1.0, [1.0] * len(self.members)
        if self._all_direct:
            ps = [m.update_p_value(v, t) for m in self.members]  # type: ignore[attr-defined]
        else:
            ps = [
                m.update_p_value(v, t) if direct else m.update_p(v, t)  # type: ignore[attr-defined]
                for m, direct in zip(self.members, self._direct, strict=True)
            ]
        if self.combine != "hmp_fisher":
            return self._combine(ps, learn=True), ps
        # the default rule inline (the hot path): harmonic mean, calibrated Fisher on ``agree``
        inv = 0.0
        for p in ps:
            inv += 1.0 / (p if p > P_FLOOR else P_FLOOR)
        ph = len(ps) / inv
        h = 0.0
        for i in self._agree:
            p = ps[i]
            if p < 1.0:
                h -= math.log(p)
        cal = self.calibrator
        if cal is None:
            cal = self.calibrator = TailCalibrator(self.calibration_half_life)
        pf = cal.update(_chi2_surprise(h, len(self._agree)))
        p = 2.0 * (ph if ph < pf else pf)
        if p > 1.0:
            return 1.0, ps
        return (p if p > P_FLOOR else P_FLOOR), ps

    def __repr__(self) -> str:
        return f"Ensemble({', '.join(self.names)}, combine={self.combine!r})"
