"""The models the city flow runs: ONE registration line per model.

A registration names the model's domain (for the per-domain flows) and a factory that builds
it from the reference data and the settings. To add a model, import it and add one line to
:data:`MODELS`; its ``name`` must be unique (it keys the model's state for recovery).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from citywatch.errors import ConfigError
from citywatch.registry import Registry
from citywatch.settings import Settings
from models.air.model import AirModel
from models.base import Model
from models.hotline.model import HotlineModel
from models.vehicles.model import DwellModel, WorkshopModel
from models.water.model import WaterModel
from models.worksites.model import WorksiteResumption
from models.worksites.resumption import ResumptionConfig

__all__ = ["DOMAINS", "MODELS", "Registration", "build_models"]


@dataclass(frozen=True, slots=True)
class Registration:
    domain: str
    factory: Callable[[Registry, Settings], Model]


MODELS: Sequence[Registration] = (
    Registration("air", lambda reg, s: AirModel(reg)),
    Registration("vehicles", lambda reg, s: DwellModel(reg)),
    Registration("vehicles", lambda reg, s: WorkshopModel(reg)),
    # Noise complaints travel in the city-wide hotline partition, not the site's, so the flow
    # leaves their corroboration to the incident correlator (ordered behind the city-wide
    # watermark) rather than let a site's level depend on cross-partition arrival order.
    Registration(
        "worksites",
        lambda reg, s: WorksiteResumption(reg, ResumptionConfig(complaint_radius_m=0.0)),
    ),
    Registration("hotline", lambda reg, s: HotlineModel(reg, departments=s.departments)),
    Registration("water", lambda reg, s: WaterModel(reg)),
)

#: The domains a per-domain flow can run alone (``citywatch run --domain air``).
DOMAINS = ("air", "vehicles", "worksites", "hotline", "water")


def build_models(
    registry: Registry,
    settings: Settings,
    *,
    domain: str | None = None,
    registrations: Sequence[Registration] | None = None,
) -> list[Model]:
    """Instantiate the registered models (of one ``domain``, or all).

    ``registrations`` replaces :data:`MODELS` for this call (evaluation with overrides, tests).
    """
    if domain is not None and domain not in DOMAINS:
        msg = f"domain: {domain!r} is not one of {', '.join(DOMAINS)}"
        raise ConfigError(msg)
    regs = MODELS if registrations is None else registrations
    return [r.factory(registry, settings) for r in regs if domain in (None, r.domain)]
