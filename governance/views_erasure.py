"""Erasure pages: the request list with deadlines, a request with its impact graph and obligations, the certificate."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views import View
from weasyprint import HTML

from governance.cards.pdf import ASSET_BASE, LockedFetcher
from governance.erasure import selectors, services
from governance.erasure.forms import ErasureRequestForm, ExtendForm, ResolveForm
from governance.models import ErasureRequest, ErasureState, ExemptionGround, SubjectManifest
from governance.views import raise_http
from registry.errors import DomainError, InvalidInput
from registry.lineage import selectors as lineage
from registry.lineage.models import LineageNode, NodeKind
from registry.lineage.selectors import graph_context
from registry.models import ModelVersion


def _request(request: HttpRequest, pk: int) -> ErasureRequest:
    try:
        return selectors.erasure_get(actor=request.user, pk=pk)
    except DomainError as error:
        raise_http(error)
        raise


def _int(raw: Any) -> int:
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


class ErasureListView(LoginRequiredMixin, View):
    """Requests by deadline, with a countdown and overdue ones highlighted; a form to record a new one."""

    def _render(self, request: HttpRequest, form: ErasureRequestForm, status: int = 200) -> HttpResponse:
        try:
            rows = list(selectors.erasure_list(actor=request.user))
        except DomainError as error:
            raise_http(error)
            raise
        today = timezone.localdate()
        for row in rows:
            row.days_left = selectors.days_left(row, today)
            row.overdue = selectors.is_overdue(row, today)
        return render(request, "governance/erasure_list.html", {"rows": rows, "form": form}, status=status)

    def get(self, request: HttpRequest) -> HttpResponse:
        """Render the list."""
        return self._render(request, ErasureRequestForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        """Record a new request and compute its impact."""
        form = ErasureRequestForm(request.POST)
        if form.is_valid():
            try:
                created = services.erasure_request_create(actor=request.user,
                                                          identifier=form.cleaned_data["identifier"],
                                                          received_on=form.cleaned_data["received_on"])
            except DomainError as error:
                raise_http(error)
                form.add_error(None, error.message)
            else:
                messages.success(request, f"Recorded erasure request #{created.pk}: "
                                          f"{created.obligations.count()} affected item(s).")
                return redirect("governance:erasure-detail", pk=created.pk)
        form.data = form.data.copy()
        form.data["identifier"] = ""  # never echo the identifier back
        return self._render(request, form, status=400)


class ErasureDetailView(LoginRequiredMixin, View):
    """A request: deadline, impact graph, obligations with their resolution forms, extension and closing."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Render the request page."""
        erasure = _request(request, pk)
        graph = selectors.impact_graph(request=erasure)
        context: dict[str, Any] = {
            "erasure": erasure, "obligations": selectors.obligations(request=erasure),
            "days_left": selectors.days_left(erasure), "overdue": selectors.is_overdue(erasure),
            "grounds": ExemptionGround.choices, "extend_form": ExtendForm(),
            "is_open": erasure.state == ErasureState.OPEN,
            "reingested": list(LineageNode.objects.filter(pk__in=erasure.suppressed_reingestions)),
        }
        if graph is not None:
            context.update(graph_context(graph))
        return render(request, "governance/erasure_detail.html", context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Resolve an obligation, extend the deadline, or close the request."""
        erasure = _request(request, pk)
        action = request.POST.get("action")
        try:
            if action == "resolve":
                self._resolve(request, erasure)
                messages.success(request, "Obligation resolved.")
            elif action == "purge_files":
                obligation = erasure.obligations.filter(pk=_int(request.POST.get("obligation"))).first()
                if obligation is None:
                    raise InvalidInput("Unknown obligation.")
                done = services.obligation_purge_files(obligation=obligation, actor=request.user)
                messages.success(request, f"Purged {len(done.files_purged['files'])} stored file(s) of "
                                          f"{obligation.label}.")
            elif action == "extend":
                form = ExtendForm(request.POST)
                if not form.is_valid():
                    raise InvalidInput("Give the reason and the date the subject was notified.")
                services.erasure_request_extend(request=erasure, actor=request.user, **form.cleaned_data)
                messages.success(request, "Deadline extended by two months.")
            elif action == "close":
                services.erasure_request_close(request=erasure, actor=request.user)
                messages.success(request, "Request closed; the subject is on the suppression list.")
            else:
                raise InvalidInput("Unknown action.")
        except DomainError as error:
            raise_http(error)
            messages.error(request, error.message)
        return redirect("governance:erasure-detail", pk=erasure.pk)

    def _resolve(self, request: HttpRequest, erasure: ErasureRequest) -> None:
        form = ResolveForm(request.POST)
        if not form.is_valid():
            raise InvalidInput("Choose a resolution.")
        obligation = erasure.obligations.select_related("node__model_version").filter(
            pk=request.POST.get("obligation") or 0).first()
        if obligation is None:
            raise InvalidInput("Unknown obligation.")
        data = form.cleaned_data
        node = LineageNode.objects.filter(pk=data["replacement_node"]).first() if data["replacement_node"] else None
        version = None
        if data["replacement_version"] and obligation.node and obligation.node.model_version:
            version = ModelVersion.objects.filter(model_id=obligation.node.model_version.model_id,
                                                  number=data["replacement_version"]).first()
        services.obligation_resolve(obligation=obligation, actor=request.user, status=data["status"],
                                    reason=data["reason"], replacement_node=node, replacement_version=version,
                                    ground=data["ground"])


class ErasureCertificateView(LoginRequiredMixin, View):
    """The PDF certificate of completion of a closed request, without personal data."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Return the certificate."""
        erasure = _request(request, pk)
        if erasure.state != ErasureState.CLOSED:
            raise Http404("A certificate is issued once the request is closed.")
        html = render_to_string("governance/erasure_certificate.html", {
            "erasure": erasure, "obligations": selectors.obligations(request=erasure),
            "generated_at": timezone.now(), "generated_by": request.user.get_username(), "asset_base": ASSET_BASE})
        data = HTML(string=html, base_url=ASSET_BASE, url_fetcher=LockedFetcher()).write_pdf(attachments=[])
        response = HttpResponse(data, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="erasure-request-{erasure.pk}-certificate.pdf"'
        return response


class SubjectManifestView(LoginRequiredMixin, View):
    """A dataset version's subject manifest: counts, the re-ingestion warning, and a file upload to replace it."""

    def _node(self, request: HttpRequest, pk: int) -> LineageNode:
        try:
            node = lineage.node_get(actor=request.user, node_id=pk)
        except DomainError as error:
            raise_http(error)
            raise
        if node.kind != NodeKind.DATASET:
            raise Http404("Subject manifests belong to dataset versions.")
        return node

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Show the manifest (never its contents: only counts and the key id)."""
        node = self._node(request, pk)
        manifest = SubjectManifest.objects.filter(node=node).select_related("uploaded_by").first()
        return render(request, "governance/subject_manifest.html", {"node": node, "manifest": manifest})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Replace the manifest from an uploaded text file, one identifier per line."""
        node = self._node(request, pk)
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a text file with one subject identifier per line.")
            return redirect("governance:subject-manifest", pk=node.pk)
        try:
            manifest = services.manifest_upload(
                node=node, actor=request.user,
                identifiers=(line.decode("utf-8", "replace").strip() for line in upload))
        except DomainError as error:
            raise_http(error)
            messages.error(request, error.message)
        else:
            messages.success(request, f"Manifest replaced: {manifest.entries} subject(s), stored as keyed hashes.")
        return redirect("governance:subject-manifest", pk=node.pk)
