"""Up-front validation of hyperparameters, shared by the hotline and incident configs.

>>> require(object(), [("n", True)])
>>> class C:
...     n = 0
>>> require(C(), [("n", C.n >= 1)])
Traceback (most recent call last):
...
ValueError: n: invalid value 0
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["require"]


def require(config: object, checks: Iterable[tuple[str, bool]]) -> None:
    """Raise ``ValueError`` naming the first field whose check is False, and its value."""
    for name, ok in checks:
        if not ok:
            msg = f"{name}: invalid value {getattr(config, name)!r}"
            raise ValueError(msg)
