"""Generic streaming detectors with one protocol and a calibrated score (see ``base.py``).

=====================  ===========================================================
detector               finds
=====================  ===========================================================
:class:`RobustZ`       a spike or a burst of noise against the recent level
:class:`LevelShift`    a lasting change of level (change point)
:class:`Trend`         a slow drift: the level now against the level ``lag`` readings ago
:class:`VarianceShift` the series got noisier (or calmer) and stays so
:class:`Seasonal`      a value wrong for its time of day or week (needs ``t``)
:class:`FlatLine`      a frozen sensor: a run of repeats its repeat rate cannot explain
:class:`Mahalanobis`   several channels of one station moving against their relation
:class:`Ensemble`      any of the univariate ones: combined calibrated probabilities
=====================  ===========================================================

``docs/models/detectors.md`` says which to use when and how to pick a threshold.
"""

from models.detect.base import Detector, SurpriseDetector, clean, threshold_for
from models.detect.calibrate import TailCalibrator
from models.detect.ensemble import Ensemble
from models.detect.flat_line import FlatLine
from models.detect.level_shift import LevelShift
from models.detect.mahalanobis import Mahalanobis
from models.detect.resolution import Resolution
from models.detect.robust_z import RobustZ
from models.detect.seasonal import Seasonal
from models.detect.trend import Trend
from models.detect.variance_shift import VarianceShift

__all__ = [
    "Detector",
    "Ensemble",
    "FlatLine",
    "LevelShift",
    "Mahalanobis",
    "Resolution",
    "RobustZ",
    "Seasonal",
    "SurpriseDetector",
    "TailCalibrator",
    "Trend",
    "VarianceShift",
    "clean",
    "threshold_for",
]
