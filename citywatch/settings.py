"""Typed settings, read in one place: defaults < TOML file < environment.

The TOML file is named by ``--config`` or ``CITYWATCH_CONFIG``; its keys are the field names
below (a ``[citywatch]`` table or top level). Environment variables are ``CW_<FIELD>`` in upper
case, plus the conventional ``REDIS_URL``. Lists in the environment are comma-separated.

>>> s = Settings.load(env={"CW_PREFIX": "t1:", "CW_FEED_PORT": "9000"})
>>> s.prefix, s.feed_port, s.keys.alerts
('t1:', 9000, 't1:alerts')
>>> Settings.load(env={"CW_FEED_PORT": "nine"})
Traceback (most recent call last):
...
citywatch.errors.ConfigError: feed_port: expected an integer, got 'nine' (from CW_FEED_PORT)
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from citywatch.errors import ConfigError
from citywatch.events import Region
from citywatch.keys import Keys
from citywatch.tiers import parse_rule_tiers, parse_tier_seconds

__all__ = ["DEFAULT_DEPARTMENTS", "Settings", "read_toml"]

#: The departments a work order may be dispatched to (Nantong's, by default).
DEFAULT_DEPARTMENTS: tuple[str, ...] = (
    "生态环境局",
    "应急管理局",
    "交通运输局",
    "住房和城乡建设局",
    "城市管理局",
    "公安局",
    "市场监督管理局",
    "水利局",
    "属地街道",
)


@dataclass(frozen=True, slots=True)
class Settings:
    #: ``redis://[user:password@]host:port/db`` or ``rediss://`` for TLS; unset = embedded.
    redis_url: str | None = None
    #: Prefix of every Redis key (the Redis layout in docs/contracts.md).
    prefix: str = "cw:"
    #: The region box: lat_min, lat_max, lon_min, lon_max; None (default): from the registry
    #: (its ``region`` entry, else its entities' bounding box: ``citywatch.registry.region_for``).
    region: tuple[float, ...] | None = None
    #: Reject a ``ts`` more than this many hours ahead of the newest seen.
    future_tolerance_h: float = 24.0
    #: Late events within this many seconds of the event-time watermark are still processed.
    lateness_s: float = 600.0
    #: Bytewax epoch (snapshot interval) in seconds.
    epoch_s: float = 10.0
    #: Source batch size (per-item overhead dominates small batches: docs/performance.md).
    batch_size: int = 4000
    #: Approximate MAXLEN of the alert and dead-letter streams.
    alerts_maxlen: int = 200_000
    deadletter_maxlen: int = 100_000
    #: Where generated registries, caches and recovery partitions live by default.
    data_dir: Path = Path("var")
    recovery_dir: Path | None = None
    #: Websocket feed and console.
    feed_host: str = "127.0.0.1"
    feed_port: int = 8765
    #: Development tokens: each logs in as an administrator, only over a direct loopback
    #: connection; ``citywatch serve`` refuses a non-loopback host while any is set.
    feed_tokens: tuple[str, ...] = ("dev-token",)
    feed_origins: tuple[str, ...] = ()
    feed_queue: int = 1000
    feed_max_message: int = 65_536
    feed_auth_timeout_s: float = 5.0
    feed_heartbeat_s: float = 15.0
    #: A client whose socket does not take a message within this many seconds is closed (1013).
    feed_send_timeout_s: float = 10.0
    #: Work-order deadlines: sign-off and handling (docs/protocol.md).
    signoff_deadline_s: float = 1800.0
    handling_deadline_s: float = 7 * 86_400.0
    #: Prometheus endpoint for our metrics (0 = off).
    metrics_port: int = 0
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    #: Search index: unset = a SQLite file under data_dir; a path; a postgresql:// URL; "off".
    search_url: str | None = None
    #: Redis unreachable at start: retry this often (0.25 s growing to 2 s; 10 = about 16 s).
    redis_retries: int = 10
    #: Redis gone mid-run: the sink holds its batch and retries this long, then the run fails.
    redis_outage_s: float = 300.0
    #: Who may log in to the feed (docs/protocol.md); unset = ``<data_dir>/users.json``.
    users_file: Path | None = None
    #: Departments a work order may be dispatched to, and that handlers belong to.
    departments: tuple[str, ...] = DEFAULT_DEPARTMENTS
    #: A record equal to one of its partition's last this many is dead-lettered as a
    #: duplicate (at-least-once producers and brokers); 0 = off.
    dedupe_window: int = 10_000
    #: Which tier's centre gets a rule's work orders, over ``citywatch.tiers.DEFAULT_RULE_TIERS``:
    #: ``rule=tier`` or ``family.=tier`` entries (``hotline.=county``, ``air.episode=city``).
    rule_tiers: tuple[str, ...] = ()
    #: Per-tier deadlines, ``tier=seconds`` (``town=900``); a tier not listed uses
    #: ``signoff_deadline_s`` / ``handling_deadline_s``.
    tier_signoff_deadline_s: tuple[str, ...] = ()
    tier_handling_deadline_s: tuple[str, ...] = ()
    #: Reports: the local time of period boundaries, as hours east of UTC (Asia/Shanghai: 8).
    report_utc_offset_h: float = 8.0
    #: ``citywatch run`` writes the previous day's report when event time passes this local
    #: hour (0-23) of a new day; unset = no daily report.
    report_hour: int | None = None
    #: Where daily reports go (one directory per day); unset = ``<data_dir>/reports``.
    report_dir: Path | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.region is not None:
            if len(self.region) != 4:
                msg = (
                    "region: expected 4 numbers lat_min,lat_max,lon_min,lon_max, "
                    f"got {self.region!r}"
                )
                raise ConfigError(msg)
            lat0, lat1, lon0, lon1 = self.region
            if not (-90 <= lat0 < lat1 <= 90 and -180 <= lon0 < lon1 <= 180):
                msg = f"region: {self.region!r} is not lat_min < lat_max, lon_min < lon_max"
                raise ConfigError(msg)
        for name in ("epoch_s", "batch_size", "alerts_maxlen", "feed_queue", "feed_max_message"):
            if getattr(self, name) <= 0:
                msg = f"{name}: must be > 0, got {getattr(self, name)!r}"
                raise ConfigError(msg)
        if not 0 <= self.feed_port <= 65535:
            msg = f"feed_port: {self.feed_port} is not a TCP port"
            raise ConfigError(msg)
        if self.redis_retries < 0 or self.redis_outage_s <= 0:
            msg = (
                f"redis_retries/redis_outage_s: must be >= 0 and > 0, got "
                f"{self.redis_retries!r}/{self.redis_outage_s!r}"
            )
            raise ConfigError(msg)
        if any(not t for t in self.feed_tokens):
            msg = "feed_tokens: empty token"
            raise ConfigError(msg)
        if self.feed_send_timeout_s <= 0:
            msg = f"feed_send_timeout_s: must be > 0, got {self.feed_send_timeout_s!r}"
            raise ConfigError(msg)
        if not self.departments or any(
            not d or len(d) > 64 or not d.isprintable() for d in self.departments
        ):
            msg = f"departments: expected 1-64 printable characters each, got {self.departments!r}"
            raise ConfigError(msg)
        for name, parse in (
            ("rule_tiers", parse_rule_tiers),
            ("tier_signoff_deadline_s", parse_tier_seconds),
            ("tier_handling_deadline_s", parse_tier_seconds),
        ):
            try:
                parse(getattr(self, name))
            except ValueError as exc:
                msg = f"{name}: {exc}"
                raise ConfigError(msg) from exc
        if self.report_hour is not None and not 0 <= self.report_hour <= 23:
            msg = f"report_hour: expected an hour 0-23, got {self.report_hour!r}"
            raise ConfigError(msg)
        if not -12 <= self.report_utc_offset_h <= 14:
            msg = f"report_utc_offset_h: expected -12..14 hours, got {self.report_utc_offset_h!r}"
            raise ConfigError(msg)

    @property
    def reports_path(self) -> Path:
        """Where daily reports go: ``report_dir``, else ``<data_dir>/reports``."""
        return self.report_dir if self.report_dir is not None else self.data_dir / "reports"

    @property
    def keys(self) -> Keys:
        return Keys(self.prefix)

    @property
    def region_box(self) -> Region | None:
        """The region set here, or None: then it comes from the registry."""
        return None if self.region is None else Region(*self.region)

    @property
    def users_path(self) -> Path:
        """The users file: ``users_file``, else ``<data_dir>/users.json``."""
        return self.users_file if self.users_file is not None else self.data_dir / "users.json"

    @property
    def future_tolerance_ms(self) -> int:
        return int(self.future_tolerance_h * 3_600_000)

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated."""
        return replace(self, **changes)

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
        """Defaults, then the TOML file (``path`` or ``CITYWATCH_CONFIG``), then ``CW_*``."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = path or env.get("CITYWATCH_CONFIG")
        if path:
            values.update(_read_toml(Path(path)))
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name == "extra":
                continue
            var = "REDIS_URL" if f.name == "redis_url" else f"CW_{f.name.upper()}"
            if f.name == "redis_url" and "CW_REDIS_URL" in env:
                var = "CW_REDIS_URL"
            if var in env:
                values[f.name] = _coerce(f.name, hints[f.name], env[var], var)
            elif f.name in values:
                values[f.name] = _coerce(f.name, hints[f.name], values[f.name], str(path))
        if values.get("redis_url") == "":
            values["redis_url"] = None
        return cls(**values)


def read_toml(path: Path, what: str = "config") -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed one is a ConfigError prefixed ``what``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        msg = f"{what}: file {str(path)!r} not found"
        raise ConfigError(msg) from exc
    except tomllib.TOMLDecodeError as exc:
        msg = f"{what}: {path}: {exc}"
        raise ConfigError(msg) from exc


def _read_toml(path: Path) -> dict[str, Any]:
    data = read_toml(path)
    table = data.get("citywatch", data)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(table) - known)
    if unknown:
        msg = f"config: {path}: unknown setting(s) {', '.join(unknown)}"
        raise ConfigError(msg)
    return dict(table)


def _coerce(name: str, hint: Any, value: Any, origin: str) -> Any:
    """Turn an env string or TOML value into the field's type, or raise a clear ConfigError."""
    args = typing.get_args(hint)
    is_optional = isinstance(hint, types.UnionType) and type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if is_optional else hint
    if is_optional and value in ("", None):
        return None
    origin_t = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            return _parse_bool(str(value))
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is Path:
            return Path(str(value))
        if base is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if origin_t is tuple:
            items = value.split(",") if isinstance(value, str) else list(value)
            item_t = typing.get_args(base)[0]
            items = [i.strip() if isinstance(i, str) else i for i in items]
            items = [i for i in items if i != ""]
            return tuple(float(i) if item_t is float else str(i) for i in items)
    except (TypeError, ValueError) as exc:
        kind = {int: "an integer", float: "a number", bool: "a boolean"}.get(base, str(base))
        msg = f"{name}: expected {kind}, got {value!r} (from {origin})"
        raise ConfigError(msg) from exc
    return value


def _parse_bool(s: str) -> bool:
    low = s.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(s)
