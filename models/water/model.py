"""WaterModel: drinking-water quality stations -> ``water.event``, ``water.range``, ``water.stuck``.

One state per station (``route`` keys by station id); every ``water`` reading updates it:

* **water.event**, an abnormal change across channels (contamination, a treatment failure,
  a mixing of waters): each channel's deviation from its own baseline in units of its usual
  deviation, combined over the channels (``WaterConfig`` has the details). A step of 0.13 pH
  together with -16 µS/cm conductivity and +0.005 NTU turbidity in one minute (one of the
  labelled events of a real network) is an event; the same step of turbidity alone for a
  minute is not. Evidence: the deviation and, per channel that moved, its value, baseline,
  change and z.
* **water.range**, a channel outside its limits (GB 5749-2022 by default) or outside what
  its analyser can report (a dead probe), for m of n readings. Evidence: channel, value,
  limit, ``check`` (``limit`` or ``span``).
* **water.stuck**, a channel frozen on one value far longer than the series ever repeats
  (:class:`models.detect.FlatLine`, quantization-aware), for at least ``stuck_min_ms``. It
  leaves the event deviation while stuck. Level blue: a maintenance ticket.

Signals are sent when a condition starts, refreshed every ``refresh_ms`` while it holds (the
engine's quiet period never closes a live alert) and cleared explicitly. Readings out of
time order (``ts`` not after the station's last) are not learned and raise nothing.

>>> from citywatch.events import Water
>>> m = WaterModel()
>>> st = m.new_state("WS1")
>>> t0, MIN = 1_793_548_800_000, 60_000
>>> for i in range(8 * 60):           # eight quiet hours on the analysers' grids
...     w = Water(ts=t0 + i * MIN, station="WS1", ph=7.20 + 0.01 * (i % 3 == 0),
...               conductivity_us_cm=350.0 + (i % 4 == 0), turbidity_ntu=0.150)
...     assert m.update(st, w) == []
>>> sigs = []
>>> for i in range(8 * 60, 8 * 60 + 10):   # a contamination: three channels step at once
...     w = Water(ts=t0 + i * MIN, station="WS1", ph=7.45, conductivity_us_cm=390.0,
...               turbidity_ntu=0.60)
...     sigs += m.update(st, w)
>>> sigs[0].rule, sigs[0].level.name, sigs[0].evidence["channels"]
('water.event', 'RED', ['conductivity_us_cm', 'ph', 'turbidity_ntu'])
"""

from __future__ import annotations

import math
from typing import ClassVar, Final

from citywatch.alerts import Level, Signal, Subject
from citywatch.events import Event, Water
from citywatch.registry import Registry, WaterStation
from models.base import Model
from models.detect.flat_line import FlatLine
from models.detect.resolution import EQUAL_REL, Resolution
from models.water.channels import CHANNELS, LABEL_ZH, WaterConfig

__all__ = ["WaterModel", "WaterState"]

_K: Final = len(CHANNELS)
_LN2: Final = math.log(2.0)
_ABS_TO_SIGMA: Final = 1.2533141373155003
#: A reading after a gap counts for at most this long in the exponential rates.
_MAX_STEP_MS: Final = 3_600_000
#: Readings per channel before its deviation counts (plus ``warmup_ms`` of event time).
_MIN_READINGS: Final = 30
_SUBJECT: Final = "water_station"


class WaterState:
    """One station: per channel baseline, scale, quantum, run and range window; rule states."""

    __slots__ = (
        "base",
        "count",
        "dev",
        "event_hits",
        "event_last_emit",
        "event_on",
        "event_quiet",
        "flat",
        "held_ms",
        "prev",
        "range_bits",
        "range_inside",
        "range_last_emit",
        "range_on",
        "ref",
        "ref_ts",
        "res",
        "run_start",
        "stuck",
        "stuck_last_emit",
        "t_first",
        "t_last",
    )

    def __init__(self) -> None:
        self.t_first = -1
        self.t_last = -1
        self.count = [0] * _K
        self.base = [0.0] * _K
        self.dev = [0.0] * _K
        self.prev: list[float | None] = [None] * _K
        self.res = [Resolution() for _ in range(_K)]
        self.held_ms = [0.0] * _K
        #: the baseline before an accepted change (NaN: none), for the way back
        self.ref = [math.nan] * _K
        self.ref_ts = [0] * _K
        self.flat = [FlatLine() for _ in range(_K)]
        self.run_start = [0] * _K
        self.stuck = [False] * _K
        self.range_bits = [0] * _K
        self.range_inside = 0
        self.event_on = False
        self.event_hits = 0
        self.event_quiet = 0
        self.event_last_emit = 0
        self.range_on = False
        self.range_last_emit = 0
        self.stuck_last_emit = 0


class WaterModel(Model):
    """The water-quality rules for every station (see the module docstring)."""

    name: ClassVar[str] = "water"
    version: ClassVar[str] = "1"
    kinds: ClassVar[frozenset[str]] = frozenset({"water"})

    def __init__(self, registry: Registry | None = None, config: WaterConfig | None = None) -> None:
        self.cfg = config or WaterConfig()
        self.stations: dict[str, WaterStation] = dict(registry.water_stations) if registry else {}
        cfg = self.cfg
        self._limits = [cfg.limits[c] for c in CHANNELS]
        self._span = [cfg.span[c] for c in CHANNELS]
        # (span low, span high, limit low, limit high) with the open sides at -inf / +inf
        self._bounds = [
            (_lo(sp[0]), _hi(sp[1]), _lo(li[0]), _hi(li[1]))
            for sp, li in zip(self._span, self._limits, strict=True)
        ]
        self._mask = (1 << cfg.range_n) - 1
        self._w = [cfg.weights[c] for c in CHANNELS]
        self._cap2 = cfg.z_cap * cfg.z_cap
        self._stuck_p = 1.0 - cfg.stuck_score

    def route(self, event: Event) -> str | None:
        return event.station if type(event) is Water else None

    def new_state(self, key: str) -> WaterState:
        return WaterState()

    # -- the reading ---------------------------------------------------------------------------

    def update(self, state: WaterState, event: Event) -> list[Signal]:
        if type(event) is not Water:
            return []
        st, cfg = state, self.cfg
        ts = event.ts
        if ts <= st.t_last:
            return []
        dt = float(ts - st.t_last) if st.t_last >= 0 else 60_000.0
        if dt > _MAX_STEP_MS:
            dt = float(_MAX_STEP_MS)
        st.t_last = ts
        if st.t_first < 0:
            st.t_first = ts
        warm = ts - st.t_first >= cfg.warmup_ms
        a_base = -math.expm1(-_LN2 * dt / cfg.baseline_half_life_ms)
        a_dev = -math.expm1(-_LN2 * dt / cfg.scale_half_life_ms)
        values = _values(event)
        d2 = 0.0
        zs: list[float] = [0.0] * _K
        out_range: list[tuple[int, float, str]] = []
        stuck_changed = False
        # locals: this loop is the model's hot path (7 channels a reading)
        prevs, run_start, flats, stucks = st.prev, st.run_start, st.flat, st.stuck
        rbits, counts, bases, devs, res, helds, refs = (
            st.range_bits,
            st.count,
            st.base,
            st.dev,
            st.res,
            st.held_ms,
            st.ref,
        )
        ref_ts = st.ref_ts
        bounds, weights, cap2, mask = self._bounds, self._w, self._cap2, self._mask
        freeze, hold_ms, stuck_p, stuck_min = (
            cfg.freeze_z,
            cfg.hold_ms,
            self._stuck_p,
            cfg.stuck_min_ms,
        )
        for i in range(_K):
            x = values[i]
            if x is None:
                continue
            # -- quantum and flat line --------------------------------------------------------
            prev = prevs[i]
            prevs[i] = x
            moved = prev is None or x != prev
            if moved:
                run_start[i] = ts
                if prev is not None:
                    d = x - prev if x > prev else prev - x
                    if d > EQUAL_REL * (abs(x) + abs(prev)):
                        res[i].step(d)
            p_flat = flats[i].update_p_value(x, None)
            # once stuck, stuck until the value moves (the run's own readings teach the flat
            # line's calibration, which must not clear a fault that is still there)
            was = stucks[i]
            stuck = not moved and (was or (p_flat <= stuck_p and ts - run_start[i] >= stuck_min))
            if stuck != was:
                stucks[i] = stuck
                stuck_changed = True
            # -- range --------------------------------------------------------------------------
            span_lo, span_hi, lim_lo, lim_hi = bounds[i]
            bits = (rbits[i] << 1) & mask
            if x <= span_lo or x >= span_hi:
                bits |= 1
                out_range.append((i, x, "span"))
            elif x < lim_lo or x > lim_hi:
                bits |= 1
                out_range.append((i, x, "limit"))
            rbits[i] = bits
            # -- deviation from the channel's baseline --------------------------------------------
            c = counts[i] + 1
            counts[i] = c
            if c == 1:
                bases[i] = x
                continue
            q = res[i].quantum
            sc = devs[i] * _ABS_TO_SIGMA
            if sc < q:
                sc = q
            if sc <= 0.0:
                sc = 1e-12
            r = x - bases[i]
            z = r / sc
            inv = 1.0 / c
            if c <= _MIN_READINGS:
                bases[i] += inv * r
                devs[i] += inv * ((r if r >= 0.0 else -r) - devs[i])
                continue
            az = z if z >= 0.0 else -z
            ref = refs[i]
            if ref == ref and (x - ref if x >= ref else ref - x) < freeze * sc:
                # back near the level before an accepted change: that level again, no event
                bases[i] = x
                refs[i] = math.nan
                helds[i] = 0.0
                z = az = 0.0
            elif az >= freeze:
                held = helds[i] + dt
                if held >= hold_ms:  # a change that lasts: the new level is the baseline,
                    refs[i] = bases[i]  # and the old one is remembered for the way back
                    ref_ts[i] = ts
                    bases[i] = x
                    held = 0.0
                    z = az = 0.0
                helds[i] = held
            else:
                if ref == ref and ts - ref_ts[i] >= 4 * hold_ms:
                    refs[i] = math.nan  # long settled on the new level: forget the old one
                helds[i] = 0.0
                bases[i] += (inv if inv > a_base else a_base) * r
            rc = 3.0 * sc if az > 3.0 else az * sc
            devs[i] += (inv if inv > a_dev else a_dev) * (rc - devs[i])
            if warm and not stuck:
                zs[i] = z
                z2 = z * z
                d2 += weights[i] * (z2 if z2 < cap2 else cap2)
        out: list[Signal] = []
        self._event(st, event, math.sqrt(d2), zs, out)
        self._range(st, event, out_range, out)
        if stuck_changed or (any(st.stuck) and ts - st.stuck_last_emit >= cfg.refresh_ms):
            self._stuck(st, event, out)
        return out

    # -- the rules ------------------------------------------------------------------------------

    def _signal(
        self,
        rule: str,
        event: Water,
        *,
        active: bool = True,
        level: Level = Level.BLUE,
        score: float = 0.0,
        title: str = "",
        evidence: dict[str, object] | None = None,
    ) -> Signal:
        info = self.stations.get(event.station)
        ev = dict(evidence or {})
        if info is not None and info.name:
            ev["station_name"] = info.name
        elif info is None:
            ev["registered"] = False
        return Signal(
            rule,
            Subject(_SUBJECT, event.station),
            event.ts,
            active=active,
            level=level,
            score=score,
            title=title,
            evidence=ev,
            model=self.model_id,
            lat=info.lat if info else None,
            lon=info.lon if info else None,
            district=info.district or None if info else None,
            grid=info.grid or None if info else None,
        )

    def _event(
        self, st: WaterState, event: Water, dev: float, zs: list[float], out: list[Signal]
    ) -> None:
        cfg = self.cfg
        if dev >= cfg.event_z:
            st.event_hits += 1
            st.event_quiet = 0
        else:
            st.event_hits = 0
            st.event_quiet = st.event_quiet + 1 if dev < 0.5 * cfg.event_z else 0
        if not st.event_on:
            if st.event_hits < cfg.event_m:
                return
            st.event_on = True
        elif st.event_quiet >= cfg.clear_m:
            st.event_on = False
            st.event_last_emit = 0
            out.append(self._signal("water.event", event, active=False))
            return
        if dev < cfg.event_z or event.ts - st.event_last_emit < cfg.refresh_ms:
            return
        st.event_last_emit = event.ts
        moved = sorted(
            (i for i in range(_K) if abs(zs[i]) >= 3.0), key=lambda i: (-abs(zs[i]), CHANNELS[i])
        )
        big = sum(1 for i in moved if abs(zs[i]) >= cfg.red_channels_z)
        top = abs(zs[moved[0]]) if moved else 0.0
        if top >= cfg.red_z or big >= 3:
            level = Level.RED
        elif top >= cfg.orange_z or big >= 2:
            level = Level.ORANGE
        else:
            level = Level.YELLOW
        values = _values(event)
        evidence: dict[str, object] = {
            "deviation": round(dev, 1),
            "channels": sorted(CHANNELS[i] for i in moved),
        }
        for i in moved:
            x = values[i]
            if x is None:  # pragma: no cover - a channel moved only with a value
                continue
            evidence[CHANNELS[i]] = {
                "value": x,
                "baseline": _round(st.base[i]),
                "change": _round(x - st.base[i]),
                "z": round(zs[i], 1),
            }
        names = "、".join(LABEL_ZH[CHANNELS[i]] for i in moved[:3])
        title = f"水质异常：{names}{'同时' if len(moved) > 1 else ''}突变" if names else "水质异常"
        out.append(
            self._signal(
                "water.event",
                event,
                level=level,
                score=dev * dev / (dev * dev + cfg.event_z * cfg.event_z),
                title=title,
                evidence=evidence,
            )
        )

    def _range(
        self,
        st: WaterState,
        event: Water,
        outside: list[tuple[int, float, str]],
        out: list[Signal],
    ) -> None:
        cfg = self.cfg
        st.range_inside = 0 if outside else st.range_inside + 1
        if st.range_on:
            if st.range_inside >= cfg.range_clear:
                st.range_on = False
                st.range_last_emit = 0
                out.append(self._signal("water.range", event, active=False))
                return
        else:
            hits = [i for i, _, _ in outside if st.range_bits[i].bit_count() >= cfg.range_m]
            if not hits:
                return
            st.range_on = True
        if not outside or event.ts - st.range_last_emit < cfg.refresh_ms:
            return
        st.range_last_emit = event.ts
        worst = Level.YELLOW
        evidence: dict[str, object] = {"channels": sorted(CHANNELS[i] for i, _, _ in outside)}
        for i, x, check in outside:
            ch = CHANNELS[i]
            lo, hi = (self._span if check == "span" else self._limits)[i]
            limit = lo if lo is not None and x <= lo else hi
            level = Level.ORANGE if check == "span" else _limit_level(ch, x, lo, hi)
            worst = max(worst, level)
            evidence[ch] = {"value": x, "limit": limit, "check": check}
        names = "、".join(LABEL_ZH[CHANNELS[i]] for i, _, _ in outside[:3])
        spans = all(check == "span" for _, _, check in outside)
        title = f"{names}读数超出仪表量程" if spans else f"水质超标：{names}"
        out.append(self._signal("water.range", event, level=worst, score=1.0, title=title,
                                evidence=evidence))  # fmt: skip

    def _stuck(self, st: WaterState, event: Water, out: list[Signal]) -> None:
        stuck = [i for i in range(_K) if st.stuck[i]]
        if not stuck:
            st.stuck_last_emit = 0
            out.append(self._signal("water.stuck", event, active=False))
            return
        st.stuck_last_emit = event.ts
        evidence: dict[str, object] = {"channels": [CHANNELS[i] for i in stuck]}
        for i in stuck:
            evidence[CHANNELS[i]] = {
                "value": st.prev[i],
                "minutes": round((event.ts - st.run_start[i]) / 60_000),
            }
        names = "、".join(LABEL_ZH[CHANNELS[i]] for i in stuck)
        out.append(
            self._signal(
                "water.stuck", event, level=Level.BLUE, score=1.0, title=f"{names}数据卡滞",
                evidence=evidence,
            )
        )  # fmt: skip


def _lo(v: float | None) -> float:
    return -math.inf if v is None else v


def _hi(v: float | None) -> float:
    return math.inf if v is None else v


def _values(event: Water) -> tuple[float | None, ...]:
    return (
        event.temp_c,
        event.ph,
        event.conductivity_us_cm,
        event.turbidity_ntu,
        event.chlorine_mg_l,
        event.redox_mv,
        event.flow_m3_h,
    )


def _round(v: float) -> float:
    """Four significant digits: evidence a person reads."""
    return float(f"{v:.4g}")


def _limit_level(channel: str, x: float, lo: float | None, hi: float | None) -> Level:
    """Yellow just outside a limit, orange well outside, red far outside; a lost disinfectant
    residual is at least orange."""
    if lo is not None and hi is not None:
        width = hi - lo
    else:
        one = hi if hi is not None else lo
        width = abs(one) if one is not None else 0.0
    excess = (lo - x) if lo is not None and x < lo else (x - hi if hi is not None else 0.0)
    rel = excess / width if width else 1.0
    level = Level.RED if rel >= 0.5 else Level.ORANGE if rel >= 0.1 else Level.YELLOW
    if channel == "chlorine_mg_l" and lo is not None and x < lo:
        level = max(level, Level.ORANGE)
    return level
