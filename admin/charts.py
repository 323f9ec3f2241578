"""Charts as inline SVG markup: pure functions of labels and values, no JavaScript, nothing fetched.

The admin pages' Content-Security-Policy is `default-src 'self'`, so a chart is SVG written into the page.
Every label and title is escaped (they can come from data: agency names, rule names). Values are plain
non-negative numbers; anything else (negative, NaN, infinite) is drawn as 0, so the markup never holds NaN.
Each bar or point carries a <title> (a tooltip, and what a screen reader reads); the pages also show the
numbers in a table, which is the accessible form of the chart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

ValueFormat = Callable[[float], str]

# Colour-blind-friendly palette (Okabe-Ito), cycled for series beyond it.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")

WIDTH = 640
HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 12, 24, 48
_LEGEND_ROW = 18


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label; None is a gap (line charts) or 0 (bars)."""

    name: str
    values: Sequence[float | None]


def compact(value: float) -> str:
    """1234567 -> '1.2M': short enough for an axis."""
    value = _clean(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def percent(value: float) -> str:
    """0.625 -> '62.5%'."""
    return f"{_clean(value) * 100:.1f}%"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    value_format: ValueFormat = compact,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """Vertical bars, one per label, heights proportional to the values (0 at the baseline)."""
    return stacked_bar_chart(
        labels,
        [Series(title, values)],
        title=title,
        value_format=value_format,
        width=width,
        height=height,
        legend=False,
    )


def stacked_bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    value_format: ValueFormat = compact,
    width: int = WIDTH,
    height: int = HEIGHT,
    legend: bool = True,
) -> str:
    """One bar per label, each series a segment stacked on the previous ones; the legend names the series."""
    legend_height = _legend_height(series, width) if legend else 0
    plot = _Plot(width, height, legend_height)
    totals = [sum(_clean(s_value(s, i)) for s in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0.0))
    parts = [*_frame(plot, title, top, value_format)]
    if labels:
        slot = plot.width / len(labels)
        bar = max(1.0, slot * 0.7)
        for i, label in enumerate(labels):
            x = plot.left + slot * i + (slot - bar) / 2
            base = plot.bottom
            for n, one in enumerate(series):
                value = _clean(s_value(one, i))
                h = plot.height * value / top
                base -= h
                tip = (
                    f"{label} · {one.name}: {value_format(value)}"
                    if legend
                    else f"{label}: {value_format(value)}"
                )
                parts.append(
                    f'<rect class="bar" x="{_n(x)}" y="{_n(base)}" width="{_n(bar)}" height="{_n(h)}" '
                    f'fill="{color(n)}" data-value="{_n(value)}"><title>{_text(tip)}</title></rect>'
                )
        parts.extend(_x_labels(plot, labels))
    if legend:
        parts.extend(_legend(series, width, height - legend_height))
    return _svg(width, height, title, parts)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    value_format: ValueFormat = compact,
    y_max: float | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> str:
    """One line per series across the labels; a None value leaves a gap. `y_max` fixes the scale (1 for
    rates), else it fits the data."""
    legend_height = _legend_height(series, width)
    plot = _Plot(width, height, legend_height)
    highest = max((_clean(v) for s in series for v in s.values if v is not None), default=0.0)
    top = max(_clean(y_max) or _nice_max(highest), highest)
    parts = [*_frame(plot, title, top, value_format)]
    if labels:
        slot = plot.width / len(labels)
        for n, one in enumerate(series):
            runs: list[list[tuple[float, float]]] = [[]]
            for i, label in enumerate(labels):
                raw = s_value(one, i)
                if raw is None:
                    runs.append([])
                    continue
                value = _clean(raw)
                x, y = plot.left + slot * (i + 0.5), plot.bottom - plot.height * value / top
                runs[-1].append((x, y))
                tip = f"{label} · {one.name}: {value_format(value)}"
                parts.append(
                    f'<circle class="point" cx="{_n(x)}" cy="{_n(y)}" r="3" fill="{color(n)}" '
                    f'data-value="{_n(value)}"><title>{_text(tip)}</title></circle>'
                )
            for run in runs:
                if len(run) > 1:
                    points = " ".join(f"{_n(x)},{_n(y)}" for x, y in run)
                    parts.insert(
                        0,
                        f'<polyline class="line" points="{points}" fill="none" stroke="{color(n)}" '
                        'stroke-width="2"/>',
                    )
        parts.extend(_x_labels(plot, labels))
    parts.extend(_legend(series, width, height - legend_height))
    return _svg(width, height, title, parts)


# -- helpers -------------------------------------------------------------------------------------------------


def s_value(series: Series, index: int) -> float | None:
    return series.values[index] if index < len(series.values) else None


@dataclass(frozen=True)
class _Plot:
    total_width: int
    total_height: int
    legend_height: int

    @property
    def left(self) -> float:
        return float(_LEFT)

    @property
    def width(self) -> float:
        return max(1.0, self.total_width - _LEFT - _RIGHT)

    @property
    def bottom(self) -> float:
        return float(max(_TOP + 1, self.total_height - _BOTTOM - self.legend_height))

    @property
    def height(self) -> float:
        return self.bottom - _TOP


def _clean(value: float | None) -> float:
    """A finite, non-negative float (0 for None, NaN, infinity and negatives; at most 1e300, so sums stay
    finite)."""
    if value is None:
        return 0.0
    number = float(value)
    return min(number, 1e300) if math.isfinite(number) and number > 0 else 0.0


def _nice_max(value: float) -> float:
    """The top of the axis: the next 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 if 0)."""
    if not (value > 0 and math.isfinite(value)):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * power
        if top >= value:
            # Past the float range (denormals, near the maximum) the value itself is the top.
            return top if top > 0 and math.isfinite(top) else value
    return value  # pragma: no cover - the loop always returns


# Characters XML 1.0 does not allow (control characters but tab and newlines, surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(text: str) -> str:
    """`text` as SVG text or attribute content: escaped, and without characters XML cannot carry."""
    return escape(_NOT_XML.sub("\ufffd", str(text)))


def _n(number: float) -> str:
    """A coordinate: finite, at most two decimals."""
    number = float(number) if math.isfinite(number) else 0.0
    return f"{number:.2f}".rstrip("0").rstrip(".")


def _frame(plot: _Plot, title: str, top: float, value_format: ValueFormat) -> list[str]:
    parts = [f'<text x="{_LEFT}" y="16" font-size="13" font-weight="600">{_text(title)}</text>']
    for fraction in (0.0, 0.5, 1.0):
        y = plot.bottom - plot.height * fraction
        parts.append(
            f'<line x1="{_n(plot.left)}" y1="{_n(y)}" x2="{_n(plot.left + plot.width)}" y2="{_n(y)}" '
            'stroke="#e3e6ea"/>'
        )
        parts.append(
            f'<text class="tick" x="{_n(plot.left - 6)}" y="{_n(y + 4)}" font-size="11" text-anchor="end">'
            f"{_text(value_format(top * fraction))}</text>"
        )
    return parts


def _x_labels(plot: _Plot, labels: Sequence[str]) -> list[str]:
    slot = plot.width / len(labels)
    every = max(1, math.ceil(len(labels) * 70 / plot.width))  # about 70 px per label shown
    parts = []
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = plot.left + slot * (i + 0.5)
        parts.append(
            f'<text class="label" x="{_n(x)}" y="{_n(plot.bottom + 16)}" font-size="11" '
            f'text-anchor="middle">{_text(label)}</text>'
        )
    return parts


def _legend_height(series: Sequence[Series], width: int) -> int:
    rows = math.ceil(sum(_legend_item_width(s.name) for s in series) / max(1, width - _LEFT)) if series else 0
    return rows * _LEGEND_ROW


def _legend_item_width(name: str) -> int:
    return 24 + 7 * len(name)


def _legend(series: Sequence[Series], width: int, top: float) -> list[str]:
    parts = []
    x, y = float(_LEFT), top + 4
    for n, one in enumerate(series):
        item = _legend_item_width(one.name)
        if x + item > width and x > _LEFT:
            x, y = float(_LEFT), y + _LEGEND_ROW
        parts.append(f'<rect class="key" x="{_n(x)}" y="{_n(y)}" width="10" height="10" fill="{color(n)}"/>')
        parts.append(f'<text x="{_n(x + 14)}" y="{_n(y + 9)}" font-size="11">{_text(one.name)}</text>')
        x += item
    return parts


def _svg(width: int, height: int, title: str, parts: Sequence[str]) -> str:
    body = "".join(parts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" font-family="system-ui, sans-serif">'
        f"<title>{_text(title)}</title>{body}</svg>"
    )
