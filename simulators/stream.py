"""What every generator hands the merger for one minute: timestamps, partition keys, lines.

Generators are pure: ``chunk(w0)`` depends only on the seed, the plan and ``w0`` (the start of
a minute-aligned window), never on what was asked before, so any window can be replayed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Chunk", "Generator"]


@dataclass(slots=True)
class Chunk:
    """Records of one window: parallel lists of event time, entity hash (crc32) and JSON."""

    ts: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)

    def add(self, ts: int, key: int, line: bytes) -> None:
        self.ts.append(ts)
        self.keys.append(key)
        self.lines.append(line)

    def __len__(self) -> int:
        return len(self.lines)


class Generator(Protocol):
    kind: str

    def chunk(self, w0: int) -> Chunk:
        """Records with ``w0 <= ts < w0 + 60 s`` (and inside the run), in any order."""
        ...
