"""Turn plain metric rows into Plotly figure dicts for governance pages; nothing here touches the ORM."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import plotly.graph_objects as go

from registry.charts import ACCENT, FONT, GRID, TEXT

HOLDER = "#9ca3af"


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metric_comparison_figure(rows: Iterable[Mapping[str, Any]], *, candidate_label: str, holder_label: str | None
                             ) -> dict[str, Any] | None:
    """Return grouped bars of each numeric metric, candidate beside current holder, or None when nothing is numeric."""
    rows = [r for r in rows if _numeric(r.get("candidate")) or _numeric(r.get("holder"))]
    if not rows:
        return None
    names = [str(r["name"]) for r in rows]
    traces = []
    if holder_label:
        traces.append(go.Bar(name=holder_label, x=names, y=[r["holder"] if _numeric(r.get("holder")) else None
                                                             for r in rows], marker_color=HOLDER,
                             hovertemplate="%{x}: %{y:.6g}<extra>" + holder_label + "</extra>"))
    traces.append(go.Bar(name=candidate_label, x=names, y=[r["candidate"] if _numeric(r.get("candidate")) else None
                                                            for r in rows], marker_color=ACCENT,
                         hovertemplate="%{x}: %{y:.6g}<extra>" + candidate_label + "</extra>"))
    figure = go.Figure(traces, layout={
        "template": "none", "barmode": "group",
        "font": {"family": FONT, "size": 12, "color": TEXT},
        "margin": {"l": 52, "r": 16, "t": 16, "b": 40}, "height": 280,
        "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
        "yaxis": {"gridcolor": GRID, "zeroline": False, "tickformat": ".4~g"},
        "legend": {"orientation": "h", "y": -0.2},
    })
    return json.loads(figure.to_json())


def _axis_range(values: list[float]) -> tuple[list[float], bool]:
    """Return a y range fitted to the values (padded by a fifth of their spread) and whether it starts at zero."""
    low, high = min(values), max(values)
    spread = high - low or abs(high) * 0.05 or 1.0
    bottom, top = low - spread * 0.25, high + spread * 0.25
    if low >= 0 and bottom <= low * 0.5:  # near zero anyway: start at zero, the honest default for a bar
        return [0.0, top], True
    return [bottom, top], False


def metric_small_multiples(rows: Iterable[Mapping[str, Any]], *, candidate_label: str, holder_label: str | None
                           ) -> list[dict[str, Any]]:
    """Return one small chart per numeric metric (candidate and holder as dots on a fitted axis, the gap drawn as a
    line, the axis labelled when it does not start at zero), each as {"name", "figure", "zero_based", "verdict"}."""
    charts = []
    for row in rows:
        points = [(holder_label, row.get("holder"), HOLDER)] if holder_label else []
        points.append((candidate_label, row.get("candidate"), ACCENT))
        points = [(label, value, colour) for label, value, colour in points if _numeric(value)]
        if not points:
            continue
        values = [float(v) for _label, v, _c in points]
        y_range, zero_based = _axis_range(values)
        labels = [label for label, _v, _c in points]
        traces = [go.Scatter(x=labels, y=values, mode="lines", line={"color": GRID, "width": 2},
                             hoverinfo="skip", showlegend=False)] if len(points) == 2 else []
        traces.append(go.Scatter(
            x=labels, y=values, mode="markers+text", text=[f"{v:.4g}" for v in values], cliponaxis=False,
            textposition=["middle right", "middle left"] if len(points) == 2 else "top center",
            marker={"size": 12, "color": [c for _l, _v, c in points]}, showlegend=False,
            hovertemplate="%{x}: %{y:.6g}<extra>" + str(row["name"]) + "</extra>"))
        direction = "higher is better" if row.get("higher_is_better", True) else "lower is better"
        figure = go.Figure(traces, layout={
            "template": "none", "font": {"family": FONT, "size": 11, "color": TEXT},
            "title": {"text": f"{row['name']} <span style='font-size:10px'>({direction})</span>", "x": 0.02,
                      "font": {"size": 13}},
            "margin": {"l": 56, "r": 16, "t": 36, "b": 30}, "height": 200,
            "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
            "xaxis": {"type": "category"},
            "yaxis": {"gridcolor": GRID, "zeroline": zero_based, "tickformat": ".4~g", "range": y_range,
                      "title": {"text": "" if zero_based else "axis not from 0", "font": {"size": 10}}},
        })
        charts.append({"name": str(row["name"]), "figure": json.loads(figure.to_json()), "zero_based": zero_based,
                       "verdict": row.get("verdict")})
    return charts
