"""Versioning triggers: schedule, new training data and degradation rules, their firings, API and page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.models import AuditEvent
from registry import events, services
from registry.errors import Forbidden, InvalidInput
from registry.lineage import services as lineage
from registry.lineage.models import NodeKind
from registry.models import RetrainRequest, Role, WebhookDelivery
from registry.pipeline import triggers

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(registered_model, make_version):
    """Version 1.4.0 of churn, trained on customers (digest aaa), holding @champion."""
    version = make_version(registered_model, semver="1.4.0",
                           datasets=[{"name": "customers", "uri": "s3://d/customers", "digest": "aaa"}])
    services.alias_set(model=registered_model, alias="champion", version=version, actor=registered_model.owner)
    return version


@pytest.mark.parametrize("cron", ["", "* * *", "61 * * * *", "0 25 * * *", "0 3 * * funday"])
def test_bad_cron_expressions_are_refused(registered_model, cron):
    with pytest.raises(InvalidInput):
        triggers.retrain_rule_create(model=registered_model, actor=registered_model.owner, trigger="schedule",
                                     cron=cron)


def test_only_maintainers_change_triggers(registered_model, make_user, grant):
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    with pytest.raises(Forbidden):
        triggers.retrain_rule_create(model=registered_model, actor=viewer, trigger="new_data")


def test_a_schedule_fires_once_when_due_and_announces_a_patch(trained, registered_model):
    rule = triggers.retrain_rule_create(model=registered_model, actor=registered_model.owner, trigger="schedule",
                                        cron="0 3 * * *")
    assert rule.next_due_at > timezone.now()
    assert triggers.retrain_schedules_tick() == 0
    later = rule.next_due_at + timedelta(seconds=1)
    assert triggers.retrain_schedules_tick(now=later) == 1
    request = RetrainRequest.objects.get()
    assert (request.trigger, request.suggested_bump, request.suggested_semver) == ("schedule", "patch", "1.4.1")
    assert request.details["serving_version"] == trained.number
    rule.refresh_from_db()
    assert rule.next_due_at > later - timedelta(seconds=1) and rule.last_fired_at is not None
    assert triggers.retrain_schedules_tick(now=later) == 0
    event = AuditEvent.objects.get(action="model.retrain_requested")
    assert event.model_id == registered_model.pk and event.data["suggested_bump"] == "patch"


def test_a_new_version_of_a_training_dataset_suggests_a_minor_release(trained, registered_model, owner,
                                                                      django_capture_on_commit_callbacks):
    triggers.retrain_rule_create(model=registered_model, actor=owner, trigger="new_data")
    with django_capture_on_commit_callbacks(execute=True):
        lineage.node_create(actor=owner, kind=NodeKind.DATASET, name="unrelated", digest="zzz")
    assert not RetrainRequest.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        lineage.node_create(actor=owner, kind=NodeKind.DATASET, name="customers", version="2026-11", digest="bbb")
    request = RetrainRequest.objects.get()
    assert request.suggested_bump == "minor" and request.suggested_semver == "1.5.0"
    assert "customers 2026-11" in request.reason and "trained on aaa" in request.reason


def test_a_changed_dataset_schema_suggests_a_major_release(registered_model, make_version, owner,
                                                           django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        old = lineage.node_create(actor=owner, kind=NodeKind.DATASET, name="customers", version="1",
                                  schema={"columns": ["age", "plan"]}).obj
    version = make_version(registered_model, semver="2.0.0")
    node, _ = lineage.version_node_ensure(version)
    lineage.edge_create(actor=owner, upstream=old, downstream=node, kind="trained_on")
    triggers.retrain_rule_create(model=registered_model, actor=owner, trigger="new_data")
    with django_capture_on_commit_callbacks(execute=True):
        lineage.node_create(actor=owner, kind=NodeKind.DATASET, name="customers", version="2",
                            schema={"columns": ["age", "plan", "region"]})
    request = RetrainRequest.objects.get()
    assert request.suggested_bump == "major" and request.suggested_semver == "3.0.0"
    assert "signature will change" in request.reason


def test_degradation_fires_once_per_rollout_and_reaches_webhooks(trained, registered_model, owner,
                                                                 django_capture_on_commit_callbacks):
    from registry.webhooks import services as webhooks

    triggers.retrain_rule_create(model=registered_model, actor=owner, trigger="degradation")
    webhooks.subscription_create(actor=owner, url="https://hooks.example.com/retrain", model=registered_model,
                                 event_types=["model.retrain_requested"])
    data = {"model_id": registered_model.pk, "model": "churn", "endpoint": "churn-prod", "version_number": 2,
            "reason": "analysis failed: error rate 0.4 > 0.05"}
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            events.emit("deployment.rolled_back", actor=None, target=registered_model, data=data)
    request = RetrainRequest.objects.get()
    assert "churn-prod" in request.reason and "error rate" in request.reason and request.suggested_bump == "minor"
    assert WebhookDelivery.objects.filter(event_type="model.retrain_requested").count() == 1


def test_retrain_rules_api(api_client_for, registered_model, owner, make_user, grant):
    client = api_client_for(owner)
    url = "/api/v1/models/churn/retrain-rules"
    created = client.post(url, {"trigger": "schedule", "cron": "30 2 * * 1"}, format="json")
    assert created.status_code == 201 and created.json()["next_due_at"]
    assert client.post(url, {"trigger": "schedule", "cron": "bad"}, format="json").status_code == 400
    assert client.post(url, {"trigger": "sometimes"}, format="json").status_code == 400
    assert [r["cron"] for r in client.get(url).json()["rules"]] == ["30 2 * * 1"]
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    assert api_client_for(viewer).post(url, {"trigger": "new_data"}, format="json").status_code == 403
    rule_id = created.json()["id"]
    assert client.delete(f"{url}/{rule_id}").status_code == 204
    assert client.delete(f"{url}/{rule_id}").status_code == 404
    assert client.get("/api/v1/models/churn/retrain-requests").json() == {"requests": []}


def test_model_page_shows_and_adds_triggers(client, registered_model, owner):
    client.force_login(owner)
    bad = client.post("/models/churn/retrain-rules/", {"trigger": "schedule", "cron": "every day"})
    assert bad.status_code == 400 and b"five fields" in bad.content
    assert client.post("/models/churn/retrain-rules/", {"trigger": "schedule", "cron": "0 4 * * *"}).status_code == 302
    page = client.get("/models/churn/").content.decode()
    assert "Versioning triggers" in page and "0 4 * * *" in page
