"""Our Prometheus endpoint: ``cw:counts`` as text exposition on ``settings.metrics_port``.

Counters come from Redis (written idempotently by the sink, summed over all processes):
``citywatch_records_total``, ``citywatch_input_total{kind}``,
``citywatch_deadletters_total{reason}``, ``citywatch_alerts_total{rule,level}``, and gauges
``citywatch_event_time_lag_seconds`` and ``citywatch_watermark_ms``, and the alert engine's
``citywatch_engine_signals_total{outcome}`` (signals, inhibited, silenced, resolved, reopened;
summed over the engine shards' ``engine:<shard>:<outcome>`` fields). Bytewax's own endpoint
(``BYTEWAX_DATAFLOW_API_ENABLED=1``, port 3030) serves the dataflow's internals.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import redis

from citywatch.settings import Settings

__all__ = ["Totals", "read_counts", "render", "serve_metrics"]


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(counts: dict[bytes, bytes]) -> str:
    """Prometheus text for a ``cw:counts`` hash.

    >>> print(render({b"in:air": b"3", b"alerts:air.spike:red": b"1", b"lag_ms": b"1500"}))
    # TYPE citywatch_alerts_total counter
    citywatch_alerts_total{rule="air.spike",level="red"} 1
    # TYPE citywatch_input_total counter
    citywatch_input_total{kind="air"} 3
    # TYPE citywatch_event_time_lag_seconds gauge
    citywatch_event_time_lag_seconds 1.5
    <BLANKLINE>
    """
    series: dict[str, list[str]] = {}
    types: dict[str, str] = {}

    def add(name: str, kind: str, line: str) -> None:
        types[name] = kind
        series.setdefault(name, []).append(line)

    engine: dict[str, int] = {}
    for raw_field, raw_value in sorted(counts.items()):
        f, v = raw_field.decode(), raw_value.decode()
        if f.startswith("engine:"):
            stat = f.rsplit(":", 1)[1]
            engine[stat] = engine.get(stat, 0) + int(v)
            continue
        if f == "records":
            add("citywatch_records_total", "counter", f"citywatch_records_total {v}")
        elif f.startswith("in:"):
            name = "citywatch_input_total"
            add(name, "counter", f'{name}{{kind="{_esc(f[3:])}"}} {v}')
        elif f.startswith("dead:"):
            name = "citywatch_deadletters_total"
            add(name, "counter", f'{name}{{reason="{_esc(f[5:])}"}} {v}')
        elif f.startswith("alerts:") and f.count(":") >= 2:
            rule, level = f[7:].rsplit(":", 1)
            name = "citywatch_alerts_total"
            add(name, "counter", f'{name}{{rule="{_esc(rule)}",level="{_esc(level)}"}} {v}')
        elif f == "lag_ms":
            name = "citywatch_event_time_lag_seconds"
            add(name, "gauge", f"{name} {int(v) / 1000}")
        elif f == "watermark_ms":
            add("citywatch_watermark_ms", "gauge", f"citywatch_watermark_ms {v}")
    for stat, total in sorted(engine.items()):
        name = "citywatch_engine_signals_total"
        add(name, "counter", f'{name}{{outcome="{_esc(stat)}"}} {total}')
    lines: list[str] = []
    for name, rows in series.items():
        lines.append(f"# TYPE {name} {types[name]}")
        lines.extend(rows)
    return "\n".join(lines) + "\n"


def serve_metrics(url: str, settings: Settings) -> ThreadingHTTPServer:
    """Serve ``/metrics`` on ``settings.metrics_port`` in a daemon thread; ``shutdown()`` stops."""
    client = redis.Redis.from_url(url, socket_timeout=2.0)
    key = settings.keys.counts

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            try:
                body = render(client.hgetall(key)).encode()  # type: ignore[arg-type]
            except redis.RedisError as exc:
                self.send_error(503, f"redis: {type(exc).__name__}")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((settings.feed_host, settings.metrics_port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server


@dataclass(frozen=True, slots=True)
class Totals:
    """What one run added to ``cw:counts``: the flow's own accounting, as written."""

    records: int
    valid: int
    #: Dead letters by reason class (the field, ``late``, ``invalid_json``, ...).
    dead: dict[str, int]
    #: Alerts raised by rule: an alert counts once for each level it reaches.
    alerts: dict[str, int]

    @classmethod
    def between(cls, before: dict[str, int], after: dict[str, int]) -> Totals:
        """The difference of two readings of ``cw:counts`` (see :func:`read_counts`)."""

        def grown(prefix: str) -> dict[str, int]:
            out: dict[str, int] = {}
            for f, v in after.items():
                if f.startswith(prefix):
                    d = v - before.get(f, 0)
                    if d:
                        out[f[len(prefix) :]] = d
            return out

        alerts: dict[str, int] = {}
        for f, v in grown("alerts:").items():
            rule = f.rsplit(":", 1)[0]
            alerts[rule] = alerts.get(rule, 0) + v
        return cls(
            records=after.get("records", 0) - before.get("records", 0),
            valid=sum(grown("in:").values()),
            dead=grown("dead:"),
            alerts=alerts,
        )

    @classmethod
    def say(cls, before: dict[str, int] | None, after: dict[str, int] | None, dt: float) -> str:
        """:meth:`line` for two readings of :func:`read_counts`, or why there is none."""
        if before is None or after is None:
            return "no totals (Redis did not answer)"
        return cls.between(before, after).line(dt)

    def line(self, elapsed_s: float, *, top: int = 4) -> str:
        """One line: records, valid, dead letters by reason, alerts by rule, time and rate.

        >>> t = Totals(1003, 1000, {"late": 2, "pm25": 1}, {"air.spike": 3})
        >>> for part in t.line(2.0).split("; "):
        ...     print(part)
        1,003 records: 1,000 valid, 3 dead letters (late 2, pm25 1)
        alerts raised: air.spike 3
        2.0 s, 502 records/s
        """
        n_dead = sum(self.dead.values())
        text = f"{self.records:,} records: {self.valid:,} valid, {n_dead:,} dead letters"
        if self.dead:
            text += f" ({_top(self.dead, top, 'reasons')})"
        if self.alerts:
            text += f"; alerts raised: {_top(self.alerts, top, 'rules')}"
        else:
            text += "; no alerts raised"
        rate = self.records / elapsed_s if elapsed_s > 0 else 0.0
        return f"{text}; {elapsed_s:.1f} s, {rate:,.0f} records/s"


def _top(counts: dict[str, int], n: int, what: str) -> str:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = ", ".join(f"{k} {v:,}" for k, v in ranked[:n])
    rest = len(ranked) - n
    return f"{shown}, {rest} more {what}" if rest > 0 else shown


def read_counts(url: str, settings: Settings) -> dict[str, int] | None:
    """``cw:counts`` now, as field -> integer (gauges included; :class:`Totals` ignores them);
    None when Redis does not answer."""
    client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        raw: Any = client.hgetall(settings.keys.counts)
    except redis.RedisError:
        return None
    finally:
        client.close()
    out: dict[str, int] = {}
    for f, v in raw.items():
        with contextlib.suppress(ValueError):
            out[f.decode()] = int(v)
    return out
