from __future__ import annotations

import pickle

import pytest

from models.worksites.gate import OrderGate
from tests.models.worksites.conftest import MIN, T0, lift, suspend


def test_open_until_lifted_and_idempotent() -> None:
    g = OrderGate(grace_ms=5 * MIN)
    g.apply(suspend(T0))
    g.apply(suspend(T0))
    assert "W1" in g
    assert len(g) == 1
    assert g.admits("W1", T0 + 10**9)
    assert not g.admits("W2", T0)
    assert not g.admits(None, T0)
    g.apply(lift(T0 + MIN))
    g.apply(lift(T0 + MIN))
    assert len(g) == 0
    assert not g.admits("W1", T0 + 2 * MIN)


def test_expiry_with_grace_and_pruning() -> None:
    g = OrderGate(grace_ms=5 * MIN)
    g.apply(suspend(T0, until=T0 + 60 * MIN))
    assert g.admits("W1", T0 + 64 * MIN)
    assert not g.admits("W1", T0 + 66 * MIN)
    g.apply(suspend(T0 + 120 * MIN, site="W2"))  # a later order prunes the dead entry
    assert "W1" not in g
    assert "W2" in g


def test_extension_replaces_until_and_pickles() -> None:
    g = OrderGate(grace_ms=0)
    g.apply(suspend(T0, until=T0 + MIN))
    g.apply(suspend(T0 + 1000, until=T0 + 100 * MIN))
    assert g.admits("W1", T0 + 50 * MIN)
    twin = pickle.loads(pickle.dumps(g))  # noqa: S301 (our own bytes)
    assert twin.until == g.until
    assert twin.grace_ms == 0


def test_negative_grace_rejected() -> None:
    with pytest.raises(ValueError, match="grace_ms"):
        OrderGate(grace_ms=-1)
