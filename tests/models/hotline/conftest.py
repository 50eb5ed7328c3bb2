"""Hand-written Chinese ticket pairs: duplicates (paraphrases) and near misses."""

from __future__ import annotations

import pytest

from citywatch.events import Hotline

#: Monday 2026-11-02 09:00 Beijing.
T0 = 1_793_581_200_000
MIN = 60_000
HOUR = 3_600_000

#: (text a, text b, category a, category b): the same problem told twice, in other words.
DUPLICATES = [
    (
        "和平路工地的渣土车没有覆盖，一路撒土",
        "和平路那边土方车把路面弄得全是泥",
        "construction",
        "construction",
    ),
    (
        "通富路与青年路交叉口有人焚烧垃圾，浓烟很大",
        "青年路通富路路口那边在烧垃圾，黑烟呛人",
        "smoke",
        "smoke",
    ),
    (
        "星湖花园小区东门外工地夜里打桩，吵得没法睡",
        "星湖花园东门旁边工地晚上还在施工打桩，噪音扰民",
        "noise",
        "noise",
    ),
    ("濠河边上有股很臭的味道，河水发黑", "濠河这段水发黑发臭，气味难闻", "water", "water"),
    ("化工园区附近闻到刺鼻气味，怀疑化工厂偷排", "化工园那边有很刺鼻的化学品味道", "air", "air"),
    (
        "人民路菜场门口垃圾堆放好几天没人清运",
        "人民路菜市场门口的垃圾堆了好几天了没有清运",
        "garbage",
        "garbage",
    ),
    (
        "市民来电反映：工农路小学旁边渣土车撒漏，扬尘很大",
        "工农路小学门口渣土车掉土，灰尘漫天",
        "dust",
        "dust",
    ),
]

#: Same place, different problem: they share the address, not the complaint.
NEAR_MISSES = [
    (
        "幸福小区3栋整栋楼都停水了，到现在还没来水",
        "幸福小区3栋水压太低，高层用不上水",
        "water",
        "water",
    ),
    (
        "人民路工地扬尘很大，灰尘飘进家里",
        "人民路工地出来的渣土车带泥上路，路面很脏",
        "construction",
        "construction",
    ),
    ("星湖花园东门外工地夜间施工噪音扰民", "星湖花园东门外路灯坏了一个多月", "noise", "facility"),
    ("人民路菜场门口垃圾堆放没人清运", "人民路菜场门口车辆乱停占道严重", "garbage", "traffic"),
    ("濠河边上河水发黑发臭", "濠河边上路面坑洼破损", "water", "facility"),
    ("工农路小学旁边渣土车撒漏扬尘很大", "工农路小学旁边晚上工地施工噪音", "dust", "noise"),
    ("星湖花园东门外工地夜间施工噪音扰民", "星湖花园东门外烧烤店油烟味很重", "noise", "air"),
]


def ticket(
    tid: str,
    text: str,
    *,
    ts: int = T0,
    category: str = "",
    lat: float | None = 32.0,
    lon: float | None = 120.9,
    grid: str | None = None,
    caller: str | None = None,
) -> Hotline:
    return Hotline(
        ts=ts, ticket=tid, text=text, category=category, lat=lat, lon=lon, grid=grid, caller=caller
    )


@pytest.fixture
def make_ticket():  # type: ignore[no-untyped-def]
    return ticket


class Pipe:
    """A model and its state, feeding the clusterer the features the model computes."""

    def __init__(self, model: object | None = None, config: object | None = None) -> None:
        from models.hotline.model import HotlineConfig, HotlineModel

        self.model = model or HotlineModel(config=config or HotlineConfig())  # type: ignore[arg-type]
        self.state = self.model.new_state("city")  # type: ignore[attr-defined]
        self.dc = self.state.dedup

    def update(self, t: Hotline):  # type: ignore[no-untyped-def]
        f, _ = self.model.ticket_features(self.state, t, learn_df=True)  # type: ignore[attr-defined]
        return self.dc.update(f)


@pytest.fixture
def pipe() -> Pipe:
    return Pipe()
