"""Charts as plain inline SVG, drawn on the server: no chart library, nothing to download.

Each chart comes with its legend and a table of the same numbers (for reading exact
values, for screen readers, and for copying). Every bar carries `data-series`,
`data-category` and `data-value`, and a <title> that browsers show as a tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from web_map.i18n import Texts

WIDTH = 720
FONT = 11


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


@dataclass(frozen=True)
class Chart:
    svg: Markup
    table: Markup


def ticks(value: float, most: int = 5) -> list[float]:
    """Axis ticks from 0: a step of 1, 2 or 5 × 10^k, at most `most` steps, covering value."""
    if value <= 0:
        return [0, 1]
    raw = value / most
    exp = 10 ** math.floor(math.log10(raw))
    step = next(m * exp for m in (1, 2, 5, 10) if m * exp >= raw)
    if step < 1 and value >= 1:
        step = 1
    n = math.ceil(value / step - 1e-9)
    return [i * step for i in range(n + 1)]


def _short(label: str, n: int) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


def _legend(series: Sequence[Series]) -> str:
    items = "".join(f'<span><i style="background:{s.color}"></i>{escape(s.label)}</span>' for s in series)
    return f'<div class="chart-legend">{items}</div>'


def _table(t: Texts, head: str, categories: Sequence[str], series: Sequence[Series],
           values: dict[str, dict[str, float]], fmt: Callable[[float], str]) -> Markup:
    rows = "".join(
        "<tr><td>" + escape(c) + "</td>" +
        "".join(f'<td class="num">{escape(fmt(values.get(c, {}).get(s.key, 0)))}</td>' for s in series) + "</tr>"
        for c in categories
    )
    cols = "".join(f'<th class="num">{escape(s.label)}</th>' for s in series)
    return Markup(f'<details class="numbers"><summary>{escape(t("show_table"))}</summary><div class="table-scroll">'
                  f'<table class="data"><thead><tr><th>{escape(head)}</th>{cols}</tr></thead>'
                  f'<tbody>{rows}</tbody></table></div></details>')


def _empty(t: Texts) -> Chart:
    return Chart(Markup(f'<p class="hint">{escape(t("no_data"))}</p>'), Markup(""))


def column_chart(t: Texts, head: str, categories: Sequence[str], series: Sequence[Series],
                 values: dict[str, dict[str, float]], fmt: Callable[[float], str], height: int = 300) -> Chart:
    """Vertical bars, one group per category, one bar per series."""
    if not categories:
        return _empty(t)
    left, right, top, bottom = 78, 10, 10, 28
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    axis = ticks(max((values[c].get(s.key, 0) for c in categories for s in series), default=0))
    top_value = axis[-1]
    group_w = plot_w / len(categories)
    bar_w = max(min((group_w * 0.8) / len(series), 40), 2)
    parts = [f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(head)}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for v in axis:  # grid and y axis labels
        y = top + plot_h - plot_h * v / top_value
        parts.append(f'<g class="grid"><line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}"/></g>'
                     f'<g class="axis"><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(fmt(v))}</text></g>')
    for ci, c in enumerate(categories):
        x0 = left + ci * group_w + (group_w - bar_w * len(series)) / 2
        for si, s in enumerate(series):
            v = values[c].get(s.key, 0)
            h = plot_h * v / top_value
            x, y = x0 + si * bar_w, top + plot_h - h
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                         f'fill="{s.color}" data-series="{s.key}" data-category="{escape(c)}" data-value="{int(v)}">'
                         f'<title>{escape(c)} · {escape(s.label)}: {escape(fmt(v))}</title></rect>')
        parts.append(f'<g class="axis"><text x="{left + ci * group_w + group_w / 2:.1f}" y="{height - 8}" '
                     f'text-anchor="middle">{escape(c)}</text></g>')
    parts.append(f'<g class="axis"><line x1="{left}" x2="{WIDTH - right}" y1="{top + plot_h}" y2="{top + plot_h}"/></g>')
    parts.append("</svg>")
    return Chart(Markup(_legend(series) + "".join(parts)), _table(t, head, categories, series, values, fmt))


def bar_chart(t: Texts, head: str, categories: Sequence[str], series: Sequence[Series],
              values: dict[str, dict[str, float]], fmt: Callable[[float], str], stacked: bool = False,
              label_chars: int = 34) -> Chart:
    """Horizontal bars, one row per category: side by side, or stacked."""
    if not categories:
        return _empty(t)
    left, right, top, bottom = 230, 16, 6, 26
    band = 14 * (1 if stacked else len(series)) + 10
    height = top + bottom + band * len(categories)
    plot_w = WIDTH - left - right
    if stacked:
        biggest = max((sum(values[c].get(s.key, 0) for s in series) for c in categories), default=0)
    else:
        biggest = max((values[c].get(s.key, 0) for c in categories for s in series), default=0)
    axis = ticks(biggest)
    top_value = axis[-1]
    parts = [f'<svg viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(head)}" '
             f'xmlns="http://www.w3.org/2000/svg">']
    for v in axis:
        x = left + plot_w * v / top_value
        parts.append(f'<g class="grid"><line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom}"/></g>'
                     f'<g class="axis"><text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{escape(fmt(v))}</text></g>')
    for ci, c in enumerate(categories):
        y0 = top + ci * band + 5
        parts.append(f'<g class="axis"><text x="{left - 6}" y="{y0 + (band - 10) / 2 + 4:.1f}" text-anchor="end">'
                     f'<title>{escape(c)}</title>{escape(_short(c, label_chars))}</text></g>')
        x = left
        for si, s in enumerate(series):
            v = values[c].get(s.key, 0)
            w = plot_w * v / top_value
            y = y0 if stacked else y0 + si * 14
            bx = x if stacked else left
            parts.append(f'<rect class="bar" x="{bx:.1f}" y="{y:.1f}" width="{w:.1f}" height="13" fill="{s.color}" '
                         f'data-series="{s.key}" data-category="{escape(c)}" data-value="{int(v)}">'
                         f'<title>{escape(c)} · {escape(s.label)}: {escape(fmt(v))}</title></rect>')
            if stacked:
                x += w
    parts.append("</svg>")
    return Chart(Markup(_legend(series) + "".join(parts)), _table(t, head, categories, series, values, fmt))
