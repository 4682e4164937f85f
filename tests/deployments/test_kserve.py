"""Hand-off to KServe: an endpoint exported as an InferenceService, checked against the kserve package's own models."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import types
from typing import Any

import pytest
import yaml

from deployments import services
from deployments.models import Deployment
from registry.artifacts.storage import blob_name
from tests.conftest import need_service
from tests.deployments.conftest import iris_onnx

RFC1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
PRIMITIVES: dict[str, Any] = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def kserve_models() -> types.ModuleType:
    """kserve's generated API model classes (kserve.models), imported without running kserve/__init__.py: that
    file imports kserve's model server, whose dependencies (grpc, protobuf<7, pandas<3, ...) conflict with this
    project's pins, so kserve is installed with --no-deps (make setup) and only its model classes are used."""
    if "kserve" not in sys.modules:
        spec = importlib.util.find_spec("kserve")
        if spec is None or not spec.submodule_search_locations:
            need_service("kserve", "pip install --no-deps kserve==0.21.0 (make setup installs it)")
        package = types.ModuleType("kserve")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["kserve"] = package
    import kserve.models

    return kserve.models


def kserve_load(data: Any, type_name: str) -> Any:
    """Build kserve model objects from exported JSON: every key must be one the model declares, every value of
    its declared type; the generated constructors check required fields and allowed values."""
    models = kserve_models()
    if type_name in PRIMITIVES:
        assert isinstance(data, PRIMITIVES[type_name]) and not (type_name == "int" and isinstance(data, bool)), \
            (type_name, data)
        return data
    if type_name.startswith("list["):
        assert isinstance(data, list)
        return [kserve_load(item, type_name[5:-1]) for item in data]
    if type_name.startswith("dict("):
        value_type = type_name[5:-1].split(",", 1)[1].strip()
        assert isinstance(data, dict) and all(isinstance(k, str) for k in data)
        return {k: kserve_load(v, value_type) for k, v in data.items()}
    if type_name == "V1ObjectMeta":  # Kubernetes' own type: the parts an exported object may set
        assert set(data) <= {"name", "namespace", "labels", "annotations"}, data
        assert RFC1123.fullmatch(data["name"]) and len(data["name"]) <= 63
        for key in ("labels", "annotations"):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.get(key, {}).items())
        return data
    klass = getattr(models, type_name)
    by_json = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    assert isinstance(data, dict) and set(data) <= set(by_json), (type_name, set(data) - set(by_json))
    return klass(**{by_json[k]: kserve_load(v, klass.openapi_types[by_json[k]]) for k, v in data.items()})


def validated(exported: dict[str, Any]) -> Any:
    """Parse an export into kserve's V1beta1InferenceService and check it serialises back to the same JSON."""
    kserve_models()
    from kserve.api_client import ApiClient

    service = kserve_load(exported, "V1beta1InferenceService")
    assert ApiClient().sanitize_for_serialization(service) == exported
    return service


@pytest.fixture
def api(api_client_for, owner):
    return api_client_for(owner)


@pytest.fixture
def live(servable_version, registered_model, endpoint, owner):
    v1 = servable_version(registered_model)
    v2 = servable_version(registered_model, iris_onnx("different"))
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=v1.number)
    return v1, v2


def test_export_of_a_stable_endpoint_serves_its_signed_onnx(api, live):
    v1, _ = live
    r = api.get("/api/v1/endpoints/churn-staging/kserve")
    assert r.status_code == 200, r.content
    body = r.json()
    service = validated(body)
    assert service.kind == "InferenceService" and service.api_version == "serving.kserve.io/v1beta1"
    model = service.spec.predictor.model
    assert model.model_format.name == "onnx" and service.spec.predictor.canary_traffic_percent is None
    assert model.storage_uri == "http://testserver/api/v1/models/churn/versions/1/artifacts/model.onnx"
    notes = body["metadata"]["annotations"]
    assert notes["stratum.dev/version"] == "1" and notes["stratum.dev/signature"] == "verified"
    # The storageUri is Stratum's download route: it answers the ONNX file the gateway serves, byte for byte.
    fetched = api.get(model.storage_uri.removeprefix("http://testserver"))
    assert fetched.status_code == 200
    assert hashlib.sha256(b"".join(fetched.streaming_content)).hexdigest() == notes["stratum.dev/artifact-sha256"]
    assert notes["stratum.dev/artifact-sha256"] == v1.artifacts.get(path="model.onnx").blob_id

    as_yaml = api.get("/api/v1/endpoints/churn-staging/kserve?output=yaml")
    assert as_yaml.status_code == 200 and as_yaml["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.content) == body
    bad = api.get("/api/v1/endpoints/churn-staging/kserve?output=xml")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "INVALID_PARAMETER_VALUE"


def test_a_canary_exports_the_candidate_with_its_traffic_percent(api, live):
    v1, v2 = live
    r = api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "canary", "version": v2.number,
                                         "steps": [{"set_weight": 20}, {"pause": {}}]}, format="json")
    assert r.status_code == 201, r.content
    service = validated(api.get("/api/v1/endpoints/churn-staging/kserve").json())
    assert service.spec.predictor.canary_traffic_percent == 20
    assert service.spec.predictor.model.storage_uri.endswith(f"/versions/{v2.number}/artifacts/model.onnx")
    assert service.metadata["annotations"]["stratum.dev/stable-version"] == str(v1.number)
    api.post(f"/api/v1/deployments/{r.json()['id']}/abort", {"reason": "enough"}, format="json")
    back = validated(api.get("/api/v1/endpoints/churn-staging/kserve").json())
    assert back.spec.predictor.canary_traffic_percent is None
    assert back.spec.predictor.model.storage_uri.endswith(f"/versions/{v1.number}/artifacts/model.onnx")


def test_on_an_s3_store_the_storage_uri_is_the_blob_in_the_bucket(api, live, settings):
    v1, _ = live
    settings.STORAGES = {**settings.STORAGES, "artifacts": {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "models", "location": "stratum", "endpoint_url": "http://127.0.0.1:9"}}}
    service = validated(api.get("/api/v1/endpoints/churn-staging/kserve").json())
    sha = v1.artifacts.get(path="model.onnx").blob_id
    assert service.spec.predictor.model.storage_uri == f"s3://models/stratum/{blob_name(sha)}"


def test_refusals(api, api_client_for, make_user, client, endpoint, live, registered_model, owner):
    outsider = api_client_for(make_user("stranger"))
    assert outsider.get("/api/v1/endpoints/churn-staging/kserve").status_code == 404
    assert client.get("/api/v1/endpoints/churn-staging/kserve").status_code in (401, 403)
    assert api.get("/api/v1/endpoints/nope/kserve").status_code == 404
    empty = services.endpoint_create(actor=owner, name="empty-one", environment=endpoint.environment,
                                     model=registered_model)
    r = api.get(f"/api/v1/endpoints/{empty.name}/kserve")
    assert r.status_code == 409 and "deploy a version first" in r.json()["error"]["message"]
    v1, v2 = live
    r = api.post("/api/v1/deployments", {"endpoint": "churn-staging", "strategy": "ab", "version": v2.number,
                                         "arms": [{"version": v1.number, "weight": 50},
                                                  {"version": v2.number, "weight": 50}]}, format="json")
    assert r.status_code == 201, r.content
    refused = api.get("/api/v1/endpoints/churn-staging/kserve")
    assert refused.status_code == 409 and "A/B" in refused.json()["error"]["message"]
    assert Deployment.objects.filter(strategy="ab").exists()


def test_endpoint_names_become_kubernetes_names():
    from deployments.kserve import kserve_name

    assert kserve_name("Churn_Staging.v2") == "churn-staging-v2"
    assert kserve_name("_" * 5) == "endpoint"
    assert len(kserve_name("a" * 100)) == 63
