"""Charts for the dashboard as server-rendered SVG: lines over time and bars per label.

Owns the drawing only: scales, nice tick values, axes, legend, and the "nothing to show"
state; callers hand it plain numbers and already translated words. Written here rather than
taken from pygal because pygal puts a <script> and some 15 kB of CSS in every chart, and the
dashboard's pages carry no script at all (their Content-Security-Policy forbids it). The
SVG is inline in the page, sized by its viewBox, styled by the page's stylesheet
(static/dashboard.css, classes chart-*), and says each value in a <title> on hover.
"""

import datetime
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

Format = Callable[[float], str]
# Distinct for the common kinds of colour blindness (Okabe-Ito).
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 12, 28


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[float, float]]  # (Unix time, value), in time order


def plain(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values covering low..high: steps of 1, 2 or 5 times a power of ten."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _time_ticks(start: float, end: float, zone: ZoneInfo) -> list[tuple[float, str]]:
    """Up to about seven labelled moments on round local times: midnights (every n days)
    for spans over two days, whole hours (every 1, 2, 3, 6 or 12) within them."""
    span = max(end - start, 1.0)
    first = datetime.datetime.fromtimestamp(start, zone)
    if span > 2 * 86400:
        step = datetime.timedelta(days=max(1, math.ceil(span / 86400 / 6)))
        moment = first.replace(hour=0, minute=0, second=0, microsecond=0)
        fmt = "%m-%d"
    else:
        hours = next((h for h in (1, 2, 3, 6, 12) if span / (h * 3600) <= 7), 24)
        step = datetime.timedelta(hours=hours)
        moment = first.replace(minute=0, second=0, microsecond=0)
        moment = moment.replace(hour=moment.hour - moment.hour % hours)
        fmt = "%H:%M"
    ticks = []
    while moment.timestamp() <= end:
        if moment.timestamp() >= start:
            ticks.append((moment.timestamp(), moment.strftime(fmt)))
        # Through the calendar, so a tick stays on midnight across a change of offset.
        moment = (moment.replace(tzinfo=None) + step).replace(tzinfo=zone)
    return ticks


def _frame(
    chart_id: str, label: str, width: int, height: int, body: str, legend: Sequence[str]
) -> Markup:
    keys = "".join(
        f'<span class="chart-key chart-key-{i % len(PALETTE)}"><i></i>{escape(name)}</span>'
        for i, name in enumerate(legend)
    )
    return Markup(
        f'<figure class="chart" id="{escape(chart_id)}"><figcaption>{escape(label)}</figcaption>'
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}">{body}</svg>'
        + (f'<div class="chart-legend">{keys}</div>' if len(legend) > 1 else "")
        + "</figure>"
    )


def _empty(chart_id: str, label: str, empty: str) -> Markup:
    return Markup(
        f'<figure class="chart chart-empty" id="{escape(chart_id)}">'
        f'<figcaption>{escape(label)}</figcaption><p class="none">{escape(empty)}</p></figure>'
    )


def _y_axis(ticks: Sequence[float], y: Callable[[float], float], width: int, fmt: Format) -> str:
    parts = []
    for tick in ticks:
        at = y(tick)
        parts.append(
            f'<line class="chart-grid" x1="{LEFT}" y1="{at:.1f}" x2="{width - RIGHT}" '
            f'y2="{at:.1f}"/><text class="chart-tick" x="{LEFT - 6}" y="{at + 4:.1f}" '
            f'text-anchor="end">{escape(fmt(tick))}</text>'
        )
    return "".join(parts)


def line_chart(
    chart_id: str,
    series: Sequence[Series],
    *,
    label: str,
    empty: str,
    zone: ZoneInfo,
    y_format: Format = plain,
    width: int = 720,
    height: int = 220,
    start: float | None = None,
    end: float | None = None,
    floor: float | None = 0.0,
) -> Markup:
    """Values over time, one line per series; `empty` is said when there is no point."""
    points = [p for s in series for p in s.points]
    if not points:
        return _empty(chart_id, label, empty)
    t0 = start if start is not None else min(p[0] for p in points)
    t1 = end if end is not None else max(p[0] for p in points)
    t1 = t1 if t1 > t0 else t0 + 3600
    values = [p[1] for p in points]
    low = min(values) if floor is None else min(floor, min(values))
    ticks = nice_ticks(low, max(values))
    v0, v1 = ticks[0], ticks[-1]
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def x(at: float) -> float:
        return LEFT + (at - t0) / (t1 - t0) * plot_w

    def y(value: float) -> float:
        return TOP + plot_h - (value - v0) / (v1 - v0) * plot_h

    body = [_y_axis(ticks, y, width, y_format)]
    for at, text in _time_ticks(t0, t1, zone):
        body.append(
            f'<text class="chart-tick" x="{x(at):.1f}" y="{height - 8}" '
            f'text-anchor="middle">{escape(text)}</text>'
        )
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{x(at):.1f},{y(v):.1f}" for at, v in one.points)
        body.append(f'<polyline class="chart-line" fill="none" stroke="{colour}" points="{path}"/>')
        if len(one.points) <= 60:
            for at, v in one.points:
                when = datetime.datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M")
                body.append(
                    f'<circle cx="{x(at):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                    f"<title>{escape(one.name)} {escape(when)}: {escape(y_format(v))}</title>"
                    "</circle>"
                )
    body.append(
        f'<line class="chart-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" '
        f'y2="{TOP + plot_h}"/>'
    )
    return _frame(chart_id, label, width, height, "".join(body), [s.name for s in series])


def bar_chart(
    chart_id: str,
    bars: Sequence[tuple[str, float]],
    *,
    label: str,
    empty: str,
    y_format: Format = plain,
    width: int = 720,
    height: int = 220,
) -> Markup:
    """One bar per label (days, kinds), in the order given; every 1st of ~8 labels shown."""
    if not bars or not any(value for _, value in bars):
        return _empty(chart_id, label, empty)
    ticks = nice_ticks(0, max(value for _, value in bars))
    top = ticks[-1]
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    slot = plot_w / len(bars)

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    body = [_y_axis(ticks, y, width, y_format)]
    every = max(1, math.ceil(len(bars) / 8))
    for index, (name, value) in enumerate(bars):
        left = LEFT + index * slot + slot * 0.15
        body.append(
            f'<rect class="chart-bar" x="{left:.1f}" y="{y(value):.1f}" '
            f'width="{slot * 0.7:.1f}" height="{TOP + plot_h - y(value):.1f}">'
            f"<title>{escape(name)}: {escape(y_format(value))}</title></rect>"
        )
        if index % every == 0:
            body.append(
                f'<text class="chart-tick" x="{left + slot * 0.35:.1f}" y="{height - 8}" '
                f'text-anchor="middle">{escape(name)}</text>'
            )
    body.append(
        f'<line class="chart-axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{width - RIGHT}" '
        f'y2="{TOP + plot_h}"/>'
    )
    return _frame(chart_id, label, width, height, "".join(body), [])
