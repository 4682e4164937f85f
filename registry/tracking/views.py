"""Experiment and run pages: the experiments list, an experiment's filterable run table, a run's record with metric
charts and files, a run file's download, and runs side by side."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views import View

from registry import charts
from registry.artifacts.formats import content_type_for
from registry.artifacts.paths import validate_artifact_path
from registry.artifacts.storage import blob_open, iter_range
from registry.errors import DomainError, NotFound
from registry.tracking import selectors
from registry.views.common import raise_http

RUNS_PER_PAGE = 50
MAX_CHARTS = 24


def _not_found(error: DomainError) -> None:
    """Answer a domain error with its own page (403, 404); anything else is a 404 here, where only ids are read."""
    raise_http(error)
    raise Http404(error.message)


class ExperimentListView(LoginRequiredMixin, View):
    """The experiments the user may see, with how many runs each has and when one last started or ended."""

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the list."""
        page = Paginator(selectors.experiment_list(actor=request.user), 100).get_page(request.GET.get("page"))
        return render(request, "registry/experiment_list.html", {"page": page})


def _order_clause(kind: str, key: str, descending: bool) -> str:
    return f"{kind}.`{key}` {'DESC' if descending else 'ASC'}"


def _sort_links(table: selectors.RunTable) -> dict[str, Any]:
    """For each sortable column: the order a click asks for (the other direction when it is the current one) and
    whether the table is sorted by it now ("asc", "desc" or "")."""
    current = " ".join(table.order.split())

    def link(kind: str, key: str) -> dict[str, Any]:
        asc, desc = _order_clause(kind, key, False), _order_clause(kind, key, True)
        state = "asc" if current == asc else "desc" if current == desc else ""
        return {"key": key, "order": asc if state == "desc" else desc, "state": state}

    return {"name": link("attributes", "run_name"), "start": link("attributes", "start_time"),
            "metrics": [link("metrics", key) for key in table.metric_columns],
            "params": [link("params", key) for key in table.param_columns]}


class ExperimentDetailView(LoginRequiredMixin, View):
    """An experiment's runs as a table with chosen metric and param columns, filtered with MLflow's run filter
    language and sorted by any column; htmx requests get the table only."""

    template_name = "registry/experiment_detail.html"
    partial_template_name = "registry/_run_results.html"

    def get(self, request: HttpRequest, experiment_id: int) -> HttpResponse:
        """Render the page (a filter or order that does not parse is a 400 with the reason above the table)."""
        try:
            experiment = selectors.experiment_for_page(actor=request.user, experiment_id=experiment_id)
        except DomainError as error:
            _not_found(error)
        filter_string = request.GET.get("filter", "").strip()
        order = request.GET.get("order", "").strip()
        context: dict[str, Any] = {"experiment": experiment, "filter_string": filter_string, "order": order,
                                   "error": None, "page": None, "table": None}
        status = 200
        try:
            table = selectors.run_table(actor=request.user, experiment=experiment, filter_string=filter_string,
                                        order=order, metric_keys=request.GET.getlist("metric"),
                                        param_keys=request.GET.getlist("param"))
            page = Paginator(table.runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
            page.object_list = selectors.run_table_rows(table, page.object_list)  # evaluated here: errors caught
        except DomainError as error:
            context["error"], status = error.message, error.status
            table = selectors.run_table(actor=request.user, experiment=experiment)  # the column choices still show
            context["keys"] = table.keys
        else:
            context.update(table=table, page=page, keys=table.keys, sort=_sort_links(table))
        context["chosen_metrics"] = table.metric_columns
        context["chosen_params"] = table.param_columns
        template = self.partial_template_name if request.htmx else self.template_name
        response = render(request, template, context, status=status)
        patch_vary_headers(response, ("HX-Request",))
        return response


class RunDetailView(LoginRequiredMixin, View):
    """A run: its facts, params, metrics with their step history as line charts, tags, datasets, files, logged
    models and the versions registered from it."""

    def get(self, request: HttpRequest, run_id: str) -> HttpResponse:
        """Render the run page."""
        try:
            run = selectors.run_get(actor=request.user, run_id=run_id)
        except DomainError as error:
            _not_found(error)
        record = selectors.run_record(actor=request.user, run=run)
        figures = [{"name": name, "figure": charts.metric_history_figure(name, points)}
                   for name, points in list(record.history.items())[:MAX_CHARTS]]
        return render(request, "registry/run_detail.html", {
            "run": run, "record": record, "charts": figures, "unserved": selectors.UNSERVED_FORMATS,
            "more_charts": max(0, len(record.history) - MAX_CHARTS),
        })


class RunArtifactView(LoginRequiredMixin, View):
    """Download one file a run logged, streamed from the blob store, with the tracking routes' checks."""

    def get(self, request: HttpRequest, run_id: str, path: str) -> HttpResponse:
        """Stream the file; a path that breaks the path rules is a 400, an unknown run or file a 404."""
        try:
            run = selectors.run_get(actor=request.user, run_id=run_id)
        except DomainError as error:
            _not_found(error)
        try:
            clean = validate_artifact_path(path)
            row = selectors.run_artifact_get(run=run, path=clean)
        except NotFound as error:
            raise Http404(error.message)
        except DomainError as error:  # a path that breaks the rules (400) or a file not for browsers (403)
            return render(request, "registry/run_artifact_refused.html", {"run": run, "message": error.message},
                          status=error.status)
        response = StreamingHttpResponse(iter_range(blob_open(row.blob), 0, row.size),
                                         content_type=content_type_for(row.format))
        response["Content-Length"] = str(row.size)
        name = clean.rsplit("/", 1)[-1].replace('"', "")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Content-Type-Options"] = "nosniff"
        response["ETag"] = f'"{row.blob_id}"'
        return response


class RunCompareView(LoginRequiredMixin, View):
    """Compare 2-5 runs named in the query string (`?runs=<id>,<id>`): metrics with deltas, params, datasets."""

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the comparison, or a readable message for a selection that does not work."""
        picked = [r for r in request.GET.getlist("run") if r]
        if picked:  # the run table's checkboxes submit one `run` each: redirect to the short, shareable form
            return HttpResponseRedirect(f"{reverse('registry:run-compare')}?{urlencode({'runs': ','.join(picked)})}")
        context: dict[str, Any] = {"error": None, "comparison": None}
        status = 200
        try:
            comparison = selectors.run_comparison(actor=request.user, selection=request.GET.get("runs"))
        except NotFound as error:
            raise Http404(error.message)
        except DomainError as error:
            raise_http(error)
            context["error"], status = error.message, error.status
        else:
            labels = [c["label"] for c in comparison.columns]
            figure = charts.comparison_bar_figure(labels, comparison.metrics)
            context.update(comparison=comparison, figure=figure, charts=[figure] if figure else [])
        return render(request, "registry/run_compare.html", context, status=status)
