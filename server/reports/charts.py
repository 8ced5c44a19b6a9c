"""Small charts drawn as server-side SVG: no JavaScript, no CDN, printable, and readable by tests
(every data point is a ``<circle class="point">``)."""
from __future__ import annotations

from html import escape
from typing import Sequence

WIDTH, HEIGHT, PAD = 360, 120, 28


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[float | None]],
               unit: str = "") -> str:
    """Lines over a shared x axis; None values leave gaps. Colours cycle per series."""
    colours = ("#1f4e79", "#c0504d", "#9bbb59", "#8064a2")
    values = [v for s in series.values() for v in s if v is not None]
    top = max(values) if values else 1.0
    top = top if top > 0 else 1.0
    n = max(len(labels), 1)

    def x(i: int) -> float:
        return PAD + (WIDTH - 2 * PAD) * (i / (n - 1) if n > 1 else 0.5)

    def y(v: float) -> float:
        return HEIGHT - PAD + 4 - (HEIGHT - 2 * PAD) * (v / top)

    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} '
             f'{HEIGHT}" width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
             f'<title>{escape(title)}</title>',
             f'<text x="{PAD}" y="14" class="chart-title">{escape(title)}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD + 4}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD + 4}"'
             ' class="axis"/>',
             f'<text x="{WIDTH - PAD}" y="14" text-anchor="end" class="chart-max">'
             f'max {top:.3g}{escape(unit)}</text>']
    if labels:
        parts.append(f'<text x="{PAD}" y="{HEIGHT - 6}" class="chart-label">'
                     f'{escape(labels[0])}</text>')
        parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" text-anchor="end" '
                     f'class="chart-label">{escape(labels[-1])}</text>')
    for k, (name, points) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        segment: list[str] = []
        for i, v in enumerate(points):
            if v is None:
                if len(segment) > 1:
                    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                                 f'points="{" ".join(segment)}"/>')
                segment = []
                continue
            segment.append(f"{x(i):.1f},{y(v):.1f}")
            parts.append(f'<circle class="point" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2" '
                         f'fill="{colour}"><title>{escape(name)} {escape(labels[i])}: '
                         f'{v:.4g}{escape(unit)}</title></circle>')
        if len(segment) > 1:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                         f'points="{" ".join(segment)}"/>')
        parts.append(f'<text x="{PAD + 60 * k}" y="26" class="legend" '
                     f'fill="{colour}">{escape(name)}</text>')
    if not values:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                     'class="chart-empty">no traffic yet</text>')
    parts.append("</svg>")
    return "".join(parts)
