"""Large card exports as background jobs: every card of a model rendered one by one, merged, with progress."""

from __future__ import annotations

import io
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from pypdf import PdfWriter

from governance.cards import pdf, selectors
from governance.models import CardExportJob, ExportState
from registry import permissions as registry_permissions
from registry.artifacts.storage import artifact_storage
from registry.errors import InvalidState, NotFound
from registry.models import Job, RegisteredModel
from registry.pipeline import services as pipeline

# The pipeline job kind governance registers at start-up (GovernanceConfig.ready): one card export rendered as a PDF.
PDF_JOB_KIND, PDF_JOB_LABEL = "pdf", "Render PDF"


@transaction.atomic
def card_export_request(*, model: RegisteredModel, actor: Any) -> CardExportJob:
    """Queue an export of every card of `model` as one PDF; the work starts after commit."""
    if not registry_permissions.can_view(actor, model):
        raise NotFound(f"Registered model {model.name!r} not found.")
    total = selectors.cards_of_model(model=model).count()
    if total == 0:
        raise InvalidState(f"{model.name!r} has no model cards yet.")
    job = CardExportJob.objects.create(model=model, requested_by=actor, total=total)
    # A durable pipeline job carries the work: acknowledged late, retried by the sweeper if the broker was down or
    # the worker died, with its state and progress on the same row as every other background job.
    pipeline.job_enqueue(kind=PDF_JOB_KIND, key=f"pdf:card-export:{job.pk}", label=f"{job} of {model.name}",
                         params={"card_export": job.pk})
    return job


def card_export_job_run(pipeline_job: Job) -> dict[str, Any]:
    """Perform a PDF job of the pipeline: render the card export it names, reporting progress on the job row."""
    export = CardExportJob.objects.filter(pk=pipeline_job.params.get("card_export")).first()
    if export is None:
        return {"superseded": True}

    def progress(done: int, total: int) -> None:
        pipeline.job_progress(pipeline_job, 100 * done // max(total, 1))

    export = card_export_run(job=export, on_progress=progress)
    return {"card_export": export.pk, "cards": export.done, "file": export.file_name}


def card_export_run(*, job: CardExportJob, on_progress: Any = None) -> CardExportJob:
    """Render the job's cards one at a time (saving progress after each), merge them and store the PDF."""
    job = CardExportJob.objects.select_related("model", "requested_by").get(pk=job.pk)
    if job.state == ExportState.DONE:
        return job  # idempotent: a redelivered task finds the work done
    cards = list(selectors.cards_of_model(model=job.model))
    CardExportJob.objects.filter(pk=job.pk).update(state=ExportState.RUNNING, total=len(cards), done=0)
    try:
        writer = PdfWriter()
        for index, card in enumerate(cards, start=1):
            writer.append(io.BytesIO(pdf.render_pdf([card], job.requested_by)))
            CardExportJob.objects.filter(pk=job.pk).update(done=index)
            if on_progress is not None:
                on_progress(index, len(cards))
        out = io.BytesIO()
        writer.write(out)
        name = artifact_storage().save(f"exports/cards/{job.pk}-{job.model.name}.pdf", ContentFile(out.getvalue()))
    except Exception as error:
        CardExportJob.objects.filter(pk=job.pk).update(state=ExportState.FAILED, error=str(error)[:2000],
                                                       finished_at=timezone.now())
        raise
    CardExportJob.objects.filter(pk=job.pk).update(state=ExportState.DONE, file_name=name,
                                                   finished_at=timezone.now())
    job.refresh_from_db()
    return job


def card_export_files() -> list[str]:
    """The artifact-store names of every exported card PDF (garbage collection leaves them alone)."""
    return list(CardExportJob.objects.exclude(file_name="").values_list("file_name", flat=True))


def card_export_get(*, actor: Any, pk: int) -> CardExportJob:
    """Return a job on a model `actor` may see, or raise NotFound."""
    job = CardExportJob.objects.select_related("model").filter(
        pk=pk, model__in=registry_permissions.visible_models(actor)).first()
    if job is None:
        raise NotFound(f"No card export #{pk}.")
    return job
