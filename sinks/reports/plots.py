"""The report's figures (matplotlib, Agg, PNG bytes), readable without a CJK font.

Machines without a Chinese font (ours) draw Chinese as empty boxes, so figures carry English
axis labels and ASCII names: pinyin for Nantong's districts and the default departments
(:data:`ASCII_NAMES`), ids as they are (stations, vehicles, sites, categories), and for any
other Chinese name a short code (``D1``, ``D2``, ...) that the page's caption maps back to
the Chinese (:class:`Labels`). The page itself is Chinese: the browser has the fonts.

>>> lab = Labels()
>>> lab("崇川区"), lab("ST00001"), lab("某某镇"), lab("另一镇"), lab.legend()
('Chongchuan', 'ST00001', 'N1', 'N2', 'N1=某某镇, N2=另一镇')
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

__all__ = [
    "ASCII_NAMES",
    "CATEGORY_COLOURS",
    "LEVEL_COLOURS",
    "Labels",
    "bars",
    "district_map",
    "lines",
    "stacked",
]

#: Chinese names with a readable ASCII form (Nantong's districts, the default departments,
#: the command tiers).
ASCII_NAMES: Final[dict[str, str]] = {
    "崇川区": "Chongchuan",
    "通州区": "Tongzhou",
    "海门区": "Haimen",
    "如皋市": "Rugao",
    "海安市": "Hai'an",
    "启东市": "Qidong",
    "如东县": "Rudong",
    "开发区": "ETDZ",
    "苏锡通园区": "Suxitong",
    "通州湾示范区": "Tongzhou Bay",
    "生态环境局": "Ecology & Env.",
    "应急管理局": "Emergency Mgmt",
    "交通运输局": "Transport",
    "住房和城乡建设局": "Housing & Constr.",
    "城市管理局": "Urban Mgmt",
    "公安局": "Public Security",
    "市场监督管理局": "Market Reg.",
    "水利局": "Water Resources",
    "属地街道": "Local street",
    "市级": "City",
    "县区级": "County",
    "镇街级": "Town",
}
#: AQI categories 1-6 (HJ 633): the standard's colours.
CATEGORY_COLOURS: Final = ("#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#99004C", "#7E0023")
CATEGORY_EN: Final = ("Excellent", "Good", "Light", "Moderate", "Heavy", "Severe")
LEVEL_COLOURS: Final = {
    "blue": "#2f6fdb",
    "yellow": "#e6b800",
    "orange": "#f07f09",
    "red": "#d62728",
}
CURRENT, PREVIOUS = "#2f5597", "#b4c7e7"


class Labels:
    """Name -> ASCII label for figures; Chinese names without a known form get codes."""

    def __init__(self, prefix: str = "N") -> None:
        self.prefix = prefix
        self.codes: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name in ASCII_NAMES:
            return ASCII_NAMES[name]
        if all(ord(c) < 0x2E80 for c in name):
            return name
        if name not in self.codes:
            self.codes[name] = f"{self.prefix}{len(self.codes) + 1}"
        return self.codes[name]

    def legend(self) -> str:
        """``N1=某某镇, N2=...`` for the codes handed out (empty when none)."""
        return ", ".join(f"{c}={n}" for n, c in self.codes.items())


@contextmanager
def _figure(width: float, height: float) -> Iterator[tuple[Any, Any]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig, ax = plt.subplots(figsize=(width, height))
        try:
            yield fig, ax
        finally:
            plt.close(fig)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    # no timestamps in the file: the same data gives the same bytes
    fig.savefig(buf, format="png", dpi=96, metadata={"Software": None})
    return buf.getvalue()


def bars(
    names: Sequence[str],
    current: Sequence[float | None],
    previous: Sequence[float | None] | None,
    *,
    ylabel: str,
    title: str,
    labels: Callable[[str], str],
    horizontal: bool = False,
) -> bytes:
    """Grouped bars: this period (dark) beside the previous one (light)."""
    n = len(names)
    if previous is not None and all(v is None for v in previous):
        previous = None  # nothing to compare with: no empty legend entry
    with _figure(8.0, max(2.6, 0.32 * n + 1.5) if horizontal else 3.6) as (fig, ax):
        idx = list(range(n))
        w = 0.4 if previous is not None else 0.7
        cur = [v if v is not None else 0.0 for v in current]
        plot = ax.barh if horizontal else ax.bar
        if previous is not None:
            prev = [v if v is not None else 0.0 for v in previous]
            plot([i + w / 2 for i in idx], prev, w, color=PREVIOUS, label="previous period")
            plot([i - w / 2 for i in idx], cur, w, color=CURRENT, label="this period")
            ax.legend(
                fontsize=8, frameon=False, ncol=2, loc="lower center", bbox_to_anchor=(0.5, 1.0)
            )
        else:
            plot(idx, cur, w, color=CURRENT)
        ticks = [labels(x) for x in names]
        values = [v for v in [*current, *(previous or [])] if v is not None]
        if all(isinstance(v, int) for v in values):  # counts: no 2.5 alerts on the axis
            from matplotlib.ticker import MaxNLocator

            (ax.xaxis if horizontal else ax.yaxis).set_major_locator(MaxNLocator(integer=True))
        if horizontal:
            ax.set_yticks(idx, ticks, fontsize=8)
            ax.invert_yaxis()
            ax.set_xlabel(ylabel, fontsize=9)
        else:
            ax.set_xticks(
                idx,
                ticks,
                fontsize=8,
                rotation=30 if n > 6 else 0,
                ha="right" if n > 6 else "center",
            )
            ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=10, pad=22 if previous is not None else 6)
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)


def stacked(
    names: Sequence[str],
    layers: Sequence[Sequence[float]],
    layer_names: Sequence[str],
    colours: Sequence[str],
    *,
    xlabel: str,
    title: str,
    labels: Callable[[str], str],
) -> bytes:
    """Horizontal stacked bars: one bar per name, one layer per category."""
    n = len(names)
    with _figure(8.0, max(2.4, 0.32 * n + 1.3)) as (fig, ax):
        left = [0.0] * n
        for values, lname, colour in zip(layers, layer_names, colours, strict=True):
            ax.barh(
                range(n),
                values,
                0.7,
                left=left,
                color=colour,
                label=lname,
                edgecolor="#666",
                linewidth=0.3,
            )
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_yticks(range(n), [labels(x) for x in names], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.legend(
            fontsize=7,
            ncol=len(layer_names),
            frameon=False,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18),
        )
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)


def lines(
    xs: Sequence[float],
    current: Sequence[float | None],
    previous: Sequence[float | None] | None,
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    bands: Sequence[tuple[float, float, str]] = (),
) -> bytes:
    """This period's series over the previous one's (same offsets into the period);
    ``bands``: horizontal background bands (lo, hi, colour), e.g. AQI categories."""
    with _figure(8.0, 3.0) as (fig, ax):
        for lo, hi, colour in bands:
            ax.axhspan(lo, hi, color=colour, alpha=0.12, lw=0)
        if previous is not None:
            ax.plot(xs, _nan(previous), color=PREVIOUS, lw=1.2, label="previous period")
        ax.plot(xs, _nan(current), color=CURRENT, lw=1.4, label="this period")
        ax.legend(fontsize=8, frameon=False)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel(ylabel, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.set_ylim(bottom=0)
        ax.spines[["top", "right"]].set_visible(False)
        return _png(fig)


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def district_map(
    outlines: Sequence[tuple[str, Sequence[Sequence[tuple[float, float]]]]],
    points: Sequence[tuple[float, float, str, float]],
    stars: Sequence[tuple[float, float, str]],
    *,
    title: str,
    labels: Callable[[str], str],
    simulated: bool,
) -> bytes:
    """District outlines (rings of (lon, lat)), dwell points (lat, lon, level colour name,
    size) and workshop candidates as stars (lat, lon, label)."""
    with _figure(8.0, 6.0) as (fig, ax):
        for name, rings in outlines:
            for k, ring in enumerate(rings):
                xs = [p[0] for p in ring]
                ys = [p[1] for p in ring]
                ax.fill(
                    xs, ys, facecolor="#f3f3ef" if k == 0 else "white", edgecolor="#888", lw=0.7
                )
            if rings and rings[0]:
                cx = sum(p[0] for p in rings[0]) / len(rings[0])
                cy = sum(p[1] for p in rings[0]) / len(rings[0])
                ax.text(cx, cy, labels(name), fontsize=7, color="#555", ha="center", va="center")
        seen: set[str] = set()
        for lat, lon, level, size in points:
            ax.scatter(
                [lon], [lat], s=size, color=LEVEL_COLOURS.get(level, "#555"), alpha=0.75,
                edgecolors="white", linewidths=0.5,
                label=f"dwell ({level})" if level not in seen else None, zorder=3,
            )  # fmt: skip
            seen.add(level)
        for i, (lat, lon, text) in enumerate(stars):
            ax.scatter(
                [lon], [lat], marker="*", s=220, color="#6a0dad", edgecolors="black",
                linewidths=0.6, label="workshop candidate" if i == 0 else None, zorder=4,
            )  # fmt: skip
            ax.annotate(text, (lon, lat), xytext=(5, 5), textcoords="offset points", fontsize=7)
        ax.set_aspect(1 / max(0.2, math.cos(math.radians(_mid_lat(outlines, points)))))
        ax.set_xlabel("longitude (WGS-84)", fontsize=9)
        ax.set_ylabel("latitude", fontsize=9)
        note = " (simulated district outlines)" if simulated else ""
        ax.set_title(title + note, fontsize=10)
        if points or stars:
            ax.legend(fontsize=7, frameon=True, loc="lower right")
        ax.tick_params(labelsize=7)
        return _png(fig)


def _mid_lat(
    outlines: Sequence[tuple[str, Sequence[Sequence[tuple[float, float]]]]],
    points: Sequence[tuple[float, float, str, float]],
) -> float:
    lats = [p[1] for _, rings in outlines for ring in rings[:1] for p in ring]
    lats += [p[0] for p in points]
    return sum(lats) / len(lats) if lats else 32.0
