"""The gateway and deployments honour quarantine: a quarantined version is never deployed, and content quarantined
after it went live (a rescan, a revoked release) stops being served."""

from __future__ import annotations

import pytest

from deployments import services
from registry.errors import InvalidInput
from registry.models import ArtifactScan
from registry.pipeline.jobs import job_run
from registry.pipeline.scan.services import scan_enqueue
from tests.deployments.conftest import SIGNATURE, iris_onnx
from tests.registry.pickle_corpus import MALICIOUS

pytestmark = pytest.mark.django_db

ROW = [5.1, 3.5, 1.4, 0.2]
NAME = "churn-staging"


def test_a_version_with_a_quarantined_file_is_never_deployed(make_version, registered_model, endpoint, owner):
    version = make_version(registered_model, files={"model.onnx": iris_onnx("good"),
                                                    "model.pkl": MALICIOUS["os.system"][0]}, signature=SIGNATURE)
    for artifact in version.artifacts.all():
        job_run(scan_enqueue(artifact).pk)
    with pytest.raises(InvalidInput) as refused:
        services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    assert "quarantined (model.pkl)" in refused.value.message


def test_content_quarantined_after_going_live_is_no_longer_served(servable_version, registered_model, endpoint,
                                                                  owner, predict):
    version = servable_version(registered_model)
    services.deployment_start(actor=owner, endpoint=endpoint, strategy="direct", version=version.number)
    assert predict(NAME, {"rows": [ROW]}).status_code == 200
    # A rescan (say, by a newer scanner) quarantines the ONNX file's content.
    onnx = version.artifacts.get(path="model.onnx")
    ArtifactScan.objects.filter(artifact=onnx).update(verdict="unsafe", quarantined=True,
                                                       offending=["posix.system"])
    response = predict(NAME, {"rows": [ROW]})
    assert response.status_code == 409, response.content
    body = response.json()["error"]
    assert body["code"] == "QUARANTINED" and "posix.system" in body["message"]
