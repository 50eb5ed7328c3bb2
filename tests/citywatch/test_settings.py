from __future__ import annotations

from pathlib import Path

import pytest

from citywatch.errors import ConfigError
from citywatch.settings import Settings


def test_defaults() -> None:
    s = Settings.load(env={})
    assert s.prefix == "cw:"
    assert s.redis_url is None
    assert s.keys.deadletter == "cw:deadletter"
    assert s.region is None  # from the registry (citywatch.registry.region_for)
    assert s.region_box is None
    assert s.future_tolerance_ms == 86_400_000


def test_toml_then_environment_override(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.toml"
    cfg.write_text(
        '[citywatch]\nprefix = "a:"\nfeed_port = 9001\nfeed_tokens = ["t1", "t2"]\n'
        'region = [31.0, 33.0, 120.0, 122.0]\nrecovery_dir = "/tmp/rec"\n',
        encoding="utf-8",
    )
    s = Settings.load(cfg, env={"CW_FEED_PORT": "9002", "REDIS_URL": "redis://h:1/2"})
    assert s.prefix == "a:"
    assert s.feed_port == 9002
    assert s.feed_tokens == ("t1", "t2")
    assert s.region == (31.0, 33.0, 120.0, 122.0)
    assert s.region_box is not None
    assert s.region_box.contains(32.0, 121.0)
    assert s.recovery_dir == Path("/tmp/rec")
    assert s.redis_url == "redis://h:1/2"


def test_config_path_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "cw.toml"
    cfg.write_text("batch_size = 50\n", encoding="utf-8")
    assert Settings.load(env={"CITYWATCH_CONFIG": str(cfg)}).batch_size == 50


def test_lists_from_environment() -> None:
    s = Settings.load(env={"CW_FEED_TOKENS": "a, b,,c", "CW_REGION": "31,32,120,121"})
    assert s.feed_tokens == ("a", "b", "c")
    assert s.region == (31.0, 32.0, 120.0, 121.0)


def test_empty_redis_url_means_embedded() -> None:
    assert Settings.load(env={"REDIS_URL": ""}).redis_url is None


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CW_FEED_PORT": "x"}, "feed_port: expected an integer, got 'x' (from CW_FEED_PORT)"),
        ({"CW_FEED_PORT": "70000"}, "feed_port: 70000 is not a TCP port"),
        ({"CW_EPOCH_S": "0"}, "epoch_s: must be > 0"),
        ({"CW_LATENESS_S": "soon"}, "lateness_s: expected a number"),
        ({"CW_REGION": "32,31,120,121"}, "region:"),
        ({"CW_REGION": "32,31"}, "region: expected 4 numbers"),
        ({"CW_BATCH_SIZE": "-1"}, "batch_size: must be > 0"),
    ],
)
def test_bad_values_name_field_and_value(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(env=env)
    assert fragment in str(info.value)


def test_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("prefix = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        Settings.load(bad, env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('prefx = "a:"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load(unknown, env={})
    with pytest.raises(ConfigError, match="not found"):
        Settings.load(tmp_path / "missing.toml", env={})


def test_with_validates() -> None:
    with pytest.raises(ConfigError):
        Settings().with_(feed_queue=0)
