"""Small snapshots: a slotted state object pickles as the tuple of its slot values.

The flow snapshots every air station's state every epoch; without this each object's pickle
repeats its slot names. Subclasses list every attribute in ``__slots__`` (one level).

>>> import pickle
>>> from models.air.cadence import Cadence
>>> c = pickle.loads(pickle.dumps(Cadence(60_000)))
>>> (c.declared, c.interval_ms, c.first)
(True, 60000, [])
>>> b"interval_ms" in pickle.dumps(c)
False
"""

from __future__ import annotations

from typing import Any

__all__ = ["Compact"]


class Compact:
    """Mixin: pickle (and copy) a slotted object as the tuple of its slot values."""

    __slots__ = ()

    def __getstate__(self) -> tuple[Any, ...]:
        names: tuple[str, ...] = self.__slots__
        return tuple(getattr(self, s) for s in names)

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        names: tuple[str, ...] = self.__slots__
        for s, v in zip(names, state, strict=True):
            object.__setattr__(self, s, v)
