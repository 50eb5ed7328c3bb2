"""Stable seeds: every random stream is seeded from (run seed, name), never from ``hash()``.

Python's ``hash()`` of a string changes between processes, so it must never pick a seed or a
partition. These helpers use blake2b and crc32, which are the same everywhere.

>>> derive(7, "vehicle", "V00001") == derive(7, "vehicle", "V00001")
True
>>> partition_of("CAM000001", 4)
1
"""

from __future__ import annotations

import hashlib
import random
import zlib

import numpy as np

__all__ = ["derive", "entity_hash", "np_rng", "partition_of", "py_rng"]


def derive(seed: int, *parts: object) -> int:
    """A 64-bit seed for the stream named by ``parts`` under the run ``seed``."""
    text = "\x1f".join([str(seed), *(str(p) for p in parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def py_rng(seed: int, *parts: object) -> random.Random:
    """A private ``random.Random`` for one named stream (one entity, one plan step)."""
    return random.Random(derive(seed, *parts))


def np_rng(seed: int, *parts: object) -> np.random.Generator:
    """A private numpy ``Generator`` for one named stream (one kind in one time window)."""
    return np.random.Generator(np.random.PCG64(derive(seed, *parts)))


def entity_hash(entity_id: str) -> int:
    """crc32 of the entity id: what partitions records (same in every process and run)."""
    return zlib.crc32(entity_id.encode())


def partition_of(entity_id: str, partitions: int) -> int:
    """The partition (0..partitions-1) of an entity's records."""
    return entity_hash(entity_id) % partitions
