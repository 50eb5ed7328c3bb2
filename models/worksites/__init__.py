"""Illegal resumption of work at suspended sites: gate, persistence, CUSUM, fusion."""

from models.worksites.cusum import OneSidedCusum
from models.worksites.gate import OrderGate
from models.worksites.model import WorksiteResumption
from models.worksites.persistence import MOfN
from models.worksites.resumption import Change, ResumptionConfig, SiteState

__all__ = [
    "Change",
    "MOfN",
    "OneSidedCusum",
    "OrderGate",
    "ResumptionConfig",
    "SiteState",
    "WorksiteResumption",
]
