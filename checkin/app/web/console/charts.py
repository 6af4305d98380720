"""Server-side SVG charts of a patient's reported pain scores and temperatures by post-op day.

Plain SVG markup built from numbers only (no patient text reaches it), so it needs no script
and passes the CSP. The threshold line is where triage raises a flag (fever, severe pain), so
the nurse sees the trend against the line that matters.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 14, 30


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    low: float
    high: float
    threshold: float
    threshold_label: str


PAIN = Chart("Pain score (0-10)", "", 0, 10, 8, "severe pain ≥ 8")
TEMPERATURE = Chart("Temperature (°F)", "°F", 96, 105, 101.0, "fever ≥ 101.0 °F")


def svg(chart: Chart, points: list[tuple[int, float]], *, chart_id: str) -> str:
    """An accessible SVG (role img, a title, and a description listing every point)."""
    days = [d for d, _ in points] or [0]
    d0 = min([*days, 0])
    d1 = max([*days, d0 + 1])
    span_x = max(1, d1 - d0)
    low = min([chart.low] + [v for _, v in points])
    high = max([chart.high] + [v for _, v in points])
    span_y = max(1e-9, high - low)
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(day: float) -> float:
        return LEFT + (day - d0) / span_x * w

    def y(value: float) -> float:
        return TOP + (high - value) / span_y * h

    desc = (
        "; ".join(f"day {d}: {v:g}{chart.unit}" for d, v in points) if points else "no readings reported yet"
    )
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" class="chart">',
        f'<title id="{chart_id}-t">{escape(chart.title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="#ffffff" stroke="#9e9e9e"/>',
    ]
    for tick in _ticks(low, high):
        out.append(
            f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11" fill="#333">{tick:g}</text>'
        )
    step = max(1, span_x // 10)
    for day in range(d0, d1 + 1, step):
        out.append(
            f'<text x="{x(day):.1f}" y="{HEIGHT - 12}" text-anchor="middle" font-size="11" fill="#333">{day}</text>'
        )
    out.append(
        f'<text x="{LEFT + w / 2:.1f}" y="{HEIGHT - 1}" text-anchor="middle" font-size="11" fill="#333">post-op day</text>'
    )
    ty = y(chart.threshold)
    out.append(
        f'<line x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + w}" y2="{ty:.1f}" stroke="#b00020" stroke-dasharray="6 4"/>'
    )
    out.append(
        f'<text x="{LEFT + w - 4}" y="{ty - 4:.1f}" text-anchor="end" font-size="11" fill="#b00020">'
        f"{escape(chart.threshold_label)}</text>"
    )
    if len(points) > 1:
        path = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="#0b5cad" stroke-width="2"/>')
    for d, v in points:
        color = "#b00020" if v >= chart.threshold else "#0b5cad"
        out.append(f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="4" fill="{color}"/>')
    out.append("</svg>")
    return "\n".join(out)


def _ticks(low: float, high: float) -> list[float]:
    step = 1.0 if high - low <= 12 else 5.0
    start = int(low // step * step)
    ticks, t = [], float(start)
    while t <= high:
        if t >= low:
            ticks.append(t)
        t += step
    return ticks[:: max(1, len(ticks) // 6)]
