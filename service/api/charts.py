"""Charts drawn as inline SVG on the server: no JavaScript, no CDN, identical in the dashboard and
in an audit report saved to disk. Each chart is ``<svg class="chart" data-kind=... data-points=N>``
so tests (and people) can see what was drawn."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from html import escape

__all__ = ["bar_chart", "histogram", "line_chart"]

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
W, H = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 40

Number = float | int


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for mult in (1, 2, 5, 10):
        if (hi - lo) / (step * mult) <= n:
            step *= mult
            break
    start = math.floor(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 2) if start + i * step <= hi + 1e-9]


def _frame(kind: str, title: str, points: int, body: list[str], y_ticks: list[tuple[float, str]],
           x_ticks: list[tuple[float, str]], y_label: str, legend: Sequence[tuple[str, str]] = ()) -> str:
    out = [f'<svg class="chart" data-kind="{kind}" data-points="{points}" role="img" viewBox="0 0 {W} {H}" '
           f'width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11">',
           f"<title>{escape(title)}</title>",
           f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
           f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#444"/>',
           f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#444"/>']
    for y, label in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{W - RIGHT}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{escape(label)}</text>')
    for x, label in x_ticks:
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" text-anchor="middle">{escape(label)}</text>')
    out.append(f'<text transform="translate(12,{(TOP + H - BOTTOM) / 2}) rotate(-90)" text-anchor="middle">'
               f"{escape(y_label)}</text>")
    for i, (name, color) in enumerate(legend):
        x = LEFT + 8 + i * 130
        out.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14}" y="{H - 5}">{escape(name[:18])}</text>')
    if points == 0:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" fill="#888">no data yet</text>')
    out += body
    out.append("</svg>")
    return "".join(out)


def _x_value(x: Number | datetime) -> float:
    return x.timestamp() if isinstance(x, datetime) else float(x)


def line_chart(series: dict[str, Sequence[tuple[Number | datetime, Number | None]]], *, title: str, y_label: str,
               y_min: float | None = None, y_max: float | None = None, markers: bool = True) -> str:
    """One line per series; x is numbers or datetimes (shown as HH:MM or dates)."""
    pts = {name: [(_x_value(x), float(y)) for x, y in values if y is not None and math.isfinite(float(y))]
           for name, values in series.items()}
    all_pts = [p for values in pts.values() for p in values]
    n = len(all_pts)
    is_time = any(isinstance(x, datetime) for values in series.values() for x, _ in values)
    xs = [p[0] for p in all_pts] or [0.0, 1.0]
    ys = [p[1] for p in all_pts] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    x1 = x1 if x1 > x0 else x0 + 1
    lo = min(ys) if y_min is None else y_min
    hi = max(ys) if y_max is None else y_max
    lo = min(lo, 0.0) if y_min is None else lo
    hi = hi if hi > lo else lo + 1
    sx = lambda x: LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)  # noqa: E731
    sy = lambda y: H - BOTTOM - (y - lo) / (hi - lo) * (H - TOP - BOTTOM)  # noqa: E731
    body, legend = [], []
    for i, (name, values) in enumerate(pts.items()):
        color = PALETTE[i % len(PALETTE)]
        legend.append((name, color))
        if values:
            d = " ".join(f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for j, (x, y) in enumerate(sorted(values)))
            body.append(f'<path class="series" d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
            if markers:
                body += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}">'
                         f"<title>{escape(name)}: {_fmt(y)}</title></circle>" for x, y in values]
    if is_time:
        span = x1 - x0
        x_ticks = [(sx(x0 + k * span / 4), datetime.fromtimestamp(x0 + k * span / 4, tz=timezone.utc).strftime(
            "%H:%M:%S" if span < 3600 else "%H:%M" if span < 86400 else "%m-%d")) for k in range(5)]
    else:
        x_ticks = [(sx(t), _fmt(t)) for t in _ticks(x0, x1)]
    y_ticks = [(sy(t), _fmt(t)) for t in _ticks(lo, hi) if lo <= t <= hi]
    return _frame("line", title, n, body, y_ticks, x_ticks, y_label, legend)


def bar_chart(labels: Sequence[str], values: Sequence[Number | None], *, title: str, y_label: str,
              intervals: Sequence[tuple[Number | None, Number | None]] | None = None,
              y_min: float | None = None, y_max: float | None = None, color: str = PALETTE[0]) -> str:
    """Vertical bars, optionally with interval whiskers (e.g. 95% CIs)."""
    clean = [None if v is None or not math.isfinite(float(v)) else float(v) for v in values]
    known = [v for v in clean if v is not None]
    extra = [float(b) for iv in (intervals or []) for b in iv if b is not None and math.isfinite(float(b))]
    lo = min([0.0, *known, *extra]) if y_min is None else y_min
    hi = max([*known, *extra, lo + 1e-9]) if y_max is None else y_max
    hi = hi if hi > lo else lo + 1
    n = len(labels)
    slot = (W - LEFT - RIGHT) / max(n, 1)
    sy = lambda y: H - BOTTOM - (min(max(y, lo), hi) - lo) / (hi - lo) * (H - TOP - BOTTOM)  # noqa: E731
    body = []
    for i, (label, v) in enumerate(zip(labels, clean, strict=True)):
        x = LEFT + i * slot + slot * 0.15
        if v is not None:
            top, base = sy(max(v, lo)), sy(max(lo, 0.0) if lo < 0 < hi else lo)
            body.append(f'<rect class="bar" x="{x:.1f}" y="{min(top, base):.1f}" width="{slot * 0.7:.1f}" '
                        f'height="{abs(base - top):.1f}" fill="{color}"><title>{escape(label)}: {_fmt(v)}</title></rect>')
        if intervals and intervals[i][0] is not None and intervals[i][1] is not None:
            cx = x + slot * 0.35
            a, b = sy(float(intervals[i][0])), sy(float(intervals[i][1]))  # type: ignore[arg-type]
            body.append(f'<path class="interval" d="M{cx:.1f},{a:.1f} L{cx:.1f},{b:.1f} M{cx - 4:.1f},{a:.1f} '
                        f'L{cx + 4:.1f},{a:.1f} M{cx - 4:.1f},{b:.1f} L{cx + 4:.1f},{b:.1f}" stroke="#111"/>')
    short = _tick_labels(labels, width=min(20, max(8, int(slot / 6.5))))  # a few bars get their full names
    widest = max((len(t) for t in short), default=1)
    step = max(1, math.ceil(n / max(1, int((W - LEFT - RIGHT) / (widest * 6.5 + 10)))))  # ~6.5 px a character
    x_ticks = [(LEFT + i * slot + slot / 2, short[i]) for i in range(0, n, step)]
    y_ticks = [(sy(t), _fmt(t)) for t in _ticks(lo, hi) if lo <= t <= hi]
    return _frame("bar", title, len(known), body, y_ticks, x_ticks, y_label)


def _tick_labels(labels: Sequence[str], width: int = 12) -> list[str]:
    """Axis labels: a prefix all share (``sim-rater-``) dropped, then cut to ``width`` characters (the full
    label stays in each bar's tooltip)."""
    prefix = os.path.commonprefix(list(labels)) if len(labels) > 1 else ""
    cut = len(prefix) if len(prefix) >= 4 else 0
    return [("…" + t[cut:] if cut else t)[:width] for t in labels]


def histogram(edges: Sequence[float], counts: Sequence[int], *, title: str, y_label: str = "items") -> str:
    labels = [f"{edges[i]:.1f}-{edges[i + 1]:.1f}" for i in range(len(counts))]
    return bar_chart(labels, list(counts), title=title, y_label=y_label, color=PALETTE[2]).replace(
        'data-kind="bar"', 'data-kind="histogram"', 1)
