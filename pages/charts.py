"""Server-side charts as inline SVG: plain lists and numbers in, one ``SafeString`` out. No Django models here.

Every string that reaches the SVG (label values, model names, dates — customer data) passes through
``format_html``, which escapes it; nothing is marked safe by hand. Styling is done with presentation
attributes and the classes in ``static/concord/site.css`` (the CSP forbids inline ``style``). Each chart has
``role="img"``, an ``aria-label`` summarising it and a ``<title>``; series are told apart by dash pattern and
marker shape as well as colour, and every legend entry has a text label.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

FONT = 12
NOTHING = SafeString("")
INK = "#1d2430"
MUTED = "#5b6573"
GRID = "#d8dde4"
FILL = "#1d4ed8"
# (colour, dash pattern, marker) per series: distinguishable without colour.
SERIES_STYLES = (("#1d4ed8", "", "circle"), ("#b45309", "7 4", "square"), ("#047857", "2 3", "triangle"))


def _n(value: float) -> str:
    """A coordinate, short and locale-free."""
    return f"{value:.1f}"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(parts: Iterable[SafeString]) -> SafeString:
    return format_html_join("\n", "{}", ((part,) for part in parts))


def _svg(*, title: str, summary: str, width: float, height: float, body: Iterable[SafeString]) -> SafeString:
    return format_html(
        '<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" aria-label="{}" '
        'font-size="{}" fill="{}">\n<title>{}</title>\n{}\n</svg>',
        _n(width),
        _n(height),
        f"{title}: {summary}",
        FONT,
        INK,
        title,
        _join(body),
    )


def empty_chart(*, title: str, message: str = "No data yet.") -> SafeString:
    """A small SVG saying there is nothing to draw (rather than an empty frame)."""
    text = format_html('<text x="16" y="34" fill="{}">{}</text>', MUTED, message)
    return _svg(title=title, summary=message, width=480, height=56, body=[text])


def _text(x: float, y: float, text: str, *, anchor: str = "start", extra: str = "", full: str = "") -> SafeString:
    """A text element; ``full`` (the untruncated text) becomes its tooltip."""
    tooltip = format_html("<title>{}</title>", full) if full and full != text else NOTHING
    return format_html(
        '<text x="{}" y="{}" text-anchor="{}"{}>{}{}</text>',
        _n(x),
        _n(y),
        anchor,
        format_html(' class="{}"', extra) if extra else NOTHING,
        tooltip,
        text,
    )


def _ticks(low: float, high: float, *, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering [low, high]."""
    span = high - low or 1.0
    raw = span / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9:
        ticks.append(round(value, 10) + 0.0)
        value += step
    return ticks


def _tick_label(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value else "0"


def _marker(shape: str, x: float, y: float, colour: str) -> SafeString:
    if shape == "square":
        return format_html('<rect x="{}" y="{}" width="7" height="7" fill="{}"/>', _n(x - 3.5), _n(y - 3.5), colour)
    if shape == "triangle":
        points = f"{_n(x)},{_n(y - 4.5)} {_n(x - 4.5)},{_n(y + 3.5)} {_n(x + 4.5)},{_n(y + 3.5)}"
        return format_html('<polygon points="{}" fill="{}"/>', points, colour)
    return format_html('<circle cx="{}" cy="{}" r="3.5" fill="{}"/>', _n(x), _n(y), colour)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


# --- Line chart: agreement over time -----------------------------------------------------------------------------
def line_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    y_title: str,
    x_title: str,
    percent: Sequence[bool] = (),
) -> SafeString:
    """Up to three series over the same x positions (``None`` leaves a gap). The y axis spans 0 (or the smallest
    value, for coefficients below 0) to 1. ``percent[i]`` formats series ``i`` as a percentage in the summary."""
    values = [v for _, points in series for v in points if _finite(v)]
    if not x_labels or not values:
        return empty_chart(title=title)
    width, height = 640.0, 300.0
    left, right, top, bottom = 56.0, 16.0, 16.0, 96.0
    plot_w, plot_h = width - left - right, height - top - bottom
    low = min(0.0, math.floor(min(values) * 4) / 4)
    high = max(1.0, math.ceil(max(values) * 4) / 4)
    n = len(x_labels)

    def x_at(i: int) -> float:
        return left + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y_at(v: float) -> float:
        return top + plot_h * (high - v) / (high - low)

    body: list[SafeString] = []
    for tick in _ticks(low, high):
        y = y_at(tick)
        body.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}"/>', _n(left), _n(width - right), _n(y), _n(y), GRID
            )
        )
        body.append(_text(left - 6, y + 4, _tick_label(tick), anchor="end"))
    axis_y = y_at(0.0)
    body.append(
        format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}"/>',
            _n(left),
            _n(width - right),
            _n(axis_y),
            _n(axis_y),
            INK,
        )
    )
    shown = sorted({round(i * (n - 1) / 4) for i in range(5)}) if n > 1 else [0]
    for i in shown:
        anchor = "start" if n > 1 and i == 0 else "end" if n > 1 and i == n - 1 else "middle"
        body.append(_text(x_at(i), top + plot_h + 16, _short(x_labels[i], 20), anchor=anchor, full=x_labels[i]))
    body.append(_text(left + plot_w / 2, top + plot_h + 34, x_title, anchor="middle", extra="axis-title"))
    body.append(
        format_html(
            '<text transform="translate({} {}) rotate(-90)" text-anchor="middle" class="axis-title">{}</text>',
            _n(14),
            _n(top + plot_h / 2),
            y_title,
        )
    )
    legend_y = height - 24
    for index, (name, points) in enumerate(series):
        colour, dash, shape = SERIES_STYLES[index % len(SERIES_STYLES)]
        dash_attr = format_html(' stroke-dasharray="{}"', dash) if dash else NOTHING
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for i, value in enumerate(points):
            if _finite(value):
                segment.append(f"{_n(x_at(i))},{_n(y_at(value))}")  # type: ignore[arg-type]
            elif segment:
                segment = []
                segments.append(segment)
        for part in segments:
            if len(part) > 1:
                body.append(
                    format_html(
                        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{}/>',
                        " ".join(part),
                        colour,
                        dash_attr,
                    )
                )
        for i, value in enumerate(points):
            if _finite(value):
                body.append(_marker(shape, x_at(i), y_at(value), colour))  # type: ignore[arg-type]
        lx = left + index * 190
        body.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"{}/>',
                _n(lx),
                _n(lx + 28),
                _n(legend_y),
                _n(legend_y),
                colour,
                dash_attr,
            )
        )
        body.append(_marker(shape, lx + 14, legend_y, colour))
        body.append(_text(lx + 34, legend_y + 4, name))
    latest = []
    for index, (name, points) in enumerate(series):
        finite = [v for v in points if _finite(v)]
        if finite:
            is_percent = index < len(percent) and percent[index]
            latest.append(f"{name} {finite[-1]:.0%}" if is_percent else f"{name} {finite[-1]:.2f}")
    summary = f"{n} snapshot{'s' if n != 1 else ''}; latest " + ", ".join(latest)
    return _svg(title=title, summary=summary, width=width, height=height, body=body)


# --- Horizontal bars: label distribution -------------------------------------------------------------------------
def bar_chart(*, title: str, rows: Sequence[tuple[str, int]]) -> SafeString:
    """One horizontal bar per (name, count), with the count and its share of the total as text."""
    total = sum(count for _, count in rows)
    if not rows or total <= 0:
        return empty_chart(title=title)
    row_h, label_w, bar_w, text_w = 28.0, 150.0, 330.0, 130.0
    width, height = label_w + bar_w + text_w, row_h * len(rows) + 8
    biggest = max(count for _, count in rows)
    body: list[SafeString] = []
    parts = []
    for i, (name, count) in enumerate(rows):
        y = 4 + i * row_h
        length = bar_w * count / biggest if biggest else 0
        share = count / total
        body.append(_text(label_w - 8, y + 18, _short(name, 20), anchor="end", full=name))
        body.append(
            format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"/>', _n(label_w), _n(y + 4), _n(length), 18, FILL
            )
        )
        body.append(_text(label_w + length + 6, y + 18, f"{count} ({share:.1%})"))
        parts.append(f"{name} {count} ({share:.1%})")
    return _svg(title=title, summary="; ".join(parts), width=width, height=height, body=body)


# --- Heatmap: confusion of annotators vs consensus ---------------------------------------------------------------
def heatmap(
    *, title: str, labels: Sequence[str], matrix: Sequence[Sequence[int]], row_title: str, column_title: str
) -> SafeString:
    """A square count matrix: each cell shows its count and its share of the row; shading is that share."""
    k = len(labels)
    if not k or len(matrix) != k or any(len(row) != k for row in matrix) or not any(any(row) for row in matrix):
        return empty_chart(title=title)
    cell_w, cell_h, left, top = 72.0, 44.0, 150.0, 58.0
    width, height = left + cell_w * k + 8, top + cell_h * k + 8
    body: list[SafeString] = [
        _text(left + cell_w * k / 2, 16, column_title, anchor="middle", extra="axis-title"),
        format_html(
            '<text transform="translate({} {}) rotate(-90)" text-anchor="middle" class="axis-title">{}</text>',
            _n(14),
            _n(top + cell_h * k / 2),
            row_title,
        ),
    ]
    for j, name in enumerate(labels):
        body.append(_text(left + cell_w * (j + 0.5), top - 10, _short(name, 10), anchor="middle", full=name))
    for i, name in enumerate(labels):
        row = matrix[i]
        total = sum(row)
        y = top + i * cell_h
        body.append(_text(left - 8, y + cell_h / 2 + 4, _short(name, 18), anchor="end", full=name))
        for j, count in enumerate(row):
            share = count / total if total else 0.0
            x = left + j * cell_w
            ink = "#ffffff" if share > 0.55 else INK
            body.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="#ffffff" stroke="{}"/>'
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="{}"/>',
                    _n(x),
                    _n(y),
                    _n(cell_w),
                    _n(cell_h),
                    GRID,
                    _n(x),
                    _n(y),
                    _n(cell_w),
                    _n(cell_h),
                    FILL,
                    f"{share:.3f}",
                )
            )
            body.append(
                format_html(
                    '<text x="{}" y="{}" text-anchor="middle" fill="{}" font-weight="600">{}</text>'
                    '<text x="{}" y="{}" text-anchor="middle" fill="{}" font-size="10">{}</text>',
                    _n(x + cell_w / 2),
                    _n(y + 19),
                    ink,
                    count,
                    _n(x + cell_w / 2),
                    _n(y + 34),
                    ink,
                    f"{share:.0%}" if total else "—",
                )
            )
    diagonal = sum(matrix[i][i] for i in range(k))
    total = sum(sum(row) for row in matrix)
    summary = f"{k} labels; {diagonal} of {total} judgments ({diagonal / total:.0%}) match the consensus"
    return _svg(title=title, summary=summary, width=width, height=height, body=body)


# --- Interval bars: model leaderboard ----------------------------------------------------------------------------
def interval_chart(*, title: str, rows: Sequence[tuple[str, float, float, float]], axis_title: str) -> SafeString:
    """One row per (name, estimate, low, high) on a shared axis: the interval as a bar with end caps, the estimate
    as a dot, and a dashed reference line at 0."""
    rows = [row for row in rows if all(_finite(v) for v in row[1:])]
    if not rows:
        return empty_chart(title=title)
    row_h, label_w, plot_w, right = 30.0, 190.0, 400.0, 24.0
    top, bottom = 8.0, 52.0
    width, height = label_w + plot_w + right, top + row_h * len(rows) + bottom
    low = min(0.0, *(row[2] for row in rows))
    high = max(0.0, *(row[3] for row in rows))
    pad = (high - low) * 0.05 or 0.5
    low, high = low - pad, high + pad

    def x_at(v: float) -> float:
        return label_w + plot_w * (v - low) / (high - low)

    plot_bottom = top + row_h * len(rows)
    body: list[SafeString] = []
    for tick in _ticks(low, high, count=6):
        x = x_at(tick)
        body.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}"/>', _n(x), _n(x), _n(top), _n(plot_bottom), GRID
            )
        )
        body.append(_text(x, plot_bottom + 16, _tick_label(tick), anchor="middle"))
    zero = x_at(0.0)
    body.append(
        format_html(
            '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-dasharray="4 3"/>',
            _n(zero),
            _n(zero),
            _n(top),
            _n(plot_bottom),
            MUTED,
        )
    )
    body.append(_text(label_w + plot_w / 2, plot_bottom + 38, axis_title, anchor="middle", extra="axis-title"))
    parts = []
    for i, (name, estimate, lo, hi) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        body.append(_text(label_w - 8, y + 4, _short(name, 26), anchor="end", full=name))
        body.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="6" stroke-opacity="0.35"/>'
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"/>'
                '<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"/>',
                _n(x_at(lo)),
                _n(x_at(hi)),
                _n(y),
                _n(y),
                FILL,
                _n(x_at(lo)),
                _n(x_at(lo)),
                _n(y - 7),
                _n(y + 7),
                FILL,
                _n(x_at(hi)),
                _n(x_at(hi)),
                _n(y - 7),
                _n(y + 7),
                FILL,
            )
        )
        body.append(format_html('<circle cx="{}" cy="{}" r="4.5" fill="{}"/>', _n(x_at(estimate)), _n(y), INK))
        parts.append(f"{name} {estimate:.2f} [{lo:.2f}, {hi:.2f}]")
    return _svg(title=title, summary="; ".join(parts), width=width, height=height, body=body)
