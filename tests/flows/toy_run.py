"""A toy city run in its own process, for the kill -9 recovery test.

``python -m tests.flows.toy_run URL PREFIX RECOVERY_DIR SPEED [held]`` runs the toy scenario
(paced at SPEED x event time) through the real flow and Redis sink with recovery in
RECOVERY_DIR; with ``held``, the held scenario (``tests.flows.toy.held``) with SPEED seconds
between its last records.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

from bytewax.recovery import RecoveryConfig
from bytewax.run import cli_main

from citywatch.keys import Keys
from flows.city import FlowConfig, build_flow
from flows.run import RunOptions, prepare_recovery
from flows.sources import DecodingSource
from flows.sources.iterable import IterableSource
from sinks.redis_sink import RedisSink
from tests.flows.toy import ToyExceedance, held, scenario

STATIONS, MINUTES, PARTITIONS = 6, 240, 2


def records() -> list[bytes]:
    recs = scenario(stations=STATIONS, minutes=MINUTES, stagger=35)
    recs.insert(100, b"{broken")
    return recs


def build(
    url: str, prefix: str, run_id: str, speed: float | None, durable: bool, scenario: str = "toy"
) -> object:
    if scenario == "held":
        raw = IterableSource(held(speed or 0.0), partitions=PARTITIONS)
    else:
        raw = IterableSource(lambda: iter(records()), partitions=PARTITIONS, speed=speed)
    source = DecodingSource(raw, batch_size=20)
    sink = RedisSink(url, Keys(prefix), run_id=run_id)
    return build_flow(source, sink, models=[ToyExceedance()], config=FlowConfig(durable=durable))


def main() -> None:
    url, prefix, directory, speed = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    name = sys.argv[5] if len(sys.argv) > 5 else "toy"
    opts = prepare_recovery(RunOptions(source="sim", scenario=name, recovery_dir=directory))
    flow = build(url, prefix, opts.run_id, speed, durable=True, scenario=name)
    cli_main(
        flow, epoch_interval=timedelta(seconds=0.2), recovery_config=RecoveryConfig(Path(directory))
    )


if __name__ == "__main__":
    main()
