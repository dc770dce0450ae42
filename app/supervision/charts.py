"""A chart drawn on the server as SVG: bars per category (one or several side by side), each stacked
by series, a y axis with round ticks, and a legend. No script and no library: the page is readable
as it arrives, prints, and each rectangle carries its number in a <title> for the mouse."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from flask_babel import format_date

from app.supervision.queries import Chart

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 48
# Colour-blind-safe palette (Okabe–Ito), then greys.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#999999")
BAR_SHADES = (1.0, 0.55)  # a second bar per category (closed beside opened) is drawn lighter


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    opacity: float
    title: str


@dataclass
class Tick:
    y: float
    label: str


@dataclass
class Label:
    x: float
    text: str


@dataclass
class Drawing:
    width: int
    height: int
    rects: list[Rect]
    ticks: list[Tick]
    labels: list[Label]
    legend: list[tuple[str, str]]  # (colour, label)
    bar_legend: list[tuple[float, str]]  # (opacity, label) when several bars per category
    baseline: float
    left: int
    right: float
    empty: bool


def nice_step(top: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` steps up to top."""
    if top <= 0:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return max(1, factor * power)
    return 10 * power


def _format(value: float) -> str:
    return f"{int(value):,}".replace(",", "\u202f") if float(value).is_integer() else f"{value:.1f}"


def _axis_label(category, label: str) -> str:
    """Under the axis, a day or a week reads short ("12 mars"); the table keeps the long label."""
    return format_date(category, "d MMM") if isinstance(category, date) else label


def draw(chart: Chart) -> Drawing:
    categories, bars, series = chart.categories, chart.bars, chart.series
    top = max((chart.total(c, b) for c, _l in categories for b, _m in bars), default=0)
    step = nice_step(top)
    ceiling = step * max(1, math.ceil(top / step))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    slot = plot_width / max(1, len(categories))
    bar_width = max(1.0, slot * 0.8 / len(bars))
    rects: list[Rect] = []
    for i, (category, category_label) in enumerate(categories):
        for j, (bar, bar_label) in enumerate(bars):
            x = LEFT + i * slot + slot * 0.1 + j * bar_width
            y = baseline
            for k, (key, series_label) in enumerate(series):
                value = chart.value(category, bar, key)
                if not value:
                    continue
                height = plot_height * value / ceiling
                y -= height
                parts = [category_label] + ([bar_label] if len(bars) > 1 else []) + \
                    ([series_label] if len(series) > 1 else [])
                rects.append(Rect(round(x, 1), round(y, 1), round(bar_width, 1), round(height, 1),
                                  PALETTE[k % len(PALETTE)], BAR_SHADES[j % len(BAR_SHADES)],
                                  f"{' – '.join(parts)} : {_format(value)}"))
    ticks = [Tick(round(baseline - plot_height * n * step / ceiling, 1), _format(n * step))
             for n in range(int(ceiling / step) + 1)]
    every = max(1, math.ceil(len(categories) / 10))  # at most ten labels under the axis
    labels = [Label(round(LEFT + i * slot + slot / 2, 1), _axis_label(category, label))
              for i, (category, label) in enumerate(categories) if i % every == 0]
    return Drawing(width=WIDTH, height=HEIGHT, rects=rects, ticks=ticks, labels=labels,
                   legend=[(PALETTE[k % len(PALETTE)], label) for k, (_key, label) in enumerate(series)]
                   if len(series) > 1 else [],
                   bar_legend=[(BAR_SHADES[j % len(BAR_SHADES)], label) for j, (_b, label) in enumerate(bars)]
                   if len(bars) > 1 else [],
                   baseline=baseline, left=LEFT, right=WIDTH - RIGHT, empty=not top)
