from __future__ import annotations

import pytest
import redis

from citywatch.errors import ConfigError, StoreError
from citywatch.redisconn import EmbeddedRedis, connect, embedded_or_url, redact


@pytest.mark.integration
def test_embedded_server_is_a_real_redis_and_stops() -> None:
    with EmbeddedRedis() as server:
        assert server.url is not None
        client = connect(server.url)
        client.xadd("cw:alerts", {"a": b"{}"})
        assert client.xlen("cw:alerts") == 1
        assert client.info()["redis_version"]
        url = server.url
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_timeout=0.5).ping()


@pytest.mark.integration
def test_embedded_or_url_prefers_the_url(redis_url: str) -> None:
    with embedded_or_url(redis_url) as url:
        assert url == redis_url
    with embedded_or_url(None) as url:
        assert url != redis_url
        assert connect(url).ping()


@pytest.mark.integration
def test_connect_to_the_real_redis(redis_client: redis.Redis, redis_url: str, prefix: str) -> None:
    client = connect(redis_url)
    client.set(f"{prefix}x", b"1")
    assert redis_client.get(f"{prefix}x") == b"1"


def test_unreachable_is_a_store_error_without_the_password() -> None:
    with pytest.raises(StoreError) as info:
        connect("redis://user:s3cret@127.0.0.1:1/0", socket_timeout=0.5)
    assert "s3cret" not in str(info.value)
    assert "user:***@" in str(info.value)


def test_bad_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="redis_url"):
        connect("http://127.0.0.1:6379")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://u:pw@h:1/0", "redis://u:***@h:1/0"),
        ("rediss://:pw@h:1", "rediss://:***@h:1"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
