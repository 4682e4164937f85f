"""seed_demo protects Production and @champion on the demo models and leaves one request for the reviewer."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance import audit, selectors
from governance.models import PromotionRequest, ProtectedTarget
from stratum.demo import registry as demo

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def iris_only(monkeypatch, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setattr(demo, "DEMO_MODELS", tuple(m for m in demo.DEMO_MODELS if m.name == "iris-species"))


def test_seed_demo_protects_targets_and_opens_a_request_once():
    call_command("seed_demo", stdout=io.StringIO())
    targets = set(ProtectedTarget.objects.values_list("model__name", "kind", "name", "approvals_required"))
    assert targets == {("iris-species", "stage", "Production", 2), ("iris-species", "alias", "champion", 2)}
    request = PromotionRequest.objects.get()
    assert (request.state, request.kind, request.target, request.requested_by.username) == (
        "open", "alias", "champion", "engineer")
    reviewer = get_user_model().objects.get(username="reviewer")
    assert list(selectors.promotion_inbox(actor=reviewer)) == [request]

    call_command("seed_demo", stdout=io.StringIO())
    assert PromotionRequest.objects.count() == 1 and ProtectedTarget.objects.count() == 2
    assert audit.verify().ok


def test_seeded_demo_subject_is_traced_to_two_datasets_three_versions_and_two_deployments():
    from governance.erasure import services as erasure_services
    from governance.models import ModelCard
    from stratum.demo.governance import DEMO_SUBJECT

    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    compliance = get_user_model().objects.get(username="compliance")
    request = erasure_services.erasure_request_create(actor=compliance, identifier=DEMO_SUBJECT)
    kinds = sorted(request.obligations.values_list("kind", flat=True))
    # Two deployments: the lineage record of an external production endpoint, and Stratum's own staging endpoint.
    assert kinds == ["dataset", "dataset", "deployment", "deployment", "model_version", "model_version",
                     "model_version"]
    assert set(request.obligations.filter(kind="model_version").values_list("label", flat=True)) == {
        "iris-species v1", "iris-species v2", "iris-species v3"}
    assert ModelCard.objects.filter(model__name="iris-species").count() == 1
    assert audit.verify().ok
