"""Small charts drawn as server-side SVG: no JavaScript, no CDN, printable, and readable by tests
(every data point is a ``<circle class="point">``)."""
from __future__ import annotations

from html import escape
from typing import Mapping, Sequence

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


COLOURS = ("#1f4e79", "#c0504d", "#9bbb59", "#8064a2", "#f79646", "#4bacc6")
BIG_W, BIG_H, BIG_PAD = 420, 300, 40


def _frame(title: str, width: int, height: int) -> list[str]:
    return [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} '
            f'{height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
            f'<title>{escape(title)}</title>',
            f'<text x="{BIG_PAD}" y="14" class="chart-title">{escape(title)}</text>']


def _legend(parts: list[str], names: Sequence[str]) -> None:
    for k, name in enumerate(names):
        parts.append(f'<text x="{BIG_PAD + 110 * (k % 3)}" y="{28 + 12 * (k // 3)}" '
                     f'class="legend" fill="{COLOURS[k % len(COLOURS)]}">{escape(name)}</text>')


def _bounds(values: Sequence[float], fixed: tuple[float, float] | None) -> tuple[float, float]:
    if fixed is not None:
        return fixed
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    return (low, high) if high > low else (low - 0.5, high + 0.5)


def xy_chart(title: str, series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
             x_label: str, y_label: str, *, x_range: tuple[float, float] | None = None,
             y_range: tuple[float, float] | None = None, lines: bool = True,
             diagonal: bool = False) -> str:
    """Series on numeric axes (ROC, precision-recall, reliability, partial dependence, residuals):
    a ``<circle class="point">`` per point, joined by a line unless ``lines`` is False;
    ``diagonal`` draws the chance or perfect-calibration line."""
    xs = [x for s in series.values() for x in s[0]]
    ys = [y for s in series.values() for y in s[1]]
    (x0, x1), (y0, y1) = _bounds(xs, x_range), _bounds(ys, y_range)
    left, right, top, bottom = BIG_PAD, BIG_W - 12, 20 + 12 * ((len(series) + 2) // 3) + 8, \
        BIG_H - 30

    def px(v: float) -> float:
        return left + (right - left) * (v - x0) / (x1 - x0)

    def py(v: float) -> float:
        return bottom - (bottom - top) * (v - y0) / (y1 - y0)

    parts = _frame(title, BIG_W, BIG_H)
    parts += [f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" class="axis"/>',
              f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" class="axis"/>',
              f'<text x="{(left + right) / 2}" y="{BIG_H - 4}" text-anchor="middle" '
              f'class="chart-label">{escape(x_label)}</text>',
              f'<text x="12" y="{(top + bottom) / 2}" text-anchor="middle" class="chart-label" '
              f'transform="rotate(-90 12 {(top + bottom) / 2})">{escape(y_label)}</text>',
              f'<text x="{left}" y="{bottom + 12}" class="chart-label">{x0:.3g}</text>',
              f'<text x="{right}" y="{bottom + 12}" text-anchor="end" class="chart-label">'
              f'{x1:.3g}</text>',
              f'<text x="{left - 3}" y="{bottom}" text-anchor="end" class="chart-label">'
              f'{y0:.3g}</text>',
              f'<text x="{left - 3}" y="{top + 8}" text-anchor="end" class="chart-label">'
              f'{y1:.3g}</text>']
    if diagonal:
        parts.append(f'<line x1="{px(x0):.1f}" y1="{py(y0):.1f}" x2="{px(x1):.1f}" '
                     f'y2="{py(y1):.1f}" class="reference" stroke="#999" stroke-dasharray="4 3"/>')
    for k, (name, (sx, sy)) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        coords = [(px(a), py(b)) for a, b in zip(sx, sy)]
        radius = 1.6 if lines else 1.3
        if lines and len(coords) > 1:
            parts.append(f'<polyline class="series" fill="none" stroke="{colour}" '
                         f'stroke-width="1.5" points="'
                         + " ".join(f"{a:.1f},{b:.1f}" for a, b in coords) + '"/>')
        for (a, b), vx, vy in zip(coords, sx, sy):
            parts.append(f'<circle class="point" cx="{a:.1f}" cy="{b:.1f}" r="{radius}" '
                         f'fill="{colour}"><title>{escape(name)}: {vx:.4g}, {vy:.4g}</title>'
                         '</circle>')
    _legend(parts, list(series))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, labels: Sequence[str], series: Mapping[str, Sequence[float | None]],
              unit: str = "") -> str:
    """Horizontal bars, one group per label and one bar per series (``<rect class="bar">``):
    importances, partial dependence per level, histograms, metrics per segment."""
    names = list(series)
    group = max(len(names), 1) * 9 + 6
    top = 20 + 12 * ((len(names) + 2) // 3) + 8
    height = top + group * max(len(labels), 1) + 10
    width, left = BIG_W, 130
    values = [v for s in series.values() for v in s if v is not None]
    low, high = min(0.0, *values) if values else 0.0, max(0.0, *values) if values else 1.0
    span = (high - low) or 1.0

    def px(v: float) -> float:
        return left + (width - left - 50) * (v - low) / span

    parts = _frame(title, width, height)
    parts.append(f'<line x1="{px(0):.1f}" y1="{top}" x2="{px(0):.1f}" y2="{height - 10}" '
                 'class="axis"/>')
    for i, label in enumerate(labels):
        y = top + i * group
        parts.append(f'<text x="{left - 4}" y="{y + group / 2 + 3:.1f}" text-anchor="end" '
                     f'class="chart-label">{escape(str(label))[:22]}</text>')
        for k, name in enumerate(names):
            v = series[name][i]
            if v is None:
                continue
            a, b = sorted((px(0), px(v)))
            parts.append(f'<rect class="bar" x="{a:.1f}" y="{y + 3 + 9 * k}" '
                         f'width="{max(b - a, 0.5):.1f}" height="8" '
                         f'fill="{COLOURS[k % len(COLOURS)]}"><title>{escape(name)} '
                         f'{escape(str(label))}: {v:.4g}{escape(unit)}</title></rect>')
            parts.append(f'<text x="{b + 3:.1f}" y="{y + 10 + 9 * k}" class="chart-label">'
                         f'{v:.3g}</text>')
    _legend(parts, names)
    parts.append("</svg>")
    return "".join(parts)


def heatmap(title: str, labels: Sequence[str], matrix: Sequence[Sequence[int]]) -> str:
    """A confusion matrix: rows are the actual class, columns the predicted one; one
    ``<rect class="cell">`` per cell, shaded by its share of its row."""
    n = max(len(labels), 1)
    size = min(48, 300 // n)
    left, top = 110, 46
    width, height = max(left + size * n + 10, 280), top + size * n + 24
    parts = _frame(title, width, height)
    parts.append(f'<text x="{left}" y="30" class="chart-label">predicted →</text>')
    for j, label in enumerate(labels):
        parts.append(f'<text x="{left + size * j + size / 2}" y="{top - 4}" text-anchor="middle" '
                     f'class="chart-label">{escape(str(label))[:8]}</text>')
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        parts.append(f'<text x="{left - 4}" y="{top + size * i + size / 2 + 3}" '
                     f'text-anchor="end" class="chart-label">{escape(str(labels[i]))[:14]}</text>')
        for j, count in enumerate(row):
            share = count / total
            parts.append(f'<rect class="cell" x="{left + size * j}" y="{top + size * i}" '
                         f'width="{size - 1}" height="{size - 1}" fill="#1f4e79" '
                         f'fill-opacity="{0.08 + 0.85 * share:.2f}"><title>actual '
                         f'{escape(str(labels[i]))}, predicted {escape(str(labels[j]))}: '
                         f'{count}</title></rect>')
            ink = "#fff" if share > 0.5 else "#000"
            parts.append(f'<text x="{left + size * j + size / 2}" '
                         f'y="{top + size * i + size / 2 + 4}" text-anchor="middle" '
                         f'class="cell-count" fill="{ink}">{count}</text>')
    parts.append(f'<text x="4" y="{top + 10}" class="chart-label">actual ↓</text>')
    parts.append("</svg>")
    return "".join(parts)
