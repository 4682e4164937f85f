"""seed_demo protects Production and @champion on the demo models and leaves one request for the reviewer."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from governance import audit, selectors
from governance.models import PromotionRequest, ProtectedTarget
from registry import demo

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
