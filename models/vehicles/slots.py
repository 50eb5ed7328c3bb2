"""Compact pickling for the small slotted state objects of this package.

Python pickles a slotted object as a dict keyed by slot names; per vehicle that is more bytes
in names than in values. :class:`CompactSlots` pickles the values as a tuple in ``__slots__``
order instead (bytewax snapshots every touched key every epoch).

>>> class P(CompactSlots):
...     __slots__ = ("x", "y")
>>> p = P()
>>> p.x, p.y = 1, 2.5
>>> p.__getstate__()
(1, 2.5)
>>> q = P.__new__(P)
>>> q.__setstate__((3, 4.5))
>>> (q.x, q.y)
(3, 4.5)
"""

from __future__ import annotations

__all__ = ["CompactSlots"]


class CompactSlots:
    """Mixin: ``__getstate__``/``__setstate__`` as a tuple of the class's own ``__slots__``."""

    __slots__ = ()

    def __getstate__(self) -> tuple[object, ...]:
        names: tuple[str, ...] = type(self).__slots__
        return tuple(getattr(self, s) for s in names)

    def __setstate__(self, state: tuple[object, ...]) -> None:
        names: tuple[str, ...] = type(self).__slots__
        for name, value in zip(names, state, strict=True):
            object.__setattr__(self, name, value)
