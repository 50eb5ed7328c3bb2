"""The simulator as a source: ``simulate(...).records()``, partitioned and paced or not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flows.sources.iterable import IterableSource, KeyOf

__all__ = ["SimSpec", "sim_source"]


class SimSpec:
    """How to (re)build one simulation: every partition and every resume builds the same one."""

    def __init__(
        self, scenario: str, *, seed: int = 1, scale: float | None = None, **overrides: Any
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.scale = scale
        self.overrides = overrides

    def build(self) -> Any:
        from simulators import simulate

        kwargs: dict[str, Any] = dict(self.overrides)
        if self.scale is not None:
            kwargs["scale"] = self.scale
        return simulate(self.scenario, seed=self.seed, **kwargs)

    def records(self) -> Iterator[bytes]:
        records: Iterator[bytes] = self.build().records()
        return records


def sim_source(
    spec: SimSpec,
    *,
    partitions: int = 1,
    speed: float | None = None,
    key_of: KeyOf | None = None,
    anchor_ts: int | None = None,
) -> IterableSource:
    return IterableSource(
        spec.records,
        partitions=partitions,
        speed=speed,
        name="sim",
        key_of=key_of,
        anchor_ts=anchor_ts,
    )
