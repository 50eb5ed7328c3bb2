"""The model contract (STYLE "Models"): pickle mid-stream, no mutation, determinism, None fields."""

from __future__ import annotations

import copy
import pickle
import random

import msgspec
import pytest

from citywatch.events import Event, Hotline, encode
from models.worksites import WorksiteResumption
from tests.models.worksites.conftest import (
    CFG,
    MIN,
    T0,
    Harness,
    lift,
    make_model,
    power,
    quiet,
    suspend,
    video,
    working,
)


def scenario(seed: int) -> list[Event]:
    """Two sites; orders issued, extended and lifted mid-stream; work, flicker and gaps."""
    rng = random.Random(seed)
    out: list[Event] = [suspend(T0), suspend(T0 + 5 * MIN, site="W2", until=T0 + 200 * MIN)]
    out += quiet(T0, 40) + quiet(T0, 40, site="W2")
    out += working(T0 + 40 * MIN, 25, persons=rng.randint(3, 9), kw=None)
    out += working(T0 + 60 * MIN, 30, kw=20.0 + rng.random() * 10, site="W2")
    out += [power(T0 + 41 * MIN + i * MIN, None) for i in range(5)]
    out.append(
        Hotline(
            ts=T0 + 70 * MIN, ticket="T1", text="施工噪音", category="噪声", lat=32.1, lon=121.0
        )
    )
    out += quiet(T0 + 65 * MIN, 40)
    out.append(lift(T0 + 120 * MIN))
    out += working(T0 + 125 * MIN, 10)
    for _ in range(40):  # flicker and late records anywhere
        ts = T0 + rng.randrange(200) * MIN + rng.randrange(60_000)
        out.append(video(ts, persons=rng.randint(0, 5), machinery=rng.randint(0, 1), camera="C2"))
    out.sort(key=lambda e: e.ts + rng.randrange(-90_000, 90_000))  # mild disorder
    return out


def run(events: list[Event], watermark_every: int = 50) -> list:
    h = Harness(make_model())
    out = []
    for i in range(0, len(events), watermark_every):
        chunk = events[i : i + watermark_every]
        out.extend(h.feed(chunk, watermark_ms=max(e.ts for e in chunk) - 2 * MIN))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_same_input_same_output_and_something_happens(seed: int) -> None:
    events = scenario(seed)
    first = run(events)
    assert first == run(events)
    assert any(s.active for s in first)
    assert any(not s.active for s in first)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("cut", [0.2, 0.5, 0.8])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_round_trip_mid_stream_gives_identical_later_output(
    seed: int, cut: float, how: str
) -> None:
    events = scenario(seed)
    k = int(len(events) * cut)
    h = Harness(make_model())
    h.feed(events[:k])
    if how == "pickle":
        twin = pickle.loads(pickle.dumps((h.model, h.states)))  # noqa: S301 (our own bytes)
    else:
        twin = copy.deepcopy((h.model, h.states))
    h2 = Harness(twin[0])
    h2.states = twin[1]
    assert h2.states == h.states
    assert h2.feed(events[k:], watermark_ms=T0 + 400 * MIN) == h.feed(
        events[k:], watermark_ms=T0 + 400 * MIN
    )
    assert h2.states == h.states


def test_input_events_are_not_mutated() -> None:
    events = scenario(4)
    before = [encode(e) for e in events]
    run(events)
    assert [encode(e) for e in events] == before


def test_missing_and_default_fields_do_not_raise() -> None:
    h = Harness(make_model())
    stream: list[Event] = [suspend(T0)]
    stream += [power(T0 + i * MIN, None) for i in range(10)]
    stream += [msgspec.convert({"kind": "video", "ts": T0, "camera": "C1", "site": "W1"}, Event)]
    stream.append(Hotline(ts=T0, ticket="T9", text="施工噪音"))  # no place
    assert h.feed(stream, watermark_ms=T0 + 20 * MIN) == []
    # a model without any registry
    bare = Harness(WorksiteResumption(config=CFG))
    assert bare.feed([suspend(T0), *working(T0, 5)])


def test_evidence_holds_builtin_scalars_only() -> None:
    for sig in run(scenario(5)):
        for value in sig.evidence.values():
            assert value is None or type(value) in (int, float, str, bool, list)
            if isinstance(value, list):
                assert all(type(v) is str for v in value)


def test_state_bytes_per_site_is_small() -> None:
    h = Harness(make_model())
    h.feed(scenario(6))
    sizes = {k: len(pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL)) for k, v in h.states.items()}
    print(f"state bytes per site: {sizes}")  # docs/models/worksites.md reports these
    assert all(size < 1200 for size in sizes.values())


def test_gate_is_rebuilt_from_restored_states_at_the_first_watermark() -> None:
    """The flow snapshots site states, not the model: a restarted model must not go blind."""
    h = Harness(make_model())
    h.feed([suspend(T0), suspend(T0, site="W2"), lift(T0 + MIN, site="W2"), *quiet(T0, 10)])
    states = pickle.loads(pickle.dumps(h.states))  # noqa: S301 (our own bytes)
    fresh = Harness(make_model())  # a restart: empty gate
    fresh.states = states
    assert fresh.model.route(video(T0 + 11 * MIN, persons=9)) is None
    assert fresh.feed([], watermark_ms=T0 + 11 * MIN) == []
    assert fresh.model.route(video(T0 + 12 * MIN, persons=9)) == "W1"
    assert fresh.model.route(video(T0 + 12 * MIN, persons=9, site="W2")) is None  # lifted
    sigs = fresh.feed(working(T0 + 12 * MIN, 5))
    assert any(s.active for s in sigs)
