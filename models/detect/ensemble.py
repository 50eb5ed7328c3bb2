"""Ensemble: several detectors on one series, their calibrated tail probabilities combined.

Every member reports ``p``, the share of readings this unusual under the series' recent
behaviour (:mod:`models.detect.base`), so their findings are on one scale and combine without
guesswork. Two rules:

* ``"bonferroni"`` (default): ``p = min(1, k * min_i p_i)`` for ``k`` members. Valid whatever
  the members' dependence (they watch the same readings, so they are dependent): the share of
  normal readings scoring above ``1 - p`` is at most ``p``, as for a single detector.
* ``"fisher"``: ``-2 sum ln p_i`` against a chi-squared law with ``2k`` degrees of freedom.
  More sensitive to several members mildly agreeing, but exact only for independent members;
  on one series it over-alarms (measure before using it).

The default members cover the usual faults and events of a sensor series: a spike or burst of
noise (:class:`~models.detect.robust_z.RobustZ`), a lasting shift or trend
(:class:`~models.detect.level_shift.LevelShift`), a noisier series
(:class:`~models.detect.variance_shift.VarianceShift`), a value wrong for the time of day or week
(:class:`~models.detect.seasonal.Seasonal`, needs ``t``) and a frozen sensor
(:class:`~models.detect.flat_line.FlatLine`). :meth:`explain` names the member behind a
score, for an alert's evidence.

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
from models.detect.calibrate import P_FLOOR
from models.detect.flat_line import FlatLine
from models.detect.level_shift import LevelShift
from models.detect.robust_z import RobustZ
from models.detect.seasonal import Seasonal
from models.detect.variance_shift import VarianceShift

__all__ = ["Combine", "Ensemble", "default_members"]

Combine = Literal["bonferroni", "fisher"]


def default_members() -> dict[str, Detector]:
    """Fresh default members: robust z, level shift, variance shift, seasonal, flat line."""
    return {
        "robust_z": RobustZ(),
        "level_shift": LevelShift(),
        "variance_shift": VarianceShift(),
        "seasonal": Seasonal(),
        "flat_line": FlatLine(),
    }


def _chi2_sf_even(x: float, k: int) -> float:
    """P(X >= x) for X chi-squared with 2k degrees of freedom (closed form)."""
    h = 0.5 * x
    term = 1.0
    total = 1.0
    for j in range(1, k):
        term *= h / j
        total += term
    return math.exp(-h) * total if h < 700.0 else 0.0


class Ensemble(Detector):
    """Combined calibrated tail probability of named member detectors.

    Parameters
    ----------
    members
        Name -> detector (None: :func:`default_members`). The ensemble owns them.
    combine
        ``"bonferroni"`` (default) or ``"fisher"``.
    """

    __slots__ = ("combine", "members", "names")

    def __init__(
        self, members: dict[str, Detector] | None = None, *, combine: Combine = "bonferroni"
    ) -> None:
        ms = default_members() if members is None else dict(members)
        if not ms:
            msg = "members: need at least one detector"
            raise ValueError(msg)
        if combine not in ("bonferroni", "fisher"):
            msg = f"combine: must be 'bonferroni' or 'fisher', got {combine!r}"
            raise ValueError(msg)
        self.names: tuple[str, ...] = tuple(ms)
        self.members: tuple[Detector, ...] = tuple(ms.values())
        self.combine: Combine = combine

    def _combine(self, ps: Sequence[float]) -> float:
        if self.combine == "bonferroni":
            p = len(ps) * min(ps)
        else:
            stat = -2.0 * sum(math.log(p) for p in ps)
            p = _chi2_sf_even(stat, len(ps))
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
        return self._combine([m.p_one(x, t) for m in self.members])

    def learn_one(self, x: float | None, t: int | None = None) -> None:
        for m in self.members:
            m.learn_one(x, t)

    def update_p(self, x: float | None, t: int | None = None) -> float:
        return self.update_all(x, t)[0]

    def update_all(self, x: float | None, t: int | None = None) -> tuple[float, list[float]]:
        """Score then learn ``x``: the combined ``p`` and every member's ``p``, in order."""
        v = clean(x)
        if v is None:
            return 1.0, [1.0] * len(self.members)
        ps = [
            m.update_p_value(v, t) if isinstance(m, SurpriseDetector) else m.update_p(v, t)
            for m in self.members
        ]
        return self._combine(ps), ps

    def __repr__(self) -> str:
        return f"Ensemble({', '.join(self.names)}, combine={self.combine!r})"
