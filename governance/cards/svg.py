"""Hand-built SVG for the PDF (no browser, no kaleido): metric bars, slices with intervals, the lineage diagram."""

from __future__ import annotations

from html import escape
from typing import Any

from registry.lineage.layout import layered_layout

ACCENT, MUTED, GRID, TEXT = "#2563eb", "#9aa5b1", "#e5e7eb", "#1f2933"
KIND_COLOURS = {"dataset": "#0f766e", "feature_set": "#7c3aed", "code_commit": "#b45309",
                "model_version": "#2563eb", "converted_artifact": "#4b5563", "deployment": "#be123c",
                "prediction_batch": "#65a30d"}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _nice(value: float) -> float:
    """Round a positive axis bound up to 1, 2, 2.5 or 5 times a power of ten."""
    import math

    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def axis_domain(values: list[float]) -> tuple[float, float]:
    """Return the axis of one metric: 0..1 for scores that live there, else 0 to a round bound (both signs)."""
    low, high = min([0.0, *values]), max([0.0, *values])
    if low >= 0 and high <= 1:
        return 0.0, 1.0
    return (-_nice(-low) if low < 0 else 0.0), (_nice(high) if high > 0 else 0.0)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def bar_chart(rows: list[dict[str, Any]], *, title: str, width: int = 640) -> str:
    """Return horizontal bars for rows of {label, value, lo?, hi?} on one labelled axis, with interval whiskers.

    Rows must share a unit: callers draw one chart per metric (r2 and rmse never share an axis).
    """
    rows = [r for r in rows if _num(r.get("value")) is not None][:40]
    if not rows:
        return ""
    label_w, pad, bar_h, gap = 200, 12, 16, 8
    values = [v for r in rows for v in (_num(r["value"]), _num(r.get("lo")), _num(r.get("hi"))) if v is not None]
    low, high = axis_domain(values)
    span = (high - low) or 1.0
    plot_w = width - label_w - pad * 2 - 60
    x0 = label_w + pad
    top = 28
    height = top + len(rows) * (bar_h + gap) + 22

    def x(value: float) -> float:
        return x0 + (min(max(value, low), high) - low) / span * plot_w

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<text x="0" y="14" font-size="12" font-weight="bold" fill="{TEXT}">{escape(title)}</text>']
    axis_y = height - 18
    for tick in (low, low + span / 2, high):  # the axis, with its scale printed
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top - 4}" x2="{x(tick):.1f}" y2="{axis_y}" stroke="{GRID}"/>')
        parts.append(f'<text x="{x(tick):.1f}" y="{axis_y + 12}" font-size="9" text-anchor="middle" '
                     f'fill="{MUTED}">{_fmt(tick)}</text>')
    zero = x(0.0)
    parts.append(f'<line x1="{zero:.1f}" y1="{top - 4}" x2="{zero:.1f}" y2="{axis_y}" stroke="{MUTED}"/>')
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        value = _num(row["value"]) or 0.0
        left, right = sorted((zero, x(value)))
        parts.append(f'<text x="{label_w}" y="{y + 12}" font-size="10" text-anchor="end" fill="{TEXT}">'
                     f'{escape(str(row.get("label", ""))[:38])}</text>')
        parts.append(f'<rect x="{left:.1f}" y="{y}" width="{max(1.0, right - left):.1f}" height="{bar_h}" '
                     f'fill="{ACCENT}" rx="2"/>')
        lo, hi = _num(row.get("lo")), _num(row.get("hi"))
        if lo is not None and hi is not None:
            xl, xh = x(lo), x(hi)
            mid = y + bar_h / 2
            parts.append(f'<line x1="{xl:.1f}" y1="{mid}" x2="{xh:.1f}" y2="{mid}" stroke="{TEXT}" '
                         'stroke-width="1.5"/>')
            for xe in (xl, xh):
                parts.append(f'<line x1="{xe:.1f}" y1="{mid - 5}" x2="{xe:.1f}" y2="{mid + 5}" stroke="{TEXT}"/>')
        parts.append(f'<text x="{max(right, x(hi) if hi is not None else right) + 6:.1f}" y="{y + 12}" '
                     f'font-size="10" fill="{TEXT}">{_fmt(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def wrap_label(text: str, width: int = 24, lines: int = 3) -> list[str]:
    """Split a label into at most `lines` lines of `width` characters, preferring breaks after - _ / . or space;
    only what still does not fit loses its middle (the start and the end, e.g. '-staging', stay readable)."""
    out: list[str] = []
    rest = text
    while rest and len(out) < lines:
        if len(rest) <= width:
            out.append(rest)
            rest = ""
            break
        cut = max((rest.rfind(ch, 0, width) for ch in "-_/. "), default=-1)
        cut = cut + 1 if cut >= width // 2 else width
        out.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        last = out[-1] + rest
        keep = width - 1
        out[-1] = last[: keep // 2] + "…" + last[-(keep - keep // 2):]
    return out


def lineage_diagram(nodes: list[dict[str, Any]], edges: list[tuple[Any, Any]], *, width: int = 640) -> str:
    """Return a left-to-right layered diagram of nodes {id, kind, label} joined by (upstream, downstream) edges."""
    if not nodes:
        return ""
    ids = [n["id"] for n in nodes]
    layout = layered_layout(ids, edges, sort_key={n["id"]: f"{n['kind']}:{n['label']}" for n in nodes})
    layers, widest = max(layout.layers, 1), max(layout.widest, 1)
    box_w, box_h, row_h = 150, 44, 56
    col_w = (width - box_w - 20) / max(layers - 1, 1)
    height = int(widest * row_h + 20)

    def centre(x: float, y: float) -> tuple[float, float]:
        return 10 + x * col_w + box_w / 2, 10 + (-y) * row_h + box_h / 2

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Lineage diagram">']
    for line in layout.polylines:
        pts = " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in (centre(x, y) for x, y in line))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{MUTED}" stroke-width="1.2"/>')
    for n in nodes:
        cx, cy = centre(*layout.positions[n["id"]])
        colour = KIND_COLOURS.get(n["kind"], MUTED)
        parts.append(f'<rect x="{cx - box_w / 2:.1f}" y="{cy - box_h / 2:.1f}" width="{box_w}" height="{box_h}" '
                     f'rx="4" fill="#ffffff" stroke="{colour}" stroke-width="{2.5 if n.get("focus") else 1.2}"/>')
        label_lines = wrap_label(str(n["label"]), width=26, lines=3)
        first_y = cy - box_h / 2 + 11
        parts.append(f'<text x="{cx:.1f}" y="{first_y:.1f}" font-size="8.5" text-anchor="middle" fill="{TEXT}">'
                     f'<title>{escape(str(n["label"]))}</title>'
                     + "".join(f'<tspan x="{cx:.1f}" dy="{0 if i == 0 else 10}">{escape(line)}</tspan>'
                               for i, line in enumerate(label_lines)) + '</text>')
        parts.append(f'<text x="{cx:.1f}" y="{cy + box_h / 2 - 4:.1f}" font-size="7" text-anchor="middle" '
                     f'fill="{colour}">'
                     f'{escape(n["kind"].replace("_", " "))}{" · personal data" if n.get("personal") else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)
