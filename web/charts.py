"""Charts drawn on the server as SVG: a completion bar, a trend line, completion over time.

Pure functions of numbers, dates and labels; every label is escaped here, and
only presentation attributes are used (the Content-Security-Policy allows no
inline style).
"""

from datetime import timedelta

from django.utils.html import escape
from django.utils.safestring import mark_safe

# Directional formatting characters: a tooltip has no <bdi> to contain them, so they are dropped there.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])


def _label(text):
    return escape(str(text).translate(_BIDI_CONTROLS))


def completion_bar(percent, width=100, height=10):
    percent = max(0, min(100, int(percent or 0)))
    filled = round(width * percent / 100, 1)
    colour = "#2a7d2a" if percent == 100 else "#3b73b9" if percent >= 50 else "#c0632b"
    return mark_safe(
        f'<svg class="bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{percent}% translated"><title>{percent}% translated</title>'
        f'<rect width="{width}" height="{height}" fill="#e4e7eb" rx="2"/>'
        f'<rect width="{filled}" height="{height}" fill="{colour}" rx="2"/></svg>'
    )


def _x(moment, start, end, left, width):
    span = (end - start).total_seconds() or 1
    return round(left + width * (moment - start).total_seconds() / span, 1)


def _y(percent, top, height):
    return round(top + height * (100 - percent) / 100, 1)


def trend_line(points, start, end, width=100, height=22):
    """Completion (0–100) at each date in [start, end]; a flat line from the first point on."""
    if not points:
        return mark_safe(f'<svg class="trend" width="{width}" height="{height}" role="img" aria-label="no runs"></svg>')
    pad = 2
    coordinates = [(_x(when, start, end, pad, width - 2 * pad), _y(value, pad, height - 2 * pad)) for when, value in points]
    # Each value holds until the next run: a step line, carried on to today.
    steps = [coordinates[0]]
    for (x, y), (_, previous_y) in zip(coordinates[1:], coordinates, strict=False):
        steps += [(x, previous_y), (x, y)]
    steps.append((width - pad, steps[-1][1]))
    polyline = " ".join(f"{x},{y}" for x, y in steps)
    low, high = min(v for _, v in points), max(v for _, v in points)
    label = f"{len(points)} runs in 90 days, {low}% to {high}%"
    return mark_safe(
        f'<svg class="trend" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{label}"><title>{label}</title>'
        f'<polyline points="{polyline}" fill="none" stroke="#3b73b9" stroke-width="1.5"/></svg>'
    )


def history_chart(runs, pushes, width=760, height=260):
    """Completion over time: one point per run (``(date, percent, label)``), pushes (``(date, label)``) marked."""
    left, right, top, bottom = 40, 12, 12, 28
    inner_w, inner_h = width - left - right, height - top - bottom
    moments = [when for when, *_ in runs] + [when for when, _ in pushes]
    parts = [
        f'<svg class="history" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="completion over time: {len(runs)} runs, {len(pushes)} pushes">'
    ]
    for percent in (0, 50, 100):
        y = _y(percent, top, inner_h)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y}" y2="{y}" stroke="#d5d9de"/>'
                     f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" font-size="11" fill="#555">{percent}%</text>')
    if moments:
        start, end = min(moments), max(moments)
        if start == end:
            start = end - timedelta(days=1)
        parts.append(f'<text x="{left}" y="{height - 8}" font-size="11" fill="#555">{start:%Y-%m-%d}</text>'
                     f'<text x="{width - right}" y="{height - 8}" font-size="11" fill="#555" text-anchor="end">'
                     f'{end:%Y-%m-%d}</text>')
        for when, label in pushes:
            x = _x(when, start, end, left, inner_w)
            parts.append(f'<line class="push" x1="{x}" x2="{x}" y1="{top}" y2="{top + inner_h}" stroke="#c0632b" '
                         f'stroke-dasharray="3,3"><title>{_label(label)}</title></line>')
        points = [(_x(when, start, end, left, inner_w), _y(percent, top, inner_h)) for when, percent, _ in runs]
        if len(points) > 1:
            line = " ".join(f"{x},{y}" for x, y in points)
            parts.append(f'<polyline points="{line}" fill="none" stroke="#3b73b9" stroke-width="2"/>')
        for (x, y), (_, _, label) in zip(points, runs, strict=True):
            parts.append(f'<circle class="run" cx="{x}" cy="{y}" r="3.5" fill="#3b73b9">'
                         f'<title>{_label(label)}</title></circle>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
