"""The water kind through the real city flow: decoder, dead letters, the water model, Redis."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest
import redis
from bytewax.testing import run_main

from citywatch.alerts import Alert
from citywatch.events import Water, encode
from citywatch.registry import Registry, WaterStation
from citywatch.settings import Settings
from flows.run import RunOptions, build_city_flow
from tests.flows.conftest import counts
from tests.models.water.test_model import MIN, T0, quiet

pytestmark = pytest.mark.integration

BAD = [
    b'{"kind":"water","ts":1793584800000,"station":"WS1","ph":15.2}',
    b'{"kind":"water","ts":1793584800000,"station":"WS1","turbidity_ntu":"cloudy"}',
    b'{"kind":"water","ts":1793584800000,"ph":7.2}',
]


def records() -> list[bytes]:
    """Ten quiet hours of one plant outlet, then 40 minutes of contamination, then quiet."""
    rng = random.Random(3)
    out = []
    for m in range(12 * 60):
        vals = quiet(m, rng)
        if 10 * 60 <= m < 10 * 60 + 40:
            vals.update(turbidity_ntu=0.48, conductivity_us_cm=460.0, chlorine_mg_l=0.35)
        out.append(encode(Water(ts=T0 + m * MIN, station="WS1", **vals)))
    return out


def test_water_readings_raise_a_water_event_and_bad_ones_are_dead_letters(
    tmp_path: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    assert settings.redis_url is not None
    reg = Registry(
        water_stations={
            "WS1": WaterStation(
                id="WS1", name="狼山水厂出厂水", lat=31.95, lon=120.88, district="崇川区",
                kind="plant",
            )
        },
        region=(31.6, 32.7, 120.2, 121.9),
    )  # fmt: skip
    reg.dump(tmp_path / "registry")
    good = records()
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(good[:300] + BAD + good[300:]) + b"\n")
    opts = RunOptions(
        source="files",
        paths=(str(tmp_path / "in.jsonl"),),
        registry_dir=str(tmp_path / "registry"),
        domain="water",
        speed=None,
        run_id="water",
    )
    run_main(build_city_flow(opts, settings.with_(batch_size=200), settings.redis_url))

    keys = settings.keys
    alerts = [Alert.from_json(f[b"a"]) for _, f in redis_client.xrange(keys.alerts)]
    events = [a for a in alerts if a.rule == "water.event"]
    assert events, [a.rule for a in alerts]
    first = events[0]
    assert first.subject.kind == "water_station"
    assert first.subject.id == "WS1"
    assert first.district == "崇川区"
    assert T0 + 600 * MIN <= first.first_ts <= T0 + 606 * MIN
    assert "turbidity_ntu" in first.evidence["channels"]
    assert events[-1].state.value == "resolved"

    c = counts(redis_client, keys)
    assert c["in:water"] == len(good)
    assert sum(v for k, v in c.items() if k.startswith("dead:")) == len(BAD)
    reasons = {f[b"reason"].decode() for _, f in redis_client.xrange(keys.deadletter)}
    assert any(r.startswith("ph: expected `float` <= 14.0") for r in reasons), reasons
    assert any(r.startswith("turbidity_ntu: expected `float | null`") for r in reasons), reasons
    assert any("station: missing required field" in r for r in reasons), reasons
    decoded = msgspec.json.decode(good[0], type=Water)
    assert decoded.station == "WS1"
