"""Native REST API: status codes, JSON shapes, authorization and bad input (clear 4xx, nothing written)."""

from __future__ import annotations

import base64
import hashlib
import io
import os

import pytest
from rest_framework.test import APIClient

from registry import access, services
from registry.models import Artifact, Blob, ModelVersion, RegisteredModel, Role

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    return body["error"]


# ------------------------------------------------------------------------------------------- models


def test_create_get_list_update_rename_delete_model(api, captured_events):
    response = api.post("/api/v1/models", {"name": "fraud", "description": "d", "tags": {"team": "risk"}},
                        format="json")
    assert response.status_code == 201
    assert response.json()["name"] == "fraud" and response.json()["tags"] == {"team": "risk"}
    assert api.get("/api/v1/models/fraud").json()["owner"] == "owner"
    assert api.patch("/api/v1/models/fraud", {"description": "new"}, format="json").json()["description"] == "new"
    assert api.post("/api/v1/models/fraud/rename", {"new_name": "fraud-v2"}, format="json").status_code == 200
    _error(api.get("/api/v1/models/fraud"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert api.delete("/api/v1/models/fraud-v2").status_code == 204
    assert not RegisteredModel.objects.exists()
    assert [e.action for e in captured_events][-4:] == [
        "registered_model.created", "registered_model.updated", "registered_model.renamed",
        "registered_model.deleted",
    ]


def test_duplicate_model_name_is_409_and_writes_nothing(api, registered_model):
    _error(api.post("/api/v1/models", {"name": "churn"}, format="json"), 409, "RESOURCE_ALREADY_EXISTS")
    assert RegisteredModel.objects.count() == 1


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "   "}, {"name": "a/b"}, {"name": "x" * 300},
                                     {"name": "../etc"}, {"name": ["x"]}, {"name": "ok", "tags": "notjson"}])
def test_invalid_model_names_are_400(api, payload):
    _error(api.post("/api/v1/models", payload, format="json"), 400, "INVALID_PARAMETER_VALUE")
    assert not RegisteredModel.objects.exists()


def test_wrong_content_type_is_415(api):
    response = api.post("/api/v1/models", data="name=x", content_type="text/plain")
    _error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_malformed_json_is_400(api):
    _error(api.post("/api/v1/models", data="{bad", content_type="application/json"), 400, "MALFORMED_REQUEST")


def test_list_paginates_with_cursor_and_validates_max_results(api, owner):
    for i in range(7):
        services.model_create(actor=owner, name=f"m{i}")
    seen, cursor = [], None
    while True:
        params = {"max_results": 3, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/models", params).json()
        seen += [m["name"] for m in body["results"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"m{i}" for i in range(7)]
    for bad in (0, 1001, "x"):
        _error(api.get("/api/v1/models", {"max_results": bad}), 400)
    _error(api.get("/api/v1/models", {"cursor": "!!!"}), 400)


def test_search_filter_language(api, owner, make_version):
    a = services.model_create(actor=owner, name="churn-a", tags={"team": "ml"})
    b = services.model_create(actor=owner, name="churn-b", tags={"team": "risk"})
    services.model_create(actor=owner, name="fraud")
    make_version(a, metrics={"auc": 0.95})
    make_version(b, metrics={"auc": 0.80})

    def names(f):
        response = api.get("/api/v1/models", {"filter": f})
        assert response.status_code == 200, response.content
        return [m["name"] for m in response.json()["results"]]

    assert names("name LIKE 'churn%'") == ["churn-a", "churn-b"]
    assert names("name ILIKE 'CHURN-_'") == ["churn-a", "churn-b"]
    assert names("tags.team = 'ml'") == ["churn-a"]
    assert names("metrics.auc > 0.9") == ["churn-a"]
    assert names("name = 'fraud' OR (tags.team = 'risk' AND metrics.auc < 0.9)") == ["churn-b", "fraud"]


@pytest.mark.parametrize("bad", ["name = ", "name == 'x' AND", "(name = 'x'", "nme = 'x'", "name ~ 'x'",
                                 "metrics.auc > 'high'", "name = 'x' name = 'y'", "metrics.a__b > 1"])
def test_filter_syntax_errors_are_400_with_a_message(api, bad):
    error = _error(api.get("/api/v1/models", {"filter": bad}), 400, "INVALID_PARAMETER_VALUE")
    assert len(error["message"]) > 10


# ------------------------------------------------------------------------------------------ versions


def test_create_version_with_all_provenance(api, registered_model):
    payload = {
        "source_uri": "s3://bucket/run/model", "run_id": "abc123", "description": "**bold**", "semver": "1.2.3",
        "metrics": {"auc": 0.91, "f1": 0.8}, "params": {"max_depth": 5, "criterion": "gini"},
        "signature": {"inputs": [{"name": "age", "type": "double"}], "outputs": [{"type": "long"}]},
        "code_repository": "https://git.example.com/ml/churn", "code_commit": "a" * 40,
        "environment": ["scikit-learn==1.9.1", "numpy==2.4.6"],
        "datasets": [{"name": "customers", "uri": "s3://d/customers.parquet", "digest": "sha256:ff", "role": "train"},
                     {"name": "holdout", "role": "test"}],
        "tags": {"owner": "ml-team"},
    }
    response = api.post("/api/v1/models/churn/versions", payload, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 1 and body["semver"] == "1.2.3" and body["stage"] == "None"
    assert body["metrics"] == {"auc": 0.91, "f1": 0.8}
    assert body["params"] == {"max_depth": "5", "criterion": "gini"}
    assert body["code"] == {"repository": "https://git.example.com/ml/churn", "commit": "a" * 40}
    assert [d["role"] for d in body["datasets"]] == ["test", "train"]
    assert body["creator"] == "owner" and body["status"] == "READY"
    assert api.get("/api/v1/models/churn/versions/1").json()["run_id"] == "abc123"
    assert api.get("/api/v1/models/churn/versions/latest").json()["version"] == 1


@pytest.mark.parametrize("payload", [
    {"semver": "1.2"}, {"semver": "v1.0.0"}, {"metrics": {"auc": "high"}}, {"metrics": [1]},
    {"datasets": [{"role": "train"}]}, {"datasets": [{"name": "d", "role": "holdout"}]}, {"params": {"a": [1]}},
    {"signature": {"inputs": "x"}}
])
def test_invalid_version_payloads_are_400_and_allocate_nothing(api, registered_model, payload):
    response = api.post("/api/v1/models/churn/versions", payload, format="json")
    assert response.status_code == 400, response.content
    registered_model.refresh_from_db()
    assert registered_model.last_version_number == 0 and not ModelVersion.objects.exists()


def test_non_finite_metric_is_400(api, registered_model):
    response = api.post("/api/v1/models/churn/versions", data='{"metrics": {"a": 1e999}}',
                        content_type="application/json")
    assert response.status_code == 400 and not ModelVersion.objects.exists()


def test_semver_bump_follows_the_highest_semver(api, registered_model, make_version):
    make_version(registered_model, semver="1.4.2")
    make_version(registered_model, semver="1.10.0-rc.1")
    bumped = api.post("/api/v1/models/churn/versions", {"semver_bump": "minor"}, format="json").json()
    assert bumped["semver"] == "1.11.0"
    major = api.post("/api/v1/models/churn/versions", {"semver_bump": "major"}, format="json").json()
    assert major["semver"] == "2.0.0"
    _error(api.post("/api/v1/models/churn/versions", {"semver_bump": "huge"}, format="json"), 400)
    _error(api.post("/api/v1/models/churn/versions", {"semver": "3.0.0", "semver_bump": "patch"}, format="json"), 400)


def test_duplicate_semver_is_409(api, registered_model, make_version):
    make_version(registered_model, semver="1.0.0")
    _error(api.post("/api/v1/models/churn/versions", {"semver": "1.0.0"}, format="json"), 409)
    assert ModelVersion.objects.count() == 1


def test_multipart_create_stores_files_in_one_call(api, registered_model):
    pkl = b"\x80\x04\x95" + os.urandom(2000)
    files = [io.BytesIO(pkl), io.BytesIO(b"flavors:\n  python_function: {}\n")]
    files[0].name, files[1].name = "model.pkl", "MLmodel"
    response = api.post("/api/v1/models/churn/versions", {
        "file": files, "path": ["model/model.pkl", "model/MLmodel"], "metrics": '{"auc": 0.7}', "semver": "0.1.0",
    }, format="multipart")
    assert response.status_code == 201, response.content
    listing = api.get("/api/v1/models/churn/versions/1/artifacts").json()["files"]
    assert [(f["path"], f["format"]) for f in listing] == [("model/MLmodel", "mlmodel"), ("model/model.pkl", "pickle")]
    assert listing[1]["sha256"] == hashlib.sha256(pkl).hexdigest() and listing[1]["size"] == len(pkl)


def test_raw_put_and_streamed_download_with_etag_and_range(api, registered_model, make_version):
    make_version(registered_model)
    data = os.urandom(300_000)
    url = "/api/v1/models/churn/versions/1/artifacts/weights/model.onnx"
    response = api.put(url, data=data, content_type="application/octet-stream")
    assert response.status_code == 201, response.content
    digest = hashlib.sha256(data).hexdigest()
    assert response.json()["sha256"] == digest
    full = api.get(url)
    assert full.status_code == 200 and full["ETag"] == f'"{digest}"' and full["Content-Length"] == str(len(data))
    assert b"".join(full.streaming_content) == data
    assert "attachment" in full["Content-Disposition"]
    part = api.get(url, HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert b"".join(part.streaming_content) == data[100:200]
    tail = api.get(url, HTTP_RANGE="bytes=-10")
    assert b"".join(tail.streaming_content) == data[-10:]
    unsatisfiable = api.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert _error(unsatisfiable, 416, "INVALID_RANGE") and unsatisfiable["Content-Range"] == f"bytes */{len(data)}"
    assert api.get(url, HTTP_IF_NONE_MATCH=f'"{digest}"').status_code == 304


def test_raw_put_requires_octet_stream(api, registered_model, make_version):
    make_version(registered_model)
    response = api.put("/api/v1/models/churn/versions/1/artifacts/a.bin", data=b"{}", content_type="application/json")
    _error(response, 415)
    assert not Artifact.objects.exists()


@pytest.mark.parametrize("path", ["../escape.pkl", "a/../../b", "%2e%2e/x", "%252e%252e/x", "a\\b.pkl",
                                  "C:/x.pkl", "a/./b", "x%00y"])
def test_bad_paths_are_400_and_store_nothing(api, registered_model, make_version, path):
    make_version(registered_model)
    response = api.put(f"/api/v1/models/churn/versions/1/artifacts/{path}", data=b"x",
                       content_type="application/octet-stream")
    assert response.status_code in (400, 404), response.content
    assert not Artifact.objects.exists() and not Blob.objects.exists()


def test_bad_multipart_path_is_400(api, registered_model):
    f = io.BytesIO(b"abc")
    f.name = "x.bin"
    response = api.post("/api/v1/models/churn/versions", {"file": [f], "path": ["/etc/passwd"]}, format="multipart")
    _error(response, 400)
    assert not ModelVersion.objects.exists() and not Blob.objects.exists()


def test_oversize_uploads_are_413_and_leave_no_blob(api, registered_model, make_version, settings):
    make_version(registered_model)
    settings.MAX_UPLOAD_BYTES = 1000
    response = api.put("/api/v1/models/churn/versions/1/artifacts/big.bin", data=b"x" * 5000,
                       content_type="application/octet-stream")
    _error(response, 413, "PAYLOAD_TOO_LARGE")
    big = io.BytesIO(b"y" * 5000)
    big.name = "big.bin"
    response = api.post("/api/v1/models/churn/versions", {"file": [big]}, format="multipart")
    _error(response, 413, "PAYLOAD_TOO_LARGE")
    assert not Blob.objects.exists() and ModelVersion.objects.count() == 1
    spool = settings.ARTIFACT_ROOT / "tmp"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_stage_transition_and_archive_existing(api, registered_model, make_version):
    make_version(registered_model)
    make_version(registered_model)
    api.post("/api/v1/models/churn/versions/1/stage", {"stage": "Production"}, format="json")
    response = api.post("/api/v1/models/churn/versions/2/stage",
                        {"stage": "production", "archive_existing_versions": True}, format="json")
    assert response.status_code == 200 and response.json()["stage"] == "Production"
    assert api.get("/api/v1/models/churn/versions/1").json()["stage"] == "Archived"
    _error(api.post("/api/v1/models/churn/versions/2/stage", {"stage": "Live"}, format="json"), 400)
    assert api.get("/api/v1/models/churn/versions/2").json()["stage"] == "Production"


def test_aliases_set_resolve_move_delete(api, registered_model, make_version):
    make_version(registered_model)
    make_version(registered_model)
    assert api.put("/api/v1/models/churn/aliases/champion", {"version": 1}, format="json").status_code == 200
    assert api.get("/api/v1/models/churn/aliases/champion").json()["version"] == 1
    api.put("/api/v1/models/churn/aliases/champion", {"version": 2}, format="json")
    assert api.get("/api/v1/models/churn/aliases/champion").json()["version"] == 2
    assert api.get("/api/v1/models/churn/versions/champion").json()["version"] == 2
    assert api.get("/api/v1/models/churn").json()["aliases"] == {"champion": 2}
    for reserved in ("latest", "v3", "V12"):
        _error(api.put(f"/api/v1/models/churn/aliases/{reserved}", {"version": 1}, format="json"), 400)
    _error(api.put("/api/v1/models/churn/aliases/x", {"version": 9}, format="json"), 404)
    assert api.delete("/api/v1/models/churn/aliases/champion").status_code == 204
    _error(api.get("/api/v1/models/churn/aliases/champion"), 404)


def test_tags_and_deprecation(api, registered_model, make_version):
    make_version(registered_model)
    assert api.put("/api/v1/models/churn/tags/team", {"value": "ml"}, format="json").json()["tags"] == {"team": "ml"}
    assert api.put("/api/v1/models/churn/versions/1/tags/reviewed", {"value": "yes"},
                   format="json").json()["tags"] == {"reviewed": "yes"}
    assert api.delete("/api/v1/models/churn/tags/team").status_code == 204
    _error(api.delete("/api/v1/models/churn/tags/team"), 404)
    body = api.post("/api/v1/models/churn/deprecation", {"reason": "replaced"}, format="json").json()
    assert body["deprecated"] is True and body["deprecation_reason"] == "replaced"
    _error(api.post("/api/v1/models/churn/versions", {}, format="json"), 409)


def test_version_search_across_models(api, owner, make_version):
    a = services.model_create(actor=owner, name="a")
    make_version(a, run_id="r1")
    make_version(a, run_id="r2")
    body = api.get("/api/v1/versions", {"filter": "run_id = 'r2'"}).json()
    assert [(v["model"], v["version"]) for v in body["results"]] == [("a", 2)]


# ------------------------------------------------------------------------------------- authorization


def test_anonymous_gets_401_with_bearer_challenge():
    response = APIClient().get("/api/v1/models")
    _error(response, 401, "UNAUTHENTICATED")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_bad_revoked_and_expired_tokens_are_401(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stm_nope_nope")
    _error(client.get("/api/v1/models"), 401)
    token, raw = access.token_create(user=owner, actor=owner, name="t")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/models").status_code == 200
    access.token_revoke(token=token, actor=owner)
    _error(client.get("/api/v1/models"), 401)


def test_basic_auth_with_password_or_token(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"owner:pw-correct-horse-42").decode())
    assert client.get("/api/v1/models").status_code == 200
    _, raw = access.token_create(user=owner, actor=owner, name="t")
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(f"owner:{raw}".encode()).decode())
    assert client.get("/api/v1/models").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"owner:wrong").decode())
    _error(client.get("/api/v1/models"), 401)


def test_roles_viewer_reads_contributor_registers_maintainer_moves(api_client_for, make_user, registered_model,
                                                                  make_version, grant):
    make_version(registered_model)
    viewer, contributor, maintainer, outsider = (make_user(n) for n in ("v", "c", "m", "o"))
    grant(registered_model, viewer, Role.VIEWER)
    grant(registered_model, contributor, Role.CONTRIBUTOR)
    grant(registered_model, maintainer, Role.MAINTAINER)
    v, c, m, o = (api_client_for(u) for u in (viewer, contributor, maintainer, outsider))
    assert v.get("/api/v1/models/churn").status_code == 200
    _error(v.post("/api/v1/models/churn/versions", {}, format="json"), 403, "PERMISSION_DENIED")
    assert c.post("/api/v1/models/churn/versions", {}, format="json").status_code == 201
    _error(c.put("/api/v1/models/churn/aliases/champion", {"version": 1}, format="json"), 403)
    assert m.put("/api/v1/models/churn/aliases/champion", {"version": 1}, format="json").status_code == 200
    _error(m.post("/api/v1/models/churn/roles", {"user": "o", "role": "viewer"}, format="json"), 403)
    # Someone with no role sees nothing of the model, not even that it exists.
    _error(o.get("/api/v1/models/churn"), 404)
    assert o.get("/api/v1/models").json()["results"] == []
    _error(o.get("/api/v1/models/churn/versions/1/artifacts"), 404)
    # Alias resolution (looked up first, checked after) answers an outsider exactly as for a missing model.
    assert v.get("/api/v1/models/churn/aliases/champion").json()["version"] == 1
    hidden = _error(o.get("/api/v1/models/churn/aliases/champion"), 404)
    missing = _error(o.get("/api/v1/models/nope/aliases/champion"), 404)
    assert hidden["message"].replace("churn", "nope") == missing["message"]
    response = o.get("/api/2.0/mlflow/registered-models/alias", {"name": "churn", "alias": "champion"})
    assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_owner_grants_and_revokes_roles(api, make_user, registered_model, api_client_for):
    bob = make_user("bob")
    assert api.post("/api/v1/models/churn/roles", {"user": "bob", "role": "viewer"}, format="json").status_code == 201
    assert api_client_for(bob).get("/api/v1/models/churn").status_code == 200
    roles = api.get("/api/v1/models/churn/roles").json()
    assert roles["owner"] == "owner" and roles["roles"][0]["user"] == "bob"
    _error(api.post("/api/v1/models/churn/roles", {"user": "nobody", "role": "viewer"}, format="json"), 400)
    _error(api.post("/api/v1/models/churn/roles", {"user": "bob", "role": "emperor"}, format="json"), 400)
    assert api.delete("/api/v1/models/churn/roles/users/bob").status_code == 204
    _error(api_client_for(bob).get("/api/v1/models/churn"), 404)


def test_session_authenticated_api_calls_need_csrf(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get("/api/v1/models").status_code == 200
    _error(client.post("/api/v1/models", {"name": "x"}, format="json"), 403, "PERMISSION_DENIED")
    assert not RegisteredModel.objects.exists()


def test_tokens_api_shows_secret_once(api):
    created = api.post("/api/v1/tokens", {"name": "ci", "expires_in_days": 30}, format="json").json()
    assert created["token"].startswith("stm_")
    listed = api.get("/api/v1/tokens").json()["tokens"]
    assert all("token" not in t for t in listed) and any(t["prefix"] == created["prefix"] for t in listed)
    assert api.delete(f"/api/v1/tokens/{created['prefix']}").json()["revoked_at"]


def test_unknown_api_route_is_json_404(api):
    _error(api.get("/api/v1/no-such-thing"), 404, "ENDPOINT_NOT_FOUND")


def test_openapi_schema_validates_and_docs_are_served_locally(api, owner):
    import yaml
    from drf_spectacular.validation import validate_schema

    response = api.get("/api/v1/schema/")
    assert response.status_code == 200
    validate_schema(yaml.safe_load(response.content))
    client = APIClient()
    client.force_login(owner)
    docs = client.get("/api/v1/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/" in html


def test_version_output_renders_exactly_as_drf_would(owner, make_version):
    """VersionOutput renders by hand for speed; it must match DRF's rendering of its own field declarations."""
    from rest_framework import serializers

    from registry import selectors
    from registry.api.serializers import VersionOutput

    model = services.model_create(actor=owner, name="shapes")
    old = make_version(model, semver="1.0.0", description="first", run_id="r1",
                       metrics={"auc": 0.91, "n": 3}, params={"depth": "4"}, environment=["numpy==2.0"],
                       signature={"inputs": [{"name": "x", "type": "double"}]}, code_repository="git@x:y.git",
                       code_commit="abc123", tags={"b": "2", "a": "1"},
                       datasets=[{"name": "train", "uri": "s3://d/train", "digest": "d1", "role": "train"}])
    new = make_version(model)
    services.alias_set(model=model, alias="champion", version=old, actor=owner)
    services.alias_set(model=model, alias="backup", version=old, actor=owner)
    services.version_deprecate(version=old, actor=owner, reason="superseded", successor=new)
    for version in (selectors.version_queryset().get(pk=old.pk), selectors.version_queryset().get(pk=new.pk),
                    selectors.alias_resolve_by_name(actor=owner, name="shapes", alias="champion")):
        ours = VersionOutput(version).data
        drf = serializers.Serializer.to_representation(VersionOutput(version), version)
        assert ours == drf
    assert ours["successor"] == {"model": "shapes", "version": 2} and ours["aliases"] == ["backup", "champion"]
    assert ours["created_at"].endswith("Z") and ours["metrics"] == {"auc": 0.91, "n": 3.0}


def test_a_page_of_versions_asks_once_which_runs_stratum_holds(api, registered_model, make_version,
                                                               django_assert_num_queries):
    """run_verified: null without a run, false for a run held elsewhere; a page costs one lookup, not one a row (and
    one for the page's scan status, one for its feature sets)."""
    from rest_framework.test import APIRequestFactory

    from registry import selectors
    from registry.api.serializers import VersionOutput

    make_version(registered_model)
    for i in range(3):
        make_version(registered_model, run_id=f"{i:032x}")
    rows = list(selectors.version_queryset().filter(model=registered_model).order_by("number"))
    APIRequestFactory()  # DRF set up before counting
    with django_assert_num_queries(3):
        data = VersionOutput(rows, many=True).data
    assert [v["run_verified"] for v in data] == [None, False, False, False]
