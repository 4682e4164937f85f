"""Turn plain rows into Plotly figure dicts for the pages; nothing here touches the ORM."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import plotly.graph_objects as go

ACCENT = "#2563eb"
GRID = "#e5e7eb"
TEXT = "#374151"
FONT = '-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'


def metric_figure(name: str, points: Iterable[tuple[int, float]]) -> dict[str, Any]:
    """Return one metric across versions as a JSON-ready Plotly figure (x: version number, y: value)."""
    pairs = sorted((int(number), float(value)) for number, value in points)
    numbers = [n for n, _ in pairs]
    values = [v for _, v in pairs]
    figure = go.Figure(
        go.Scatter(
            x=numbers,
            y=values,
            mode="lines+markers",
            name=name,
            line={"color": ACCENT, "width": 2},
            marker={"size": 7, "color": ACCENT},
            hovertemplate="v%{x}: %{y:.6g}<extra></extra>",
        ),
        layout={
            "template": "none",
            "title": {"text": name, "x": 0, "xanchor": "left", "font": {"size": 14, "color": TEXT}},
            "font": {"family": FONT, "size": 12, "color": TEXT},
            "margin": {"l": 52, "r": 16, "t": 40, "b": 40},
            "height": 260,
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "xaxis": {
                "title": {"text": "version"}, "tickmode": "array", "tickvals": numbers,
                "ticktext": [f"v{n}" for n in numbers], "gridcolor": GRID, "zeroline": False,
            },
            "yaxis": {"gridcolor": GRID, "zeroline": False, "tickformat": ".4~g"},
            "showlegend": False,
        },
    )
    return json.loads(figure.to_json())


def metric_figures(series: Mapping[str, Iterable[tuple[int, float]]]) -> list[dict[str, Any]]:
    """Return one figure per metric, in metric-name order, skipping metrics with no numeric points."""
    charts = []
    for name in sorted(series):
        points = [(n, v) for n, v in series[name] if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if points:
            charts.append({"name": name, "figure": metric_figure(name, points)})
    return charts
