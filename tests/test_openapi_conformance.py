"""The OpenAPI schema describes every response of the native API: schemathesis generates requests for each operation
from the schema itself and checks that nothing answers 500 and that every answer has the status, media type and
body the schema documents."""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deployments import services as deployments
from governance import services as governance
from governance.cards import services as cards
from governance.erasure import services as erasure
from registry import access, services
from registry.lineage import services as lineage
from registry.models import Role
from registry.pipeline import signing, triggers
from registry.pipeline.jobs import job_run
from registry.pipeline.scan.services import scan_enqueue
from registry.webhooks import services as webhooks
from tests.conftest import spooled
from tests.deployments.conftest import SIGNATURE, iris_onnx

pytestmark = pytest.mark.django_db

# Bounded so CI stays quick; STRATUM_FUZZ_EXAMPLES runs a deeper search locally (and STRATUM_FUZZ_NEGATIVE=1 adds
# requests that break the schema on purpose, which must be refused with a documented 4xx, never a 500).
EXAMPLES_PER_OPERATION = int(os.environ.get("STRATUM_FUZZ_EXAMPLES", "8"))
MODES = [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if os.environ.get("STRATUM_FUZZ_NEGATIVE") else [])]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@functools.cache
def _raw_schema() -> dict[str, Any]:
    """The schema exactly as /api/v1/schema/ serves it (as JSON), generated without a request."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


@functools.cache
def _schema() -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_dict(_raw_schema(), config=SchemathesisConfig())
    schema.app = WSGIHandler()
    return schema


def _operation_labels() -> list[str]:
    return [f"{method.upper()} {path}" for path, item in _raw_schema()["paths"].items()
            for method in item if method in {"get", "put", "post", "patch", "delete"}]


@pytest.fixture
def in_test_transaction():
    """Serve requests on the test's own connection: like Django's test client, keep the per-request connection
    housekeeping from closing the connection that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(make_user) -> dict[str, Any]:
    """Real objects for the path parameters: a model with versions, an alias, tags, roles, a protected target, a
    promotion request, an environment and endpoint, a webhook, an erasure request, lineage nodes and a token."""
    from deployments import services as deployments

    admin = make_user("fuzzer", staff=True)
    admin.is_superuser = True
    admin.save(update_fields=["is_superuser"])
    colleague = make_user("colleague")
    model = services.model_create(actor=admin, name="churn", description="Predicts churn.", tags={"team": "risk"})
    v1 = services.version_create(model=model, actor=admin, files=[("MLmodel", spooled(b"flavors: {}\n"))],
                                 metrics={"auc": 0.8}, params={"depth": "4"}, tags={"k": "v"})
    v2 = services.version_create(model=model, actor=admin, files=[("MLmodel", spooled(b"flavors: {}\n"))],
                                 metrics={"auc": 0.85})
    services.alias_set(model=model, alias="champion", version=v1, actor=admin)
    access.role_grant(model=model, actor=admin, user=colleague, role=Role.REVIEWER)
    governance.protected_target_set(model=model, actor=admin, kind="alias", name="champion", approvals_required=1,
                                    allow_emergency_rollback=True)
    promotion = governance.promotion_request_create(version=v2, actor=admin, kind="alias", target="champion",
                                                    justification="Better AUC on the holdout set.")
    environment = deployments.environment_create(actor=admin, name="staging")
    endpoint = deployments.endpoint_create(actor=admin, name="churn-staging", environment=environment, model=model)
    hook, _secret = webhooks.subscription_create(actor=admin, url="https://hooks.example.com/stratum")
    request = erasure.erasure_request_create(actor=admin, identifier="jane@example.org")
    node = lineage.node_create(actor=admin, kind="dataset", name="customers", version="2026-01").obj
    rule = triggers.retrain_rule_create(model=model, actor=admin, trigger="schedule", cron="0 3 * * *")
    token, raw = access.token_create(user=admin, actor=admin, name="fuzzing")
    return {
        "admin": admin, "model": model, "endpoint": endpoint, "token": raw,
        "parameters": {
            "name": "churn", "ref": "1", "alias": "champion", "key": "team", "path": "MLmodel",
            "kind": "alias", "target": "champion", "grantee": "colleague", "action": "complete",
            "node_id": str(node.pk), "prefix": token.prefix,
            # No obligation (nothing in the lineage holds the subject) and no delivery (deliveries are made after
            # commit, which this test's transaction never reaches): those two ids stay generated.
        },
        "ids": {"/api/v1/promotions": promotion.pk, "/api/v1/webhooks": hook.pk,
                "/api/v1/erasure-requests": request.pk, "/api/v1/models/{name}/retrain-rules": rule.pk,
                "/api/v1/endpoints": endpoint.pk},
    }


def _seed_for(path: str, world: dict[str, Any]) -> None:
    """Build the costlier objects only for the operations that use them: a model card, a rollout in progress, a
    quarantined file with a release asked for."""
    if "/releases" in path:
        from registry.pipeline.scan.release import release_request
        from tests.registry.pickle_corpus import MALICIOUS

        version = services.version_create(model=world["model"], actor=world["admin"],
                                          files=[("model.pkl", spooled(MALICIOUS["os.system"][0]))])
        for artifact in version.artifacts.all():
            job_run(scan_enqueue(artifact).pk)
        release = release_request(version=version, path="model.pkl", accepted_globals=["posix.system"],
                                  reason="Reviewed.", actor=world["admin"])
        world["ids"]["/api/v1/models/{name}/releases"] = release.pk
    if "/card" in path:
        cards.card_create(version=world["model"].versions.get(number=1), actor=world["admin"])
    if path.startswith("/api/v1/deployments/"):
        admin, endpoint = world["admin"], world["endpoint"]
        versions = []
        for _ in range(2):
            version = services.version_create(
                model=world["model"], actor=admin, signature=SIGNATURE,
                files=[("model.onnx", spooled(iris_onnx("good"))), ("MLmodel", spooled(b"flavors: {}\n"))])
            for artifact in version.artifacts.all():
                job_run(scan_enqueue(artifact).pk)
            job_run(signing.sign_enqueue(version=version, actor=admin).pk)
            versions.append(version)
        deployments.deployment_start(actor=admin, endpoint=endpoint, strategy="direct", version=versions[0].number)
        canary = deployments.deployment_start(actor=admin, endpoint=endpoint, strategy="canary",
                                              version=versions[1].number)
        world["ids"]["/api/v1/deployments"] = canary.pk


def _real_parameters(path: str, world: dict[str, Any]) -> dict[str, str]:
    """The path parameters of `path` that name seeded objects."""
    wanted = {part[1:-1] for part in path.split("/") if part.startswith("{")}
    values = {k: v for k, v in world["parameters"].items() if k in wanted}
    if "id" in wanted:
        values["id"] = str(next(v for prefix, v in world["ids"].items() if path.startswith(prefix + "/")))
    return values


@pytest.mark.parametrize("label", _operation_labels())
def test_every_response_matches_the_schema(label: str, world, in_test_transaction):
    operation = _schema().find_operation_by_label(label)
    headers = {"Authorization": f"Bearer {world['token']}"}
    _seed_for(operation.path, world)
    real = _real_parameters(operation.path, world)
    # Half the examples aim at the seeded objects (reaching the handler's real work), half at generated names.
    strategy = st.one_of(*(operation.as_strategy(mode, path_parameters=parameters) for mode in MODES
                           for parameters in ([real, None] if real else [None])))

    @given(case=strategy)
    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    def check(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


# Answers whose shape depends on a query value that a bounded search may not pick: each is asked for explicitly.
SHAPES = [
    ("GET /api/v1/audit", {}), ("GET /api/v1/audit", {"export": "json"}), ("GET /api/v1/audit", {"export": "csv"}),
    *[("GET /api/v1/models/{name}/versions/{ref}/card", {"format": fmt}) for fmt in ("json", "mct", "md", "pdf")],
    ("GET /api/v1/models/{name}/versions/{ref}/artifacts/{path}", {}),
    ("GET /api/v1/models/{name}/roles", {}), ("GET /api/v1/models/{name}/aliases", {}),
    ("GET /api/v1/models/{name}/versions/{ref}/artifacts", {}), ("GET /api/v1/tokens", {}),
]


@pytest.mark.parametrize(("label", "query"), SHAPES)
def test_each_answer_shape_matches_the_schema(label: str, query: dict[str, str], world, in_test_transaction):
    operation = _schema().find_operation_by_label(label)
    _seed_for(operation.path, world)
    case = operation.Case(path_parameters=_real_parameters(operation.path, world), query=query)
    response = case.call_and_validate(headers={"Authorization": f"Bearer {world['token']}"}, checks=CHECKS)
    assert response.status_code == 200
