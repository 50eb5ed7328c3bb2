"""Our Prometheus endpoint: ``cw:counts`` as text exposition on ``settings.metrics_port``.

Counters come from Redis (written idempotently by the sink, summed over all processes):
``citywatch_records_total``, ``citywatch_input_total{kind}``,
``citywatch_deadletters_total{reason}``, ``citywatch_alerts_total{rule,level}``, and gauges
``citywatch_event_time_lag_seconds`` and ``citywatch_watermark_ms``, and the alert engine's
``citywatch_engine_signals_total{outcome}`` (signals, inhibited, silenced, resolved; summed
over the engine shards' ``engine:<shard>:<outcome>`` fields). Bytewax's own endpoint
(``BYTEWAX_DATAFLOW_API_ENABLED=1``, port 3030) serves the dataflow's internals.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

from citywatch.settings import Settings

__all__ = ["render", "serve_metrics"]


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
