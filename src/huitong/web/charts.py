"""Line charts drawn as SVG on the server: time axis, one or more series, reference bands.

Pure: :func:`line_chart_svg` turns a :class:`Chart` (data) into SVG markup (text) with an
accessible name and description (``<title>``/``<desc>`` referenced by ``aria-labelledby``),
a ``<title>`` on every data point, and no inline styles (colours come from the stylesheet's
``.s0``…``.s5`` classes, so the page's Content-Security-Policy needs no ``unsafe-inline``).
Series also differ by dash pattern, so they stay apart without colour.
https://www.w3.org/TR/SVG2/struct.html#DescriptionAndTitleElements
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape

from huitong.web.display import CST

__all__ = ["Band", "Chart", "Point", "Series", "line_chart_svg", "time_ticks", "value_ticks"]

_TONES = 6


@dataclass(frozen=True, slots=True)
class Point:
    """One reading. ``hollow`` marks a different source (a home device) with an open
    marker; ``note`` is added to the point's tooltip."""

    at: datetime
    value: float
    note: str = ""
    hollow: bool = False


@dataclass(frozen=True, slots=True)
class Series:
    """``markers=False`` draws the line only (dense series such as hourly counts)."""

    name: str
    points: Sequence[Point]
    tone: int = 0
    markers: bool = True


@dataclass(frozen=True, slots=True)
class Band:
    """A reference range drawn behind the data; with only one bound, a threshold line."""

    low: float | None
    high: float | None
    label: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    chart_id: str  # unique on the page: the ids of <title> and <desc> derive from it
    title: str
    description: str
    unit: str
    series: Sequence[Series]
    bands: Sequence[Band] = field(default_factory=tuple)
    width: int = 640
    height: int = 260
    integer: bool = False  # counts: no fractional ticks
    # The time axis spans at least this (e.g. a report's whole window of months), so one
    # month of data is not drawn on an axis of hours.
    domain: tuple[datetime, datetime] | None = None


_NICE_STEPS = (1.0, 2.0, 2.5, 5.0, 10.0)


def value_ticks(low: float, high: float, wanted: int = 5, *,
                integer: bool = False) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 × 10ⁿ apart; at least 1 apart for ``integer``)
    covering ``low``..``high``."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + (abs(low) * 0.1 or 1.0)
    raw = (high - low) / max(wanted - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(s * magnitude for s in _NICE_STEPS if s * magnitude >= raw)
    if integer:
        step = max(1.0, math.ceil(step))
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)


def time_ticks(start: datetime, end: datetime, wanted: int = 7) -> list[tuple[datetime, str]]:
    """Tick instants and labels (CST) for a time axis: years, months, days or hours,
    whichever gives about ``wanted`` ticks."""
    start, end = start.astimezone(CST), end.astimezone(CST)
    span = end - start
    ticks: list[tuple[datetime, str]] = []
    if span > timedelta(days=3 * 365):
        step = max(1, math.ceil(span.days / 365 / wanted))
        moment = start.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        while moment <= end:
            if moment >= start:
                ticks.append((moment, f"{moment.year}"))
            moment = moment.replace(year=moment.year + step)
    elif span > timedelta(days=60):
        months = span.days / 30.4
        step = next((s for s in (1, 2, 3, 6, 12) if months / s <= wanted), 12)
        moment = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        moment = _add_months(moment, (-(moment.month - 1)) % step)
        while moment <= end:
            if moment >= start:
                ticks.append((moment, moment.strftime("%Y-%m")))
            moment = _add_months(moment, step)
    elif span > timedelta(days=2):
        step = next((s for s in (1, 2, 7, 14) if span.days / s <= wanted), 14)
        moment = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while moment <= end:
            if moment >= start:
                ticks.append((moment, moment.strftime("%m-%d")))
            moment += timedelta(days=step)
    else:
        hours = max(span.total_seconds() / 3600, 1)
        step = next((s for s in (1, 2, 3, 6, 12) if hours / s <= wanted), 12)
        moment = start.replace(minute=0, second=0, microsecond=0)
        while moment <= end:
            if moment >= start:
                ticks.append((moment, moment.strftime("%H:%M")))
            moment += timedelta(hours=step)
    return ticks


def _text_width(text: str) -> int:
    """Rough width in px at the legend's 12 px: CJK characters are square, Latin narrower."""
    return sum(12 if ord(ch) > 0x2E80 else 7 for ch in text)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def line_chart_svg(chart: Chart) -> str:
    """The chart as an ``<svg>`` element (a string, already escaped). A chart without
    points still renders its frame with the description, so the page layout holds."""
    w, h = chart.width, chart.height
    left, right, top, bottom = 52, 16, 30, 34
    plot_w, plot_h = w - left - right, h - top - bottom
    points = [p for s in chart.series for p in s.points if math.isfinite(p.value)]
    cid = escape(chart.chart_id)
    out = [
        f'<svg class="chart" id="{cid}" viewBox="0 0 {w} {h}" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{cid}-title">{escape(chart.title)}</title>',
        f'<desc id="{cid}-desc">{escape(chart.description)}</desc>',
    ]
    # legend along the top, in as many rows as it needs (the plot moves down)
    x, row = left, 0
    for s in chart.series:
        tone = s.tone % _TONES
        width = 34 + _text_width(s.name)
        if x > left and x + width > w - right:
            x, row = left, row + 1
        ly = 12 + 18 * row
        out.append(f'<g class="legend s{tone}"><line x1="{x}" y1="{ly}" x2="{x + 18}" '
                   f'y2="{ly}"/><text x="{x + 22}" y="{ly + 4}">{escape(s.name)}</text></g>')
        x += width
    if row:
        top += 18 * row
        plot_h -= 18 * row
    if not points:
        out.append(f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" '
                   f'height="{plot_h}"/></svg>')
        return "".join(out)

    t0 = min(p.at for p in points)
    t1 = max(p.at for p in points)
    if chart.domain is not None:
        t0, t1 = min(t0, chart.domain[0]), max(t1, chart.domain[1])
    if t1 - t0 < timedelta(hours=1):
        t0, t1 = t0 - timedelta(hours=1), t1 + timedelta(hours=1)
    pad = (t1 - t0) * 0.03
    t0, t1 = t0 - pad, t1 + pad
    bounds = [p.value for p in points]
    for band in chart.bands:
        bounds += [b for b in (band.low, band.high) if b is not None]
    ticks = value_ticks(min(bounds), max(bounds), integer=chart.integer)
    v0, v1 = ticks[0], ticks[-1]
    if v1 == v0:
        v1 = v0 + 1

    def px(moment: datetime) -> float:
        return left + (moment - t0).total_seconds() / (t1 - t0).total_seconds() * plot_w

    def py(value: float) -> float:
        return top + (v1 - value) / (v1 - v0) * plot_h

    out.append(f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}"/>')
    for band in chart.bands:
        label = escape(band.label)
        if band.low is not None and band.high is not None:
            y_hi, y_lo = py(band.high), py(band.low)
            out.append(f'<rect class="band" x="{left}" y="{y_hi:.1f}" width="{plot_w}" '
                       f'height="{max(y_lo - y_hi, 1):.1f}"><title>{label}</title></rect>')
        else:
            bound = band.high if band.high is not None else band.low
            assert bound is not None
            out.append(f'<line class="threshold" x1="{left}" x2="{left + plot_w}" '
                       f'y1="{py(bound):.1f}" y2="{py(bound):.1f}"><title>{label}</title></line>')
    for value in ticks:
        y = py(value)
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" '
                   f'y2="{y:.1f}"/><text class="tick" x="{left - 6}" y="{y + 4:.1f}" '
                   f'text-anchor="end">{_fmt(value)}</text>')
    out.append(f'<text class="unit" x="{left - 6}" y="{top - 8}" text-anchor="end">'
               f'{escape(chart.unit)}</text>')
    for moment, label in time_ticks(t0, t1):
        x_t = px(moment)
        out.append(f'<line class="tickmark" x1="{x_t:.1f}" x2="{x_t:.1f}" y1="{top + plot_h}" '
                   f'y2="{top + plot_h + 4}"/><text class="tick" x="{x_t:.1f}" '
                   f'y="{top + plot_h + 18}" text-anchor="middle">{escape(label)}</text>')
    for s in chart.series:
        tone = s.tone % _TONES
        ordered = sorted((p for p in s.points if math.isfinite(p.value)), key=lambda p: p.at)
        if len(ordered) > 1:
            path = " ".join(f"{px(p.at):.1f},{py(p.value):.1f}" for p in ordered)
            out.append(f'<polyline class="line s{tone}" points="{path}"/>')
        for p in ordered if s.markers else ():
            tip = f"{p.at.astimezone(CST):%Y-%m-%d %H:%M} {s.name} {_fmt(p.value)} {chart.unit}"
            if p.note:
                tip += f" ({p.note})"
            hollow = " hollow" if p.hollow else ""
            out.append(f'<circle class="pt s{tone}{hollow}" cx="{px(p.at):.1f}" '
                       f'cy="{py(p.value):.1f}" r="4"><title>{escape(tip)}</title></circle>')
    out.append("</svg>")
    return "".join(out)
