"""Drinking-water quality: the ``water.event``, ``water.range`` and ``water.stuck`` rules."""

from models.water.channels import CHANNELS, WaterConfig
from models.water.model import WaterModel, WaterState

__all__ = ["CHANNELS", "WaterConfig", "WaterModel", "WaterState"]
