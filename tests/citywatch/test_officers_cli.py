"""``citywatch officers``: simulated officers work the untouched alerts in Redis, once."""

from __future__ import annotations

import pytest
import redis

from citywatch.alerts import Alert, AlertState, Level, Subject, episode_id, fingerprint
from citywatch.cli import main
from citywatch.settings import Settings
from sinks.redis_sink import RedisSink

pytestmark = pytest.mark.integration

T0 = 1_793_548_800_000


def _alerts(n: int) -> list[Alert]:
    out = []
    for i in range(n):
        s = Subject("station", f"S{i}")
        fp = fingerprint("air.spike", s)
        first = T0 + i * 3_600_000
        out.append(
            Alert(
                id=episode_id(fp, first),
                fingerprint=fp,
                rule="air.spike",
                level=Level.RED,
                state=AlertState.RESOLVED,
                subject=s,
                first_ts=first,
                last_ts=first + 60_000,
                district="崇川区",
            )
        )
    return out


def test_officers_work_untouched_alerts_once(
    settings: Settings,
    redis_client: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: object,
) -> None:
    part = RedisSink(settings.redis_url or "", settings.keys, run_id="o").build("o", 0, 1)
    part.write_batch(_alerts(10))  # type: ignore[attr-defined]
    part.close()  # type: ignore[attr-defined]
    monkeypatch.setenv("REDIS_URL", settings.redis_url or "")
    monkeypatch.setenv("CW_PREFIX", settings.prefix)
    monkeypatch.setenv("CW_DATA_DIR", str(tmp_path))
    # no watermark and no --until: nothing to go by
    assert main(["officers"]) == 2
    assert "no --until and no watermark" in capsys.readouterr().err
    assert main(["officers", "--until", "2026-11-09"]) == 0
    out = capsys.readouterr().out
    assert "on 10 untouched alerts (of 10)" in out
    assert "refused: none" in out
    n = redis_client.xlen(settings.keys.audit)
    assert n >= 10 * 4  # at least dispatch, sign, handle, feedback each
    events = [e for _, e in redis_client.xrange(settings.keys.audit)]
    assert any('"actor":"模拟值班员"'.encode() in e[b"e"] for e in events)
    # a second run finds nothing untouched and leaves the audit as it is
    assert main(["officers", "--until", "2026-11-09"]) == 0
    assert "on 0 untouched alerts (of 10)" in capsys.readouterr().out
    assert redis_client.xlen(settings.keys.audit) == n
