from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from citywatch.errors import ConfigError, StoreError
from citywatch.processes import free_port
from citywatch.redisconn import (
    EmbeddedRedis,
    connect,
    embedded_or_url,
    publish_demo_redis,
    redact,
    require_url,
    wait_for,
    where,
)
from citywatch.settings import Settings


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


# -- failure paths: the URL's form, credentials, database, a server that is not there ---------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://x", "is not a redis://, rediss:// or unix:// URL"),
        ("redis://127.0.0.1:notaport/0", "the port is not a number"),
        ("redis://127.0.0.1:6379/abc", "the database 'abc' is not a number"),
        ("unix://", "names no socket path"),
        ("redis:///0", "names no host"),
    ],
)
def test_a_malformed_url_is_a_config_error_naming_the_setting(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match="redis_url") as info:
        wait_for(url, retries=3, say=_fail_on_wait)
    assert words in str(info.value)
    assert "(from REDIS_URL)" in str(info.value)


def _fail_on_wait(line: str) -> None:  # pragma: no cover - called only on a wrong path
    raise AssertionError(f"waited for a URL no wait can fix: {line}")


def test_an_unreachable_server_is_waited_for_visibly_then_a_store_error() -> None:
    port = free_port()
    said: list[str] = []
    slept: list[float] = []
    with pytest.raises(StoreError) as info:
        wait_for(
            f"redis://u:s3cret@127.0.0.1:{port}/0", retries=3, say=said.append, sleep=slept.append
        )
    assert said == [
        f"waiting for Redis at 127.0.0.1:{port} (connection refused), retry {i}/3"
        for i in (1, 2, 3)
    ]
    assert slept == [0.25, 0.5, 1.0]  # growing, bounded
    msg = str(info.value)
    assert f"cannot reach Redis at 127.0.0.1:{port} (connection refused) after 3 retries" in msg
    assert "s3cret" not in msg


def test_a_server_that_comes_up_while_waited_for_is_used() -> None:
    port = free_port()
    server = EmbeddedRedis(port=port)
    said: list[str] = []

    def start_on_first_wait(seconds: float) -> None:
        if server.url is None:
            server.start()

    try:
        client = wait_for(
            f"redis://127.0.0.1:{port}/0", retries=2, say=said.append, sleep=start_on_first_wait
        )
        assert client.ping()
        client.close()
    finally:
        server.stop()
    assert len(said) == 1


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[str]:
    """A private redis-server that wants a password (``pw``)."""
    with EmbeddedRedis(args=("--requirepass", "pw")) as server:
        yield server.start_url


@pytest.mark.integration
@pytest.mark.parametrize(
    ("creds", "db", "words"),
    [
        ("", "0", "requires a password: put it in REDIS_URL"),
        (":wrong@", "0", "refused the user or password in REDIS_URL"),
        ("bob:wrong@", "0", "refused the user or password in REDIS_URL"),
        (":pw@", "99", "has no database 99"),
    ],
)
def test_wrong_password_or_database_is_a_config_error_at_once(
    locked_redis: str, creds: str, db: str, words: str
) -> None:
    hostport = where(locked_redis)
    with pytest.raises(ConfigError) as info:
        wait_for(f"redis://{creds}{hostport}/{db}", retries=3, say=_fail_on_wait)
    assert words in str(info.value)
    assert "wrong" not in str(info.value).replace("refused the", "")  # the password is not shown
    assert wait_for(f"redis://:pw@{hostport}/3", retries=0).ping()


# -- the embedded server keeps its data when asked to ------------------------------------------


@pytest.mark.integration
def test_embedded_server_with_a_data_dir_keeps_its_data_across_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "redis"
    with EmbeddedRedis(data_dir=data) as server:
        client = connect(server.start_url)
        client.xadd("cw:audit", {"e": b"signed"})
        client.hset("cw:alert:a1", mapping={"status": "signed", "version": 3})
        client.close()
    assert (data / "appendonly.aof").stat().st_size > 0
    with EmbeddedRedis(data_dir=data) as server:  # a new port, the same data
        client = connect(server.start_url)
        assert client.xlen("cw:audit") == 1
        assert client.hget("cw:alert:a1", "status") == b"signed"
        assert client.config_get("appendfsync")["appendfsync"] == "everysec"
        client.close()
    assert data.is_dir()  # stop() never removes a data directory it was given


# -- the demo's Redis, found by other commands -------------------------------------------------


@pytest.mark.integration
def test_commands_find_a_running_demo_redis_and_say_so(tmp_path: Path) -> None:
    settings = Settings.load(env={}).with_(data_dir=tmp_path)
    with EmbeddedRedis() as server:
        assert server.pid is not None
        publish_demo_redis(tmp_path, server.start_url, server.pid)
        said: list[str] = []
        assert require_url(settings, "report", say=said.append) == server.start_url
        assert said == [
            f"citywatch report: using the demo's Redis at {server.start_url} "
            f"(from {tmp_path / 'demo' / 'redis.json'})"
        ]
        given = settings.with_(redis_url="redis://10.0.0.9:6379/0")
        assert require_url(given, "report", say=_fail_on_wait) == "redis://10.0.0.9:6379/0"
    # the demo's server is gone: the file is stale and ignored
    with pytest.raises(ConfigError) as info:
        require_url(settings, "report", say=_fail_on_wait)
    assert "set REDIS_URL" in str(info.value)
    assert "citywatch demo" in str(info.value)
