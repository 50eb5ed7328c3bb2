"""Sources against the real services: MQTT (local Mosquitto), Redis Streams, files."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis
from paho.mqtt.enums import CallbackAPIVersion

from citywatch.settings import Settings
from flows.sources.files import FileSource
from flows.sources.iterable import IterableSource, parse_speed
from flows.sources.mqtt import MqttSource
from flows.sources.redis_streams import RedisStreamSource
from tests.flows.conftest import counts, final_alerts, run_flow
from tests.flows.toy import scenario

pytestmark = pytest.mark.integration

BROKER = ("127.0.0.1", 1883)


def _client(client_id: str, *, clean: bool) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    c.connect(*BROKER, keepalive=10)
    c.loop_start()
    return c


def _broker_up() -> bool:
    import socket

    try:
        socket.create_connection(BROKER, timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _broker_up(), reason="no MQTT broker at 127.0.0.1:1883")
def test_mqtt_ingest_with_a_persistent_session(
    settings: Settings, redis_client: redis.Redis
) -> None:
    recs = scenario(stations=3, minutes=80)
    ref = settings.with_(prefix=settings.prefix + "ref:")
    run_flow(IterableSource(lambda: iter(recs)), ref)

    root = f"cwtest-{uuid.uuid4().hex[:8]}"
    client_id = f"{root}-flow"
    topic = f"{root}/+/+/+"
    # Register the flow's persistent session, so the broker queues what is published next.
    sub = _client(client_id, clean=False)
    sub.subscribe(topic, qos=1)[1]
    sub.loop_stop()
    sub.disconnect()
    pub = _client(f"{root}-pub", clean=True)
    try:
        for r in recs:
            station = r.split(b'"station":"')[1].split(b'"')[0].decode()
            pub.publish(f"{root}/air/崇川区/{station}", r, qos=1).wait_for_publish(5)
    finally:
        pub.loop_stop()
        pub.disconnect()
    try:
        mq = MqttSource(settings.mqtt_url, client_id=client_id, topic=topic, idle_stop_s=1.0)
        run_flow(mq, settings)
    finally:
        _client(client_id, clean=True).disconnect()  # drop the broker's session
    assert final_alerts(redis_client, settings.keys) == final_alerts(redis_client, ref.keys)
    c = counts(redis_client, settings.keys)
    assert c["in:air"] >= len(recs)  # QoS 1: duplicates are possible, losses are not


def test_redis_streams_partitioned_and_resumed(
    settings: Settings, redis_client: redis.Redis
) -> None:
    recs = scenario(stations=4, minutes=80)
    ref = settings.with_(prefix=settings.prefix + "ref:")
    run_flow(IterableSource(lambda: iter(recs)), ref)
    keys = settings.keys
    for r in recs:
        station = int(r.split(b'"station":"S')[1].split(b'"')[0])
        redis_client.xadd(keys.inbound("air", station % 2), {"r": r})
    redis_client.xadd(keys.inbound("gps"), {"r": b"{broken"})
    redis_client.xadd(keys.inbound("gps"), {"x": b"no r field"})
    src = RedisStreamSource(settings.redis_url or "", keys, idle_stop_s=0.5)
    assert src.list_parts() == [
        f"redis:{keys.inbound('air', 0)}",
        f"redis:{keys.inbound('air', 1)}",
        f"redis:{keys.inbound('gps')}",
    ]
    assert RedisStreamSource(settings.redis_url or "", keys, kinds=("gps",)).list_parts() == [
        f"redis:{keys.inbound('gps')}"
    ]
    run_flow(src, settings)
    assert final_alerts(redis_client, keys) == final_alerts(redis_client, ref.keys)
    c = counts(redis_client, keys)
    assert (c["in:air"], c["records"], c["dead:invalid_json"]) == (len(recs), len(recs) + 2, 2)
    # A reader opened at a stored position reads only what follows it.
    last = redis_client.xrevrange(keys.inbound("air", 0), count=2)[1][0].decode()
    reader = src.open(f"redis:{keys.inbound('air', 0)}", last)
    assert len(reader.read(1000)) == 1
    reader.close()


def test_file_source_resumes_at_its_position(tmp_path: Path) -> None:
    lines = [f'{{"n":{i}}}'.encode() for i in range(10)]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n\n")
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    src = FileSource([str(tmp_path / "*.jsonl*")])
    assert src.list_parts() == [f"file:{tmp_path}/a.jsonl", f"file:{tmp_path}/b.jsonl.gz"]
    for part in src.list_parts():
        r = src.open(part, None)
        assert r.read(4) == lines[:4]
        pos = r.position()
        r.close()
        r2 = src.open(part, pos)
        assert r2.read(100) == lines[4:]
        with pytest.raises(StopIteration):
            r2.read(100)
        r2.close()


def test_iterable_source_partitions_by_entity_and_paces() -> None:
    recs = scenario(stations=5, minutes=3)
    src = IterableSource(lambda: iter(recs), partitions=2)
    got = [src.open(p, None).read(1000) for p in src.list_parts()]
    assert sorted(got[0] + got[1]) == sorted(recs)
    stations = [{r.split(b'"station":')[1][:4] for r in g} for g in got]
    assert not stations[0] & stations[1]
    now = [1000.0]
    paced = IterableSource(lambda: iter(recs), speed=60.0, clock=lambda: now[0])
    r = paced.open(paced.list_parts()[0], None)
    assert len(r.read(1000)) == 5  # minute 0 only: minute 1 is due 1 s later at 60x
    now[0] += 1.0
    assert len(r.read(1000)) == 5
    assert r.next_awake() is not None
    assert parse_speed("max") is None
    with pytest.raises(ValueError, match="speed"):
        parse_speed("fast")


def test_preroll_replays_records_before_the_anchor_at_once_then_paces() -> None:
    recs = scenario(stations=5, minutes=4)  # minutes 0..3, 60 s apart
    first_ts = int(recs[0].split(b'"ts":')[1].split(b",")[0])
    now = [50.0]
    live = IterableSource(
        lambda: iter(recs), speed=1.0, clock=lambda: now[0], anchor_ts=first_ts + 120_000
    )
    r = live.open(live.list_parts()[0], None)
    assert len(r.read(1000)) == 15  # minutes 0, 1 and 2 are at or before the anchor
    assert r.read(1000) == []  # minute 3 is due 60 s of wall time later
    now[0] += 60.0
    assert len(r.read(1000)) == 5


def test_a_directory_of_truth_alone_is_an_error(tmp_path: Path) -> None:
    from citywatch.errors import ConfigError
    from flows.sources.files import expand_paths

    (tmp_path / "labels.jsonl").write_bytes(b'{"rule":"air.spike"}\n')
    with pytest.raises(ConfigError, match=r"no \.jsonl or \.jsonl\.gz record file"):
        expand_paths([str(tmp_path)])
    (tmp_path / "part-000.jsonl").write_bytes(b"{}\n")
    assert expand_paths([str(tmp_path)]) == [str(tmp_path / "part-000.jsonl")]
    # a file named explicitly is taken as it is
    assert expand_paths([str(tmp_path / "labels.jsonl")]) == [str(tmp_path / "labels.jsonl")]
