"""Option parsers every command and benchmark shares, so one syntax holds everywhere.

``--seeds 101-105`` and ``--seeds 101,103`` (and mixes: ``1-3,7``); durations as ``3600``,
``90s``, ``30m``, ``2h`` or ``1d``. Each raises :class:`argparse.ArgumentTypeError` with a
one-line message naming the option and the value, so argparse reports it and exits 2.

>>> parse_seeds("101-103"), parse_seeds("4,2"), parse_seeds("1-2,7")
([101, 102, 103], [4, 2], [1, 2, 7])
>>> parse_duration("2h"), parse_duration("90s")
(7200, 90)
"""

from __future__ import annotations

import argparse

__all__ = ["parse_duration", "parse_seeds"]


def parse_seeds(text: str) -> list[int]:
    """``"1-5"``, ``"1,3,7"``, ``"1-3,7"`` or ``"2"`` -> seeds (ranges are inclusive)."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part[1:]:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo or hi - lo > 1000:
                    raise ValueError
                out += range(lo, hi + 1)
            else:
                out.append(int(part))
    except ValueError:
        msg = f"seeds: {text!r} is not like 1-5, 1,3,7 or 2"
        raise argparse.ArgumentTypeError(msg) from None
    if not out:
        msg = f"seeds: {text!r} names no seed"
        raise argparse.ArgumentTypeError(msg)
    return out


def parse_duration(text: str) -> int:
    """Seconds from ``3600``, ``90s``, ``30m``, ``2h`` or ``1d``."""
    t = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    try:
        value = float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        value = -1.0
    if value <= 0:
        msg = f"duration: {text!r} is not a positive duration like 3600, 30m, 2h or 1d"
        raise argparse.ArgumentTypeError(msg)
    return round(value)
