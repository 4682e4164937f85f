"""seed_demo tells the governance story: weeks of history with an earlier champion, two-reviewer promotions,
complete approved cards, one request waiting for the reviewers, an erasure subject, a signed checkpoint, a canary."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone

from governance import audit, selectors, services
from governance.models import AuditCheckpoint, AuditEvent, ModelCard, PromotionRequest, ProtectedTarget
from stratum.demo import registry as demo

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def iris_only(monkeypatch, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setattr(demo, "DEMO_MODELS", tuple(m for m in demo.DEMO_MODELS if m.name == "iris-species"))


@pytest.fixture
def seeded() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_the_story_is_seeded_once(seeded):
    from registry.models import RegisteredModel

    User = get_user_model()
    targets = set(ProtectedTarget.objects.values_list("model__name", "kind", "name", "approvals_required"))
    assert targets == {("iris-species", "stage", "Production", 2), ("iris-species", "alias", "champion", 2)}
    model = RegisteredModel.objects.get(name="iris-species")
    champion = model.aliases.get(name="champion").version
    challenger = model.aliases.get(name="challenger").version

    # The champion got there through two requests, each approved by both reviewers.
    executed = PromotionRequest.objects.filter(state="executed").order_by("pk")
    assert {(r.kind, r.target, r.version_id) for r in executed} == {("alias", "champion", champion.pk),
                                                                    ("stage", "Production", champion.pk)}
    for request in executed:
        assert sorted(request.decisions.values_list("reviewer_username", flat=True)) == ["reviewer", "reviewer2"]
        assert request.holder_version_number == challenger.number  # the earlier champion

    # One request waits for both reviewers.
    waiting = PromotionRequest.objects.get(state="open")
    assert (waiting.kind, waiting.target, waiting.version, waiting.requested_by.username) == (
        "alias", "champion", challenger, "engineer")
    for name in ("reviewer", "reviewer2"):
        assert list(selectors.promotion_inbox(actor=User.objects.get(username=name))) == [waiting]

    # Complete, approved cards for the champion and the earlier champion.
    for version in (champion, challenger):
        card = ModelCard.objects.get(version=version)
        assert card.state == "approved" and card.completeness == 100 and not card.missing
        assert card.approved_by.username == "reviewer"

    # A signed checkpoint covers the whole seeded chain.
    verdict = audit.verify()
    assert verdict.ok and verdict.checkpoints == 1
    assert AuditCheckpoint.objects.get().seq == AuditEvent.objects.order_by("-seq").first().seq
    assert "signed checkpoint at event #" in seeded

    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert PromotionRequest.objects.count() == 3 and ProtectedTarget.objects.count() == 2
    assert AuditCheckpoint.objects.count() == 1  # nothing new to sign
    assert audit.verify().ok


def test_history_spans_weeks_and_rollback_finds_the_earlier_champion(seeded):
    from registry.models import RegisteredModel

    model = RegisteredModel.objects.get(name="iris-species")
    champion = model.aliases.get(name="champion").version
    challenger = model.aliases.get(name="challenger").version
    now = timezone.now()
    created = sorted(model.versions.values_list("created_at", flat=True))
    assert created[0] < now - timedelta(weeks=4) and created[-1] < now - timedelta(weeks=2)
    moves = list(AuditEvent.objects.filter(model_id=model.pk, action="model_version_alias.set",
                                           data__alias="champion").order_by("seq"))
    assert [m.data["to_version"] for m in moves] == [challenger.number, champion.number]
    assert moves[1].created_at - moves[0].created_at > timedelta(days=3)
    first_stage = AuditEvent.objects.filter(model_id=model.pk, action="model_version.stage_transitioned",
                                            data__to_stage="Production").order_by("seq").first()
    assert first_stage.version_number == challenger.number

    assert selectors.previous_holder(model=model, kind="alias", target="champion") == challenger
    engineer = get_user_model().objects.get(username="engineer")
    back = services.promotion_rollback(model=model, actor=engineer, kind="alias", target="champion",
                                       reason="Demo: the new champion misbehaves.", emergency=True)
    assert back.state == "executed" and model.aliases.get(name="champion").version == challenger


def test_erasure_subject_is_printed_and_traced_to_real_deployments(seeded):
    from deployments.models import Deployment, Endpoint
    from governance.erasure import services as erasure_services
    from stratum.demo.governance import DEMO_SUBJECT

    assert DEMO_SUBJECT in seeded
    compliance = get_user_model().objects.get(username="compliance")
    request = erasure_services.erasure_request_create(actor=compliance, identifier=DEMO_SUBJECT)
    kinds = sorted(request.obligations.values_list("kind", flat=True))
    assert kinds.count("dataset") == 2 and kinds.count("model_version") == 3
    deployments = list(request.obligations.filter(kind="deployment").select_related("node"))
    assert deployments
    for obligation in deployments:  # each names a rollout the Deployments page shows
        endpoint, _, number = obligation.node.name.partition("#")
        assert Deployment.objects.filter(pk=int(number), endpoint__name=endpoint).exists()
    assert Endpoint.objects.filter(name="iris-species-staging").exists()


def test_one_canary_is_in_progress(seeded):
    from deployments.models import ACTIVE_PHASES, Deployment

    canary = Deployment.objects.get(strategy="canary")
    assert canary.phase in ACTIVE_PHASES
    assert canary.candidate_version == canary.endpoint.model.aliases.get(name="challenger").version
    assert "canary of version" in seeded
