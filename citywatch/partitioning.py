"""How records are split into partitions: one rule for producers, the simulator and the flow.

Order is kept only within a partition, and every model keeps its state per key, so all the
records one model state needs must travel in one partition. A record's *partition key*:

=========  =================================================================================
kind       partition key
=========  =================================================================================
air        ``district:{district}`` of its station (the air model compares neighbours and
           detects episodes per district); ``station:{id}`` when the district is unknown
video      the site id when the camera is at a site (the resumption model fuses a site's
           cameras, meters and orders), else the camera id
power      the site id when the meter is at a site, else the meter id
order      the site id
hotline    ``hotline`` (de-duplication and surge detection look at the whole city)
gps        the vehicle id
water      the station id (the water model keeps its state per station)
=========  =================================================================================

and its partition is ``crc32(key) % partitions`` (stable across processes and runs; never
Python's salted ``hash``). ``citywatch simulate --partitions N`` writes files and
``cw:in:{kind}:{n}`` streams by this rule, and the flow splits the simulator source by it.

>>> partition_key("air", "ST00001", district="崇川区")
'district:崇川区'
>>> partition_key("video", "CAM1", site="W7") == partition_key("order", "W7")
True
>>> partition_of("hotline", 4) == partition_of(partition_key("hotline", "T9"), 4)
True
"""

from __future__ import annotations

import zlib

__all__ = ["partition_key", "partition_of"]


def partition_key(
    kind: str, entity: str, *, site: str | None = None, district: str | None = None
) -> str:
    """The partition key of a record of ``kind`` about ``entity`` (see the module table)."""
    if kind == "air":
        return f"district:{district}" if district else f"station:{entity}"
    if kind == "hotline":
        return "hotline"
    if kind in ("video", "power") and site:
        return site
    return entity


def partition_of(key: str, partitions: int) -> int:
    """The partition (0 .. partitions-1) of a partition key."""
    return zlib.crc32(key.encode()) % partitions
