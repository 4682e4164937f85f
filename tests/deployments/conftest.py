"""Deployment fixtures: real ONNX models built by the tests (good, different, broken) and servable versions."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from deployments import services, serving
from registry.access import token_create
from registry.models import Role
from registry.pipeline import (
    handlers,  # noqa: F401 - installs the job handlers
    signing,
)
from registry.pipeline.jobs import job_run
from registry.pipeline.scan.services import scan_enqueue

FEATURES = ["f0", "f1", "f2", "f3"]
SIGNATURE = {"inputs": [{"name": n, "type": "double"} for n in FEATURES],
             "outputs": [{"name": "class", "type": "long", "labels": ["a", "b", "c"]}]}


@functools.cache
def iris_onnx(variant: str = "good") -> bytes:
    """A logistic regression on iris (variant "good"), or a decision stump that disagrees often ("different")."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500) if variant == "good" else DecisionTreeClassifier(max_depth=1)
    model.fit(x, y)
    onx = to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False}, target_opset={"": 17, "ai.onnx.ml": 3})
    return onx.SerializeToString()


@functools.cache
def regressor_onnx(shift: float = 0.0) -> bytes:
    """A linear regression on iris predicting petal width from four features, its output moved by `shift`."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression

    x, _ = load_iris(return_X_y=True)
    model = LinearRegression().fit(x, x[:, 3])
    model.intercept_ += shift
    return to_onnx(model, x[:1].astype(np.float32), target_opset={"": 17}).SerializeToString()


@functools.cache
def broken_onnx() -> bytes:
    """A 4-feature model that answers label 0 when f0 < 1 and fails (index out of range) when f0 >= 1."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Gather", ["X", "col0"], ["first"], axis=1),  # (n, 1)
        helper.make_node("Cast", ["first"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "index"], ["picked"], axis=0),  # table has one row: f0 >= 1 fails
        helper.make_node("Reshape", ["picked", "flat"], ["label"]),
    ]
    graph = helper.make_graph(
        nodes, "broken",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None])],
        initializer=[helper.make_tensor("col0", TensorProto.INT64, [1], [0]),
                     helper.make_tensor("table", TensorProto.INT64, [1], [0]),
                     helper.make_tensor("flat", TensorProto.INT64, [1], [-1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="stratum-tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _run_jobs(version) -> None:
    for job in version.jobs.all():
        job_run(job.pk)


@pytest.fixture
def servable_version(make_version):
    """servable_version(model, onnx=bytes, sign=True) -> a version with a scanned (and signed) model.onnx."""

    def _make(model, onnx: bytes | None = None, *, sign: bool = True, scan: bool = True, **fields):
        version = make_version(model, files={"model.onnx": onnx or iris_onnx("good"),
                                             "MLmodel": b"flavors: {}\n"},
                               signature=fields.pop("signature", SIGNATURE), **fields)
        if scan:
            for artifact in version.artifacts.all():
                job_run(scan_enqueue(artifact).pk)
        if sign:
            job_run(signing.sign_enqueue(version=version, actor=model.owner).pk)
        return version

    return _make


@pytest.fixture
def environment(staff):
    return services.environment_create(actor=staff, name="staging", description="Pre-production.")


@pytest.fixture
def endpoint(registered_model, environment):
    return services.endpoint_create(actor=registered_model.owner, name="churn-staging", environment=environment,
                                    model=registered_model)


@pytest.fixture
def serving_token():
    """serving_token(user) -> a raw token with the serve scope."""

    def _make(user) -> str:
        return token_create(user=user, actor=user, name="serving", scopes=["serve"])[1]

    return _make


@pytest.fixture
def predict(client, serving_token, owner):
    """predict(endpoint_name, body, token=None, **headers) -> the gateway's response (owner's token by default)."""
    default = serving_token(owner)

    def _predict(name: str, body, token: str | None = None, **headers):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
        return client.post(f"/serve/{name}/predict", data=data, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token or default}", **extra)

    return _predict


@pytest.fixture(autouse=True)
def _fresh_gateway(settings):
    """Each test starts with an empty gateway cache and statistics flushed only when the test asks."""
    settings.STRATUM_SERVING_FLUSH_SECONDS = 0
    settings.STRATUM_ROUTING_REFRESH_SECONDS = 0
    serving.reset()
    yield
    serving.reset()


__all__ = ["FEATURES", "SIGNATURE", "Role", "broken_onnx", "iris_onnx", "regressor_onnx"]
