"""The channels of a drinking-water quality station, their limits and the model's parameters.

Limits follow China's drinking-water standard GB 5749-2022 where it sets one (pH 6.5-8.5,
turbidity <= 1 NTU, free chlorine residual >= 0.05 mg/L in the network and <= 2 mg/L);
channels it does not limit (temperature, conductivity, redox, flow) have none by default.
``span`` is what an analyser can physically report: a reading outside it is a sensor fault,
not water. A city configures its own limits (an EU plant: pH up to 9.5) with
``WaterConfig(limits={...})``.

>>> cfg = WaterConfig()
>>> cfg.limits["ph"], cfg.limits["temp_c"]
((6.5, 8.5), (None, None))
>>> WaterConfig(limits={"ph": (6.5, 9.5)}).limits["turbidity_ntu"]
(None, 1.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from citywatch.events import WATER_CHANNELS

__all__ = ["CHANNELS", "LABEL_ZH", "UNIT", "WaterConfig"]

#: The channels of a ``water`` event, in this order everywhere in the model.
CHANNELS: Final[tuple[str, ...]] = WATER_CHANNELS
LABEL_ZH: Final[dict[str, str]] = {
    "temp_c": "水温",
    "ph": "pH",
    "conductivity_us_cm": "电导率",
    "turbidity_ntu": "浊度",
    "chlorine_mg_l": "余氯",
    "redox_mv": "氧化还原电位",
    "flow_m3_h": "流量",
}
UNIT: Final[dict[str, str]] = {
    "temp_c": "°C",
    "ph": "",
    "conductivity_us_cm": "µS/cm",
    "turbidity_ntu": "NTU",
    "chlorine_mg_l": "mg/L",
    "redox_mv": "mV",
    "flow_m3_h": "m³/h",
}

Limit = tuple[float | None, float | None]

#: GB 5749-2022 where it sets a value (see the module docstring).
DEFAULT_LIMITS: Final[dict[str, Limit]] = {
    "temp_c": (None, None),
    "ph": (6.5, 8.5),
    "conductivity_us_cm": (None, None),
    "turbidity_ntu": (None, 1.0),
    "chlorine_mg_l": (0.05, 2.0),
    "redox_mv": (None, None),
    "flow_m3_h": (None, None),
}
#: What an analyser can report; outside is a sensor fault (exclusive bounds: 0 conductivity or
#: 0 °C is a dead probe in a pressurized network).
DEFAULT_SPAN: Final[dict[str, Limit]] = {
    "temp_c": (0.0, 40.0),
    "ph": (2.0, 12.0),
    "conductivity_us_cm": (0.0, 5000.0),
    "turbidity_ntu": (None, 100.0),
    "chlorine_mg_l": (None, 10.0),
    "redox_mv": (-1000.0, 1500.0),
    "flow_m3_h": (None, None),
}
#: Weight of each channel in the event deviation: turbidity and flow move with hydraulics
#: (pump switches, scouring) and count half.
DEFAULT_WEIGHTS: Final[dict[str, float]] = {
    "temp_c": 1.0,
    "ph": 1.0,
    "conductivity_us_cm": 1.0,
    "turbidity_ntu": 0.5,
    "chlorine_mg_l": 1.0,
    "redox_mv": 1.0,
    "flow_m3_h": 0.5,
}


def _merged(base: Mapping[str, Limit], given: Mapping[str, Limit]) -> dict[str, Limit]:
    unknown = set(given) - set(CHANNELS)
    if unknown:
        msg = f"limits: unknown channel(s) {sorted(unknown)}, expected some of {CHANNELS}"
        raise ValueError(msg)
    out = dict(base)
    out.update(given)
    for ch, (lo, hi) in out.items():
        if lo is not None and hi is not None and not lo < hi:
            msg = f"limits: {ch} needs low < high, got {lo!r}, {hi!r}"
            raise ValueError(msg)
    return out


@dataclass(frozen=True, slots=True)
class WaterConfig:
    """Parameters of the water model (times in event-time milliseconds).

    Event (``water.event``): each channel's deviation from its baseline (exponentially
    weighted, ``baseline_half_life_ms``, frozen while the channel is ``freeze_z`` scales
    away, for at most ``hold_ms``: a change that lasts becomes the new baseline), in units of
    its usual deviation (``scale_half_life_ms``, floored at the channel's quantum), capped at
    ``z_cap``; the station's *deviation* is the root of the weighted sum of squares.
    ``event_z`` or more for ``event_m`` consecutive readings fires; ``clear_m`` readings under
    ``event_z / 2`` clear. Levels by the largest channel z: yellow, orange from ``orange_z``
    (or two channels beyond ``red_channels_z``), red from ``red_z`` (or three).

    Range (``water.range``): a channel outside its ``limits`` (or its analyser ``span``) in
    ``range_m`` of the last ``range_n`` readings fires; ``range_clear`` readings inside clear.

    Stuck (``water.stuck``): a channel whose :class:`~models.detect.FlatLine` score reaches
    ``stuck_score`` and whose value has not changed for ``stuck_min_ms`` fires; any change
    clears. A stuck channel leaves the event deviation. (Coarse analysers sit on one value
    for hours: on a real network, conductivity on a 1 µS/cm grid held still for 4 hours or
    more a hundred times in 97 days, water temperature 39 times.)
    """

    limits: Mapping[str, Limit] = field(default_factory=dict)
    span: Mapping[str, Limit] = field(default_factory=dict)
    weights: Mapping[str, float] = field(default_factory=dict)
    baseline_half_life_ms: int = 60 * 60_000
    scale_half_life_ms: int = 24 * 3_600_000
    warmup_ms: int = 6 * 3_600_000
    freeze_z: float = 4.0
    hold_ms: int = 60 * 60_000
    z_cap: float = 10.0
    event_z: float = 10.0
    event_m: int = 5
    clear_m: int = 10
    orange_z: float = 20.0
    red_z: float = 40.0
    red_channels_z: float = 8.0
    range_m: int = 3
    range_n: int = 5
    range_clear: int = 10
    stuck_score: float = 0.99999
    stuck_min_ms: int = 4 * 3_600_000
    #: a firing alert's signal is repeated at least this often (the engine's quiet period)
    refresh_ms: int = 5 * 60_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "limits", _merged(DEFAULT_LIMITS, self.limits))
        object.__setattr__(self, "span", _merged(DEFAULT_SPAN, self.span))
        unknown = set(self.weights) - set(CHANNELS)
        if unknown:
            msg = f"weights: unknown channel(s) {sorted(unknown)}"
            raise ValueError(msg)
        object.__setattr__(self, "weights", {**DEFAULT_WEIGHTS, **self.weights})
        for name in (
            "baseline_half_life_ms",
            "scale_half_life_ms",
            "hold_ms",
            "stuck_min_ms",
            "refresh_ms",
        ):
            if getattr(self, name) <= 0:
                msg = f"{name}: must be > 0, got {getattr(self, name)!r}"
                raise ValueError(msg)
        for name in ("freeze_z", "z_cap", "event_z", "orange_z", "red_z", "red_channels_z"):
            if not getattr(self, name) > 0:
                msg = f"{name}: must be > 0, got {getattr(self, name)!r}"
                raise ValueError(msg)
        for name in ("event_m", "clear_m", "range_m", "range_clear"):
            if getattr(self, name) < 1:
                msg = f"{name}: must be >= 1, got {getattr(self, name)!r}"
                raise ValueError(msg)
        if not self.range_m <= self.range_n <= 64:
            msg = (
                f"range_m/range_n: need range_m <= range_n <= 64, got {self.range_m}/{self.range_n}"
            )
            raise ValueError(msg)
        if not 0.0 < self.stuck_score < 1.0:
            msg = f"stuck_score: must be in (0, 1), got {self.stuck_score!r}"
            raise ValueError(msg)
