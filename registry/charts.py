"""Turn plain rows into Plotly figure dicts for the pages; nothing here touches the ORM."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
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


# ------------------------------------------------------------------------------------ comparison charts

PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#ec4899", "#64748b"]


def _layout(title: str, height: int = 300, **extra: Any) -> dict[str, Any]:
    return {
        "template": "none",
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 14, "color": TEXT}},
        "font": {"family": FONT, "size": 12, "color": TEXT},
        "margin": {"l": 52, "r": 16, "t": 48, "b": 48},
        "height": height,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        **extra,
    }


def comparison_bar_figure(labels: list[str], metrics: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return grouped bars (one group per metric, one bar per version, own y-scale per metric), or None."""
    from plotly.subplots import make_subplots

    rows = [m for m in metrics if any(v is not None for v in m["values"])]
    if not rows:
        return None
    figure = make_subplots(rows=1, cols=len(rows), subplot_titles=[
        f"{m['name']} ({'↑' if m['higher_is_better'] else '↓'})" for m in rows])
    for i, label in enumerate(labels):
        color = PALETTE[i % len(PALETTE)]
        for col, metric in enumerate(rows, start=1):
            value = metric["values"][i]
            figure.add_trace(go.Bar(
                x=[label], y=[value], name=label, legendgroup=label, showlegend=col == 1,
                marker={"color": color, "line": {"color": TEXT if metric["best"][i] else color, "width": 2}},
                hovertemplate=f"{label} · {metric['name']}: %{{y:.6g}}<extra></extra>",
            ), row=1, col=col)
    figure.update_layout(**_layout("Metrics by version", height=320, barmode="group", bargap=0.25,
                                   legend={"orientation": "h", "y": -0.15}))
    figure.update_xaxes(showticklabels=False)
    figure.update_yaxes(gridcolor=GRID, zeroline=False, tickformat=".4~g")
    figure.update_annotations(font={"size": 12, "color": TEXT})
    return json.loads(figure.to_json())


def metric_trend_figure(name: str, points: Iterable[tuple[int, float]], marks: Mapping[int, list[str]]
                        ) -> dict[str, Any]:
    """Return one metric across every version with aliased versions (champion, challenger …) marked."""
    figure = metric_figure(name, points)
    values = dict((int(n), float(v)) for n, v in points)
    marked = [(n, values[n], names) for n, names in sorted(marks.items()) if n in values]
    if marked:
        figure["data"].append({
            "type": "scatter", "mode": "markers+text", "name": "aliases",
            "x": [n for n, _, _ in marked], "y": [v for _, v, _ in marked],
            "text": [" ".join(f"@{a}" for a in names) for _, _, names in marked], "textposition": "top center",
            "marker": {"size": 13, "symbol": "star", "color": "#f59e0b", "line": {"color": TEXT, "width": 1}},
            "hovertemplate": "v%{x} %{text}: %{y:.6g}<extra></extra>",
        })
    figure["layout"]["title"]["text"] = f"{name} across versions"
    return figure


def metric_scatter_figure(x: str, y: str, points: Iterable[tuple[int, float, float, list[str]]]
                          ) -> dict[str, Any]:
    """Return a scatter of two metrics across versions (trade-offs such as AUC against latency)."""
    rows = list(points)
    figure = go.Figure(go.Scatter(
        x=[p[1] for p in rows], y=[p[2] for p in rows], mode="markers+text",
        text=[f"v{p[0]}" + "".join(f" @{a}" for a in p[3]) for p in rows], textposition="top center",
        marker={"size": [14 if p[3] else 9 for p in rows], "color": ["#f59e0b" if p[3] else ACCENT for p in rows],
                "line": {"color": TEXT, "width": 1}},
        hovertemplate=f"%{{text}}<br>{x}: %{{x:.6g}}<br>{y}: %{{y:.6g}}<extra></extra>",
    ), layout=_layout(f"{y} against {x}", height=320, showlegend=False,
                      xaxis={"title": {"text": x}, "gridcolor": GRID, "zeroline": False, "tickformat": ".4~g"},
                      yaxis={"title": {"text": y}, "gridcolor": GRID, "zeroline": False, "tickformat": ".4~g"}))
    return json.loads(figure.to_json())


# --------------------------------------------------------------------------------------------- lineage

NODE_COLORS = {
    "dataset": "#0ea5e9", "feature_set": "#8b5cf6", "code_commit": "#64748b", "model_version": "#2563eb",
    "converted_artifact": "#14b8a6", "deployment": "#f59e0b", "prediction_batch": "#ec4899",
    "external_run": "#94a3b8",
}
NODE_LABELS = {
    "dataset": "Dataset", "feature_set": "Feature set", "code_commit": "Code commit", "model_version": "Model version",
    "converted_artifact": "Converted artifact", "deployment": "Deployment", "prediction_batch": "Prediction batch",
    "external_run": "Run held elsewhere (not verified by Stratum)",
}
LABELS_UP_TO = 120  # above this many nodes, names show on hover only, and so do the edges' kinds (see below)


def _strokes(polylines: list[list[tuple[float, float]]]) -> tuple[list[float | None], list[float | None]]:
    """Return the x and y of a line trace that draws every polyline, in one stroke per connected set of them.

    Plotly makes one SVG path per piece of a line trace between None gaps: 2,600 edges, one piece each, took it
    150 ms to draw, the same points without gaps 15. So each connected set is drawn as one walk (depth first, from
    end to end of the polylines) that follows every polyline out and back: twice the points, drawn over themselves.
    """
    incident: dict[tuple[float, float], list[int]] = defaultdict(list)
    for i, line in enumerate(polylines):
        incident[line[0]].append(i)
        incident[line[-1]].append(i)
    used = [False] * len(polylines)
    xs: list[float | None] = []
    ys: list[float | None] = []

    def go(points: Iterable[tuple[float, float]]) -> None:
        for x, y in points:
            xs.append(x)
            ys.append(y)

    for first, line in enumerate(polylines):
        if used[first]:
            continue
        if xs:  # a gap before the next connected set
            xs.append(None)
            ys.append(None)
        go(line[:1])
        # Each entry: where the walk is, the polylines met there still to try, and the way back to the entry below.
        stack: list[tuple[tuple[float, float], Iterator[int], list[tuple[float, float]]]] = [
            (line[0], iter(incident[line[0]]), [])]
        while stack:
            at, pending, back = stack[-1]
            step = next((i for i in pending if not used[i]), None)
            if step is None:
                stack.pop()
                go(back)
                continue
            used[step] = True
            path = polylines[step] if polylines[step][0] == at else polylines[step][::-1]
            go(path[1:])
            stack.append((path[-1], iter(incident[path[-1]]), path[-2::-1]))
    return xs, ys


def lineage_figure(nodes: list[dict[str, Any]], edges: list[dict[str, Any]], widest: int, layers: int
                   ) -> dict[str, Any]:
    """Return a laid-out lineage DAG: nodes coloured by kind, hover details, highlights, urls for clicks.

    `nodes` carry id, kind, label, hover, url, x, y and the flags focus/personal/deprecated/quarantined/group
    (a group stands for `count` nodes of its kind; its trace's meta tells the page's script that a click on it
    expands it rather than opening a node); `edges` carry points (a polyline), label (HTML-escaped) and target (the
    id of the node it points at).

    Up to LABELS_UP_TO nodes, each edge has an arrow at its end that names its kind on hover. Above, the arrows
    go (every edge runs left to right, upstream to downstream, so the layout already gives the direction): at a
    few thousand nodes they were more points than the nodes themselves and half of Plotly's drawing time, too
    dense to point at anyway. The kinds of a node's incoming edges then show in that node's hover instead.
    """
    traces: list[dict[str, Any]] = []
    xs, ys = _strokes([edge["points"] for edge in edges])
    # simplify off: Plotly's simplification may cut the turn at the end of an edge walked out and back.
    traces.append({"type": "scatter", "mode": "lines", "x": xs, "y": ys, "hoverinfo": "skip", "showlegend": False,
                   "line": {"color": "#9ca3af", "width": 1.2, "simplify": False}})
    show_labels = len(nodes) <= LABELS_UP_TO
    hover = {n["id"]: n["hover"] for n in nodes}
    if show_labels:
        ends = [(edge["points"][-2], edge["points"][-1]) for edge in edges]
        traces.append({"type": "scatter", "mode": "markers", "x": [(a[0] + b[0]) / 2 for a, b in ends],
                       "y": [(a[1] + b[1]) / 2 for a, b in ends], "text": [edge["label"] for edge in edges],
                       "hovertemplate": "%{text}<extra></extra>", "showlegend": False,
                       "marker": {"symbol": "triangle-right", "size": 7, "color": "#9ca3af"}})
    else:
        incoming: dict[Any, list[str]] = defaultdict(list)
        for edge in edges:
            incoming[edge["target"]].append(edge["label"])
        for target, labels in incoming.items():
            if target in hover:
                hover[target] += "<br>from: " + "; ".join(labels)
    groups = [n for n in nodes if n.get("group")]
    if groups:
        traces.append({
            "type": "scatter", "mode": "markers+text", "name": "Group of one kind (click to expand)",
            "meta": "lineage-group", "x": [n["x"] for n in groups], "y": [n["y"] for n in groups],
            "text": [n["label"] for n in groups], "textposition": "bottom center", "textfont": {"size": 11},
            "hovertext": [hover[n["id"]] for n in groups], "hovertemplate": "%{hovertext}<extra></extra>",
            "customdata": [n["url"] for n in groups],
            "marker": {"symbol": "square", "color": [NODE_COLORS[n["kind"]] for n in groups],
                       "size": [min(40, 18 + 4 * math.log2(max(n["count"], 1))) for n in groups],
                       "line": {"color": "#111827", "width": 1}},
        })
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for n in nodes:
        if not n.get("group"):
            by_kind[n["kind"]].append(n)
    for kind, color in NODE_COLORS.items():
        group = by_kind.get(kind)
        if not group:
            continue
        trace = {
            "type": "scatter", "mode": "markers+text" if show_labels else "markers", "name": NODE_LABELS[kind],
            "x": [n["x"] for n in group], "y": [n["y"] for n in group],
            "hovertext": [hover[n["id"]] for n in group], "hovertemplate": "%{hovertext}<extra></extra>",
            "customdata": [n["url"] for n in group],
            # One size and outline for the whole trace unless it holds the focus: Plotly styles per point otherwise.
            # The opacity is the one Plotly gives a trace with sizes per point, so every trace looks the same.
            "marker": {"color": color, "size": 13, "opacity": 0.7, "line": {"color": "#ffffff", "width": 2}},
        }
        if show_labels:
            trace.update(text=[n["label"] for n in group], textposition="bottom center", textfont={"size": 10})
        if any(n["focus"] for n in group):
            trace["marker"]["size"] = [20 if n["focus"] else 13 for n in group]
            trace["marker"]["line"]["color"] = ["#111827" if n["focus"] else "#ffffff" for n in group]
        traces.append(trace)
    for flag, name, symbol, color in (("personal", "Personal data", "circle-open", "#dc2626"),
                                      ("deprecated", "Deprecated", "x-thin-open", "#374151"),
                                      ("quarantined", "Quarantined", "square-open", "#b91c1c")):
        group = [n for n in nodes if n.get(flag) and not n.get("group")]
        if group:
            traces.append({"type": "scatter", "mode": "markers", "name": name, "x": [n["x"] for n in group],
                           "y": [n["y"] for n in group], "hovertext": [hover[n["id"]] for n in group],
                           "hovertemplate": "%{hovertext}<extra></extra>", "customdata": [n["url"] for n in group],
                           "marker": {"symbol": symbol, "size": 24, "color": color, "line": {"width": 2.5}}})
    axis = {"visible": False, "zeroline": False, "showgrid": False}
    layout = _layout("", height=min(2400, max(320, 70 * widest + 80)), showlegend=True, hovermode="closest",
                     xaxis={**axis, "range": [-0.6, max(layers - 1, 0) + 0.6]}, yaxis=axis,
                     legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    layout["margin"] = {"l": 20, "r": 20, "t": 40, "b": 20}
    return {"data": traces, "layout": layout}


# ------------------------------------------------------------------------------------------------ run metrics


def metric_history_figure(name: str, points: Iterable[tuple[int, float]]) -> dict[str, Any]:
    """Return one metric's history over the steps of a run as a line chart (x: step, y: value).

    Built as a plain figure dict: plotly's Figure validation costs more than the page's queries for long histories.
    """
    rows = list(points)
    trace = {"type": "scatter", "x": [step for step, _ in rows], "y": [value for _, value in rows], "name": name,
             "mode": "lines+markers" if len(rows) <= 60 else "lines", "line": {"color": ACCENT, "width": 2},
             "marker": {"size": 5, "color": ACCENT}, "hovertemplate": "step %{x}: %{y:.6g}<extra></extra>"}
    layout = _layout(name, height=260, showlegend=False,
                     xaxis={"title": {"text": "step"}, "gridcolor": GRID, "zeroline": False},
                     yaxis={"gridcolor": GRID, "zeroline": False, "tickformat": ".4~g"})
    return {"data": [trace], "layout": layout}
