"""Governance app: audit trail, promotion requests, model cards, erasure requests (later issues)."""

from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    """Governance app: connects the audit trail and the promotion gate to the registry's plug points."""

    name = "governance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from governance.gates import promotion_gate, protected_targets
        from governance.receivers import record_domain_event
        from registry import events, gates
        from registry.compare import selectors as compare

        events.domain_event.connect(record_domain_event, dispatch_uid="governance.audit")
        from governance.receivers import notify_on_commit

        events.domain_event_committed.connect(notify_on_commit, dispatch_uid="governance.notifications")
        from governance.receivers import check_evidence_on_commit

        events.domain_event_committed.connect(check_evidence_on_commit, dispatch_uid="governance.evidence")
        gates.register_gate(promotion_gate, probe=protected_targets)
        compare.register_metric_policy(champion_metric_rules)
        from governance.cards import bom
        from governance.cards import jobs as card_jobs
        from registry.pipeline import services as pipeline

        pipeline.register_signed_document(bom.SIGNED_NAME, bom.bom_for_signing)
        pipeline.register_handler(card_jobs.PDF_JOB_KIND, card_jobs.card_export_job_run, label=card_jobs.PDF_JOB_LABEL)
        from registry.artifacts import gc

        gc.register_known_files(card_jobs.card_export_files)
        from governance import version_panels

        version_panels.register()


def champion_metric_rules(model) -> list[dict]:
    """The metric rules of the model's protected `champion` alias, which the challenger verdict applies."""
    from governance.models import ProtectedTarget

    target = ProtectedTarget.objects.filter(model=model, kind="alias", name="champion").first()
    return list(target.metric_rules or []) if target else []
