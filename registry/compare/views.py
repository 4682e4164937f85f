"""Comparison pages: versions side by side (with CSV export) and a model's trends with champion vs challenger."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from registry import charts, selectors
from registry.compare import selectors as compare
from registry.errors import DomainError, InvalidInput, NotFound
from registry.views.common import get_model, raise_http

PICKER_LIMIT = 300


def _picker(request: HttpRequest, model_name: str | None) -> dict[str, Any]:
    """Return the versions the picker offers: one model's, or the most recent across visible models."""
    qs = selectors.version_list(actor=request.user)
    if model_name:
        qs = qs.filter(model__name=model_name)
    models = list(selectors.model_list(actor=request.user).values_list("name", flat=True)[:500])
    return {"picker_versions": list(qs[:PICKER_LIMIT]), "picker_models": models, "picker_model": model_name or ""}


class VersionCompareView(LoginRequiredMixin, View):
    """Compare 2-5 versions named in the query string; `?format=csv` downloads the comparison table."""

    template_name = "registry/compare.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the picker and, for a valid selection, the comparison (or its CSV)."""
        picked = [v for v in request.GET.getlist("v") if v]
        if picked:  # the picker form submits one `v` per checkbox: redirect to the short, shareable form
            query = {"versions": ",".join(sorted(picked, key=_ref_order))}
            if request.GET.get("params") == "all":
                query["params"] = "all"
            if request.GET.get("model"):  # the picker keeps its model, also when the selection is refused
                query["model"] = request.GET["model"]
            return HttpResponseRedirect(f"{reverse('registry:compare')}?{urlencode(query)}")
        raw = request.GET.get("versions")
        model_name = request.GET.get("model") or None
        context: dict[str, Any] = {"show_all_params": request.GET.get("params") == "all", "error": None}
        status = 200
        if raw is not None:
            try:
                comparison = compare.comparison_get(actor=request.user, selection=raw)
            except NotFound as error:
                raise Http404(error.message)
            except DomainError as error:
                raise_http(error)
                context["error"], status = error.message, error.status
            else:
                if request.GET.get("format") == "csv":
                    return _csv_response(comparison)
                labels = [c["label"] for c in comparison.columns]
                figure = charts.comparison_bar_figure(labels, comparison.metrics)
                context.update(comparison=comparison, charts=[figure] if figure else [], figure=figure,
                               selected_ids={c["id"] for c in comparison.columns},
                               csv_url=_compare_url(comparison.selection, format="csv"),
                               share_url=request.build_absolute_uri(_compare_url(comparison.selection)))
                if model_name is None and len({c["model"] for c in comparison.columns}) == 1:
                    model_name = comparison.columns[0]["model"]
        refs = [ref.strip() for ref in (raw or "").split(",") if ref.strip()][: compare.MAX_VERSIONS * 4]
        if model_name is None:  # a refused selection still shows its model's versions, with the chosen ones ticked
            named = {ref.rpartition("/")[0] for ref in refs}
            model_name = named.pop() if len(named) == 1 and "" not in named else None
        context.setdefault("selected_ids", set())
        context.update(_picker(request, model_name), max_versions=compare.MAX_VERSIONS, raw_selection=raw or "")
        context["selected_ids"] |= {v.pk for v in context["picker_versions"]
                                    if f"{v.model.name}/{v.number}" in refs}
        return render(request, self.template_name, context, status=status)


def _ref_order(ref: str) -> tuple[str, int, str]:
    """Order picked refs by model, then version number, so the oldest version is the baseline."""
    model, _, number = ref.rpartition("/")
    return (model, int(number), "") if number.isdigit() else (model, 0, number)


def _compare_url(selection: str, **extra: str) -> str:
    return f"{reverse('registry:compare')}?{urlencode({'versions': selection, **extra})}"


def _csv_response(comparison: compare.Comparison) -> HttpResponse:
    name = re.sub(r"[^\w.-]+", "-", comparison.selection)[:120]
    response = HttpResponse(compare.comparison_csv(comparison), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="comparison-{name}.csv"'
    return response


class ModelTrendsView(LoginRequiredMixin, View):
    """A model's metric trend with the champion marked, a two-metric scatter and champion vs challenger.

    The model page embeds the champion/challenger card of the same view as an htmx partial (`?embed=pair`).
    """

    template_name = "registry/model_trends.html"
    partial_template_name = "registry/_trends_panel.html"
    pair_template_name = "registry/_champion_panel.html"  # what the model page embeds

    def get(self, request: HttpRequest, name: str) -> HttpResponse:
        """Render the trends page, or only the panel for an htmx request."""
        model = get_model(request, name)
        status, error = 200, None
        try:
            panel = compare.trend_panel(actor=request.user, model=model, metric=request.GET.get("metric") or None,
                                        x=request.GET.get("x") or None, y=request.GET.get("y") or None)
        except InvalidInput as error_:
            error, status = error_.message, 400
            panel = compare.trend_panel(actor=request.user, model=model)
        figures = []
        if panel["trend"]:
            figures.append({"name": "trend", "figure": charts.metric_trend_figure(
                panel["metric"], panel["trend"], panel["marks"])})
        if panel["scatter"] and panel["x"] != panel["y"]:
            figures.append({"name": "scatter", "figure": charts.metric_scatter_figure(
                panel["x"], panel["y"], panel["scatter"])})
        context = {"model": model, "panel": panel, "pair": panel["pair"], "charts": figures, "error": error,
                   "compare_url": _pair_compare_url(panel["pair"])}
        template = self.partial_template_name if request.htmx else self.template_name
        if request.htmx and request.GET.get("embed") == "pair":
            template = self.pair_template_name
        response = render(request, template, context, status=status)
        patch_vary_headers(response, ("HX-Request",))
        return response


def _pair_compare_url(pair: dict[str, Any] | None) -> str | None:
    if not pair or pair["same_version"]:
        return None
    return _compare_url(compare.selection_string([pair["champion"], pair["challenger"]]))
