"""Hazmat vehicles: stay points, dwell context and level, workshop ranking.

See ``docs/models/vehicles.md``. The flow registers :class:`DwellModel` (``vehicle.dwell``,
keyed by vehicle) and :class:`WorkshopModel` (``vehicle.workshop``, fed dwell signals).
"""

from models.vehicles.dwell import DwellPolicy, Thresholds, Verdict
from models.vehicles.model import DwellModel, VehicleState, WorkshopModel
from models.vehicles.spatial import Context, PlaceIndex
from models.vehicles.stay_point import StayPointDetector, Stop
from models.vehicles.workshops import Candidate, WorkshopRanker

__all__ = [
    "Candidate",
    "Context",
    "DwellModel",
    "DwellPolicy",
    "PlaceIndex",
    "StayPointDetector",
    "Stop",
    "Thresholds",
    "VehicleState",
    "Verdict",
    "WorkshopModel",
    "WorkshopRanker",
]
