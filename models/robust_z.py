"""RobustZ, where existing models import it from: the library's detector, legacy defaults.

The detector lives in :mod:`models.detect.robust_z` (calibrated score, automatic quantum and
level scale floors, ``t`` accepted). This name keeps the defaults models were tuned with:
one ``half_life`` for location *and* scale (the library's default scale half-life is 500
readings), a 60-reading location half-life, and no automatic floor (``quantum_floor`` and
``rel_floor`` 0: ``min_scale`` alone, as the models set it), so ``z_of``/``learn_value``
give exactly the z-scores they always gave; ``score_one`` is now calibrated. Pass
``quantum_floor=1.0, rel_floor=1e-3`` for the automatic floors. New code should use
:class:`models.detect.RobustZ` (or the :class:`models.detect.Ensemble`).

>>> d = RobustZ(half_life=20, warmup=10)
>>> for i in range(200):
...     d.learn_one(10.0 + (i % 5) * 0.5)
>>> d.scale_half_life == d.half_life == 20.0
True
>>> d.z_one(30.0) > 8
True
"""

from __future__ import annotations

from models.detect.robust_z import RobustZ as _LibraryRobustZ
from models.detect.robust_z import Side

__all__ = ["RobustZ"]


class RobustZ(_LibraryRobustZ):
    """:class:`models.detect.RobustZ` with the legacy defaults (see the module docstring)."""

    __slots__ = ()

    def __init__(
        self,
        half_life: float = 60.0,
        *,
        warmup: int = 30,
        clip: float = 3.0,
        min_scale: float = 0.0,
        side: Side = "both",
        log1p: bool = False,
        scale_half_life: float | None = None,
        quantum_floor: float = 0.0,
        rel_floor: float = 0.0,
        calibration_half_life: float = 3000.0,
    ) -> None:
        super().__init__(
            half_life,
            warmup=warmup,
            clip=clip,
            min_scale=min_scale,
            side=side,
            log1p=log1p,
            scale_half_life=half_life if scale_half_life is None else scale_half_life,
            quantum_floor=quantum_floor,
            rel_floor=rel_floor,
            calibration_half_life=calibration_half_life,
        )
