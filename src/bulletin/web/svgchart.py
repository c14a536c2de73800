"""Charts as inline SVG, drawn on the server: no script, no plotting library. Each chart is
an image (``role="img"``) named by its ``<title>`` through ``aria-labelledby``; the page puts
a table with the same numbers beside it, so the chart itself need not be read.

Grouped bars: one group per label, one bar per series, a legend under the plot. A missing
value (None) draws no bar."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

#: series colours, each at least 3:1 against white (WCAG 1.4.11), told apart by the legend
PALETTE = ("#1f5fa8", "#b34700", "#2e7d32", "#7b1fa2", "#a0183a", "#00695c", "#5d4037", "#37474f")
WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 40
LEGEND_LINE = 18


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten at or above ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 < value:
        step *= 10
    while step > value:
        step /= 10
    for m in (1, 2, 2.5, 5, 10):
        if step * m >= value:
            return step * m
    return step * 10  # pragma: no cover - the loop above always returns


def _num(v: float) -> str:
    return f"{v:g}"


def bars(
    ident: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
) -> Markup:
    """An SVG bar chart of ``series`` (name, one value per label) over ``labels``.

    ``ident`` must be unique in the page (it prefixes the title's id).
    """
    legend_rows = len(series)
    height = HEIGHT + legend_rows * LEGEND_LINE
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_top(max((v for _, vs in series for v in vs if v is not None), default=0.0))
    out = [
        '<svg xmlns="http://www.w3.org/2000/svg" role="img"'
        f' aria-labelledby="{escape(ident)}-title"'
        f' viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet"'
        ' class="chart">',
        f'<title id="{escape(ident)}-title">{escape(title)}</title>',
    ]
    base = TOP + plot_h
    for k in range(5):  # grid lines and their values
        y = base - plot_h * k / 4
        out.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#767676"'
            f' stroke-width="{1 if k == 0 else 0.5}"/>'
        )
        out.append(
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11"'
            f' fill="#222">{_num(top * k / 4)}</text>'
        )
    group = plot_w / max(len(labels), 1)
    bar = group * 0.8 / max(len(series), 1)
    every = max(1, len(labels) // 7)  # at most about seven labels under the axis
    for i, label in enumerate(labels):
        x0 = LEFT + i * group + group * 0.1
        for j, (_, values) in enumerate(series):
            v = values[i] if i < len(values) else None
            if v is None or v <= 0:
                continue
            h = plot_h * v / top
            out.append(
                f'<rect x="{x0 + j * bar:.1f}" y="{base - h:.1f}" width="{bar:.1f}"'
                f' height="{h:.1f}" fill="{PALETTE[j % len(PALETTE)]}"/>'
            )
        if i % every == 0:
            out.append(
                f'<text x="{LEFT + (i + 0.5) * group:.1f}" y="{base + 16}" text-anchor="middle"'
                f' font-size="11" fill="#222">{escape(label)}</text>'
            )
    for j, (name, _) in enumerate(series):
        y = HEIGHT + j * LEGEND_LINE
        out.append(
            f'<rect x="{LEFT}" y="{y - 10}" width="12" height="12"'
            f' fill="{PALETTE[j % len(PALETTE)]}"/>'
        )
        out.append(
            f'<text x="{LEFT + 18}" y="{y}" font-size="12" fill="#222">{escape(name)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))  # noqa: S704 - every text and attribute escaped above
