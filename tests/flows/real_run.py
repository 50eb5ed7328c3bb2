"""The real city flow (every registered model) in its own process, for the recovery test.

``python -m tests.flows.real_run URL PREFIX RECOVERY_DIR SPEED`` runs the demo scenario (seed 5,
a fixed start) at SPEED x event time with recovery, epochs of 0.5 s.
"""

from __future__ import annotations

import sys

from citywatch.settings import Settings
from flows.run import RunOptions, run_city

START_MS = 1_795_800_000_000


def options(speed: float | None, recovery_dir: str | None) -> RunOptions:
    return RunOptions(
        scenario="demo", seed=5, speed=speed, start_ms=START_MS, recovery_dir=recovery_dir
    )


def main() -> None:
    url, prefix, directory, speed = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    settings = Settings.load(env={}).with_(redis_url=url, prefix=prefix, epoch_s=0.5)
    sys.exit(run_city(settings, options(speed, directory)))


if __name__ == "__main__":
    main()
