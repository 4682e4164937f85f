"""Quarantine holds on every route, the version carries its trust state, and only a four-eyes release lets a
quarantined file out again (per digest, exact globals, audited, revocable)."""

from __future__ import annotations

import io
import pickle

import pytest

from registry.models import ArtifactRelease, Role
from registry.pipeline import handlers  # noqa: F401 - installs the job handlers
from registry.pipeline.jobs import job_run
from registry.pipeline.scan.services import scan_enqueue
from registry.pipeline.scan.trust import TrustState, artifact_trust, versions_trust
from registry.tracking import artifacts as tracking_artifacts
from tests.registry.pickle_corpus import MALICIOUS, benign_models

pytestmark = pytest.mark.django_db

EVIL = MALICIOUS["os.system"][0]  # a real malicious pickle, built by pickling a reference; never loaded


def _scan(version) -> None:
    for artifact in version.artifacts.all():
        job_run(scan_enqueue(artifact).pk)


@pytest.fixture
def evil_version(registered_model, make_version):
    """Version 1: a malicious model.pkl (scanned: quarantined) beside a harmless notes.txt."""
    version = make_version(registered_model, files={"model.pkl": EVIL, "notes.txt": b"hello"})
    _scan(version)
    return version


@pytest.fixture
def people(make_user, grant, registered_model):
    """A maintainer, two administrators and a contributor of the model."""
    maintainer, admin, admin2, contributor = (make_user("maint"), make_user("admin", staff=True),
                                              make_user("admin2", staff=True), make_user("contrib"))
    grant(registered_model, maintainer, Role.MAINTAINER)
    grant(registered_model, contributor, Role.CONTRIBUTOR)
    return {"maintainer": maintainer, "admin": admin, "admin2": admin2, "contributor": contributor}


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"]["code"] == code, body
    return body["error"]


FILE = "/api/v1/models/churn/versions/1/artifacts/model.pkl"


# ------------------------------------------------------------------------------------------ the predicate


def test_trust_of_each_kind_of_file(registered_model, make_version):
    version = make_version(registered_model, files={
        "evil.pkl": EVIL, "good.pkl": pickle.dumps(benign_models()["ridge"]), "data.csv": b"a,b\n1,2\n",
        "unscanned.pkl": b"\x80\x04N."})
    for artifact in version.artifacts.exclude(path="unscanned.pkl"):
        job_run(scan_enqueue(artifact).pk)
    states = {a.path: artifact_trust(a).state for a in version.artifacts.all()}
    assert states == {"evil.pkl": TrustState.QUARANTINED, "good.pkl": TrustState.CLEAN,
                      "data.csv": TrustState.CLEAN, "unscanned.pkl": TrustState.PENDING}
    # A clean non-pickle file needs no scan; a zip (may hold pickles) waits for one.
    other = make_version(registered_model, files={"data.csv": b"a,b\n", "bundle.zip": _zip({"data.pkl": EVIL})})
    states = {a.path: artifact_trust(a).state for a in other.artifacts.all()}
    assert states == {"data.csv": TrustState.CLEAN, "bundle.zip": TrustState.PENDING}
    _scan(other)
    assert artifact_trust(other.artifacts.get(path="bundle.zip")).state == TrustState.QUARANTINED


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_version_trust_for_a_page_is_a_fixed_number_of_queries(registered_model, make_version,
                                                               django_assert_num_queries):
    versions = [make_version(registered_model, files={"model.pkl": EVIL, "a.txt": b"x"}) for _ in range(2)]
    versions += [make_version(registered_model, files={"model.pkl": pickle.dumps({"w": [1.0]})}) for _ in range(3)]
    for v in versions[:4]:
        _scan(v)
    ids = [v.pk for v in versions]
    with django_assert_num_queries(2):  # the files not plainly clean with their verdicts, then releases
        trust = versions_trust(ids)
    assert [trust[i].state for i in ids] == ["quarantined", "quarantined", "clean", "clean", "pending"]
    assert trust[ids[0]].offending == ["posix.system"]
    with django_assert_num_queries(1):  # nothing quarantined: no release to look up
        assert {t.state for t in versions_trust(ids[2:]).values()} == {"clean", "pending"}


# ------------------------------------------------------------------------------------------ every route


def test_native_download_refuses_quarantined_and_unscanned_pickles(api_client_for, owner, evil_version,
                                                                   registered_model, make_version, staff):
    for user in (owner, staff):  # nobody, not even an administrator or the owner
        error = _error(api_client_for(user).get(FILE), 409, "QUARANTINED")
        assert "posix.system" in error["message"] and "Quarantined" in error["message"]
        assert error["details"]["scan_status"] == "quarantined" and error["details"]["offending"] == ["posix.system"]
    # Conditional and range requests learn nothing more.
    api = api_client_for(owner)
    _error(api.get(FILE, HTTP_RANGE="bytes=0-3"), 409, "QUARANTINED")
    _error(api.get(FILE, HTTP_IF_NONE_MATCH=f'"{evil_version.artifacts.get(path="model.pkl").blob_id}"'), 409,
           "QUARANTINED")
    # Alias and "latest" resolve to the same file and the same refusal.
    _error(api.get("/api/v1/models/churn/versions/latest/artifacts/model.pkl"), 409, "QUARANTINED")
    # The harmless file of the same version is served.
    assert api.get("/api/v1/models/churn/versions/1/artifacts/notes.txt").status_code == 200
    # A pickle not scanned yet is withheld until its scan passes, then served.
    pending = make_version(registered_model, files={"model.pkl": pickle.dumps({"w": [1.0]})})
    error = _error(api.get(f"/api/v1/models/churn/versions/{pending.number}/artifacts/model.pkl"), 409,
                   "QUARANTINED")
    assert error["details"]["scan_status"] == "pending" and "not been scanned" in error["message"]
    _scan(pending)
    response = api.get(f"/api/v1/models/churn/versions/{pending.number}/artifacts/model.pkl")
    assert response.status_code == 200 and b"".join(response.streaming_content) == pickle.dumps({"w": [1.0]})


def test_native_api_carries_scan_status(api_client_for, owner, evil_version):
    api = api_client_for(owner)
    body = api.get("/api/v1/models/churn/versions/1").json()
    assert body["scan_status"] == "quarantined" and "posix.system" in body["scan_detail"]
    listed = api.get("/api/v1/models/churn/versions").json()
    rows = listed["results"] if isinstance(listed, dict) and "results" in listed else listed
    rows = rows.get("versions", rows) if isinstance(rows, dict) else rows
    assert [r["scan_status"] for r in rows] == ["quarantined"]


def test_mlflow_artifact_routes_list_but_never_serve(client, api_client_for, owner, evil_version, registered_model):
    api = api_client_for(owner)
    root = tracking_artifacts.version_artifact_uri(evil_version).split(":", 1)[1].lstrip("/")
    listing = api.get("/api/2.0/mlflow-artifacts/artifacts", {"path": root})
    assert listing.status_code == 200
    assert {f["path"] for f in listing.json()["files"]} == {"model.pkl", "notes.txt"}
    response = api.get(f"/api/2.0/mlflow-artifacts/artifacts/{root}/model.pkl")
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED" and "Quarantined" in body["message"]
    assert "posix.system" in body["message"]
    assert api.get(f"/api/2.0/mlflow-artifacts/artifacts/{root}/notes.txt").status_code == 200


def test_get_download_uri_refuses_a_quarantined_version(api_client_for, owner, evil_version):
    api = api_client_for(owner)
    response = api.get("/api/2.0/mlflow/model-versions/get-download-uri", {"name": "churn", "version": "1"})
    assert response.status_code == 403, response.content
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert "posix.system" in response.json()["message"]


def test_run_files_with_quarantined_content_are_withheld_too(api_client_for, owner, evil_version):
    """The same bytes logged to a run are the same content: the run's route refuses them as well."""
    from registry.tracking.experiments import experiment_create
    from registry.tracking.runs import run_create
    from tests.conftest import spooled

    run = run_create(actor=owner, experiment=experiment_create(actor=owner, name="exp"))
    root = tracking_artifacts.run_artifact_uri(run).split(":", 1)[1].lstrip("/")
    for path, data in (("model/model.pkl", EVIL), ("model/MLmodel", b"flavors: {}\n")):
        target = tracking_artifacts.artifact_root_resolve(actor=owner, path=f"{root}/{path}")
        tracking_artifacts.artifact_put(actor=owner, root=target, upload=spooled(data))
    api = api_client_for(owner)
    response = api.get(f"/api/2.0/mlflow-artifacts/artifacts/{root}/model/model.pkl")
    assert response.status_code == 403 and "Quarantined" in response.json()["message"]
    assert api.get(f"/api/2.0/mlflow-artifacts/artifacts/{root}/model/MLmodel").status_code == 200


def test_mlflow_status_is_failed_registration_naming_the_globals(api_client_for, owner, evil_version,
                                                                 registered_model, make_version):
    api = api_client_for(owner)
    got = api.get("/api/2.0/mlflow/model-versions/get", {"name": "churn", "version": "1"}).json()["model_version"]
    assert got["status"] == "FAILED_REGISTRATION"
    assert "posix.system" in got["status_message"] and "model.pkl" in got["status_message"]
    pending = make_version(registered_model, files={"model.pkl": pickle.dumps({"w": [1.0]})})
    got = api.get("/api/2.0/mlflow/model-versions/get",
                  {"name": "churn", "version": str(pending.number)}).json()["model_version"]
    assert got["status"] == "PENDING_REGISTRATION" and "model.pkl" in got["status_message"]
    found = api.get("/api/2.0/mlflow/model-versions/search", {"filter": "name='churn'"}).json()["model_versions"]
    assert {v["version"]: v["status"] for v in found} == {"1": "FAILED_REGISTRATION", "2": "PENDING_REGISTRATION"}
    model = api.get("/api/2.0/mlflow/registered-models/get", {"name": "churn"}).json()["registered_model"]
    assert {v["version"]: v["status"] for v in model["latest_versions"]} == {"2": "PENDING_REGISTRATION"}
    _scan(pending)
    got = api.get("/api/2.0/mlflow/model-versions/get",
                  {"name": "churn", "version": str(pending.number)}).json()["model_version"]
    assert got["status"] == "READY" and "status_message" not in got


def test_conversion_and_signing_refuse(api_client_for, owner, evil_version):
    api = api_client_for(owner)
    error = _error(api.post("/api/v1/models/churn/versions/1/conversions", {"path": "model.pkl"}, format="json"),
                   409, "QUARANTINED")
    assert "posix.system" in error["message"]
    error = _error(api.post("/api/v1/models/churn/versions/1/signature", {}, format="json"), 409, "QUARANTINED")
    assert "posix.system" in error["message"]
    assert not evil_version.signatures.exists()


# ------------------------------------------------------------------------------------------ the release


def _request(api, **overrides):
    body = {"version": 1, "path": "model.pkl", "accepted_globals": ["posix.system"],
            "reason": "Reviewed: a test fixture, never loaded in production."}
    body.update(overrides)
    return api.post("/api/v1/models/churn/releases", body, format="json")


def test_four_eyes_release_serves_the_file_and_revoke_quarantines_it_again(api_client_for, evil_version, people,
                                                                          captured_events):
    from governance.models import AuditEvent

    maint, admin, admin2, contrib = (api_client_for(people[k]) for k in ("maintainer", "admin", "admin2",
                                                                          "contributor"))
    # Only maintainers ask, and only for exactly the globals the scan named, with a reason.
    _error(_request(contrib), 403, "PERMISSION_DENIED")
    error = _error(_request(maint, accepted_globals=["builtins.eval"]), 400, "INVALID_PARAMETER_VALUE")
    assert "posix.system" in error["message"]
    _error(_request(maint, accepted_globals=[]), 400, "INVALID_PARAMETER_VALUE")
    _error(_request(maint, reason="   "), 400, "INVALID_PARAMETER_VALUE")
    _error(_request(maint, path="notes.txt"), 409, "INVALID_STATE")
    response = _request(maint)
    assert response.status_code == 201, response.content
    release = response.json()
    assert release["state"] == "requested" and release["accepted_globals"] == ["posix.system"]
    assert release["sha256"] == evil_version.artifacts.get(path="model.pkl").blob_id
    _error(_request(maint), 409, "RESOURCE_ALREADY_EXISTS")  # one open release per content
    # Still withheld while only requested.
    _error(maint.get(FILE), 409, "QUARANTINED")
    # Neither the maintainer nor a contributor may approve; an administrator who asked may not approve their own.
    approve = f"/api/v1/models/churn/releases/{release['id']}/approve"
    _error(maint.post(approve), 403, "PERMISSION_DENIED")
    _error(contrib.post(approve), 403, "PERMISSION_DENIED")
    # An administrator approves: the bytes are served again, everywhere, and the version says released.
    approved = admin.post(approve)
    assert approved.status_code == 200, approved.content
    assert approved.json()["state"] == "approved" and approved.json()["approved_by"] == "admin"
    response = maint.get(FILE)
    assert response.status_code == 200 and b"".join(response.streaming_content) == EVIL
    assert maint.get("/api/v1/models/churn/versions/1").json()["scan_status"] == "released"
    got = maint.get("/api/2.0/mlflow/model-versions/get", {"name": "churn", "version": "1"}).json()
    assert got["model_version"]["status"] == "READY"
    _error(admin2.post(approve), 409, "INVALID_STATE")  # approved once
    # Revoke: quarantined again at once.
    revoke = f"/api/v1/models/churn/releases/{release['id']}/revoke"
    _error(contrib.post(revoke, {"reason": "no"}, format="json"), 403, "PERMISSION_DENIED")
    _error(maint.post(revoke, {}, format="json"), 400, "INVALID_PARAMETER_VALUE")
    revoked = maint.post(revoke, {"reason": "The model came from an untrusted notebook."}, format="json")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    _error(maint.get(FILE), 409, "QUARANTINED")
    assert maint.get("/api/v1/models/churn/versions/1").json()["scan_status"] == "quarantined"
    # Every step is in the audit trail, with who did it.
    actions = [(e.action, e.actor.username) for e in captured_events if e.action.startswith("artifact_release.")]
    assert actions == [("artifact_release.requested", "maint"), ("artifact_release.approved", "admin"),
                       ("artifact_release.revoked", "maint")]
    audited = list(AuditEvent.objects.filter(action__startswith="artifact_release.").order_by("seq")
                   .values_list("action", "actor_username", "model_name"))
    assert audited == [("artifact_release.requested", "maint", "churn"),
                       ("artifact_release.approved", "admin", "churn"),
                       ("artifact_release.revoked", "maint", "churn")]
    listed = maint.get("/api/v1/models/churn/releases").json()["releases"]
    assert [r["state"] for r in listed] == ["revoked"]


def test_the_requester_never_approves_their_own_release(api_client_for, evil_version, people):
    from registry.errors import Forbidden
    from registry.pipeline.scan.release import release_approve

    admin, admin2 = api_client_for(people["admin"]), api_client_for(people["admin2"])
    release = _request(admin).json()  # an administrator is a maintainer too, and may ask
    _error(admin.post(f"/api/v1/models/churn/releases/{release['id']}/approve"), 403, "PERMISSION_DENIED")
    with pytest.raises(Forbidden):
        release_approve(release=ArtifactRelease.objects.get(pk=release["id"]), actor=people["admin"])
    assert admin2.post(f"/api/v1/models/churn/releases/{release['id']}/approve").status_code == 200
    # The database refuses a row that breaks the rule, whatever wrote it.
    from django.db import IntegrityError, transaction

    row = ArtifactRelease.objects.get(pk=release["id"])
    with pytest.raises(IntegrityError), transaction.atomic():
        ArtifactRelease.objects.filter(pk=row.pk).update(approved_by=row.requested_by)


def test_a_release_covers_only_the_globals_it_accepted(api_client_for, evil_version, people):
    """A rescan that finds more than was accepted quarantines the content again."""
    from registry.models import ArtifactScan

    release = _request(api_client_for(people["maintainer"])).json()
    api_client_for(people["admin"]).post(f"/api/v1/models/churn/releases/{release['id']}/approve")
    artifact = evil_version.artifacts.get(path="model.pkl")
    assert artifact_trust(artifact).state == TrustState.RELEASED
    ArtifactScan.objects.filter(artifact=artifact).update(offending=["posix.system", "builtins.eval"])
    assert artifact_trust(artifact).state == TrustState.QUARANTINED


def test_a_release_is_per_model(api_client_for, evil_version, people, make_user, make_version):
    """Releasing content in one model releases nothing in another model holding the same bytes."""
    from registry import services

    other_owner = make_user("other")
    other = services.model_create(actor=other_owner, name="other")
    copy = make_version(other, files={"model.pkl": EVIL})
    _scan(copy)
    release = _request(api_client_for(people["maintainer"])).json()
    api_client_for(people["admin"]).post(f"/api/v1/models/churn/releases/{release['id']}/approve")
    assert api_client_for(people["maintainer"]).get(FILE).status_code == 200
    _error(api_client_for(other_owner).get("/api/v1/models/other/versions/1/artifacts/model.pkl"), 409,
           "QUARANTINED")


def test_outsiders_see_no_releases(api_client_for, evil_version, outsider, people):
    _error(api_client_for(outsider).get("/api/v1/models/churn/releases"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(_request(api_client_for(outsider)), 404, "RESOURCE_DOES_NOT_EXIST")


# ------------------------------------------------------------------------------------------ pages


def test_version_and_model_pages_show_the_red_banner_and_no_download(client, owner, evil_version):
    client.force_login(owner)
    assert "quarantine-banner" in client.get("/models/churn/versions/1/").content.decode()  # on every tab
    page = client.get("/models/churn/versions/1/artifacts/").content.decode()
    assert "quarantine-banner" in page and "posix.system" in page
    assert 'href="/api/v1/models/churn/versions/1/artifacts/model.pkl"' not in page
    assert "artifacts/notes.txt" in page  # the harmless file keeps its button
    assert ">Ready<" not in page and "Quarantined" in page
    model_page = client.get("/models/churn/").content.decode()
    assert "quarantine-banner" in model_page and "Version 1" in model_page


def test_release_through_the_pages(client, evil_version, people):
    client.force_login(people["maintainer"])
    response = client.post("/models/churn/versions/1/releases/", {
        "path": "model.pkl", "accepted_globals": ["posix.system"], "reason": "Reviewed by hand."})
    assert response.status_code == 302 and response["Location"] == "/models/churn/versions/1/artifacts/#releases"
    release = ArtifactRelease.objects.get()
    page = client.get("/models/churn/versions/1/artifacts/").content.decode()
    assert "Reviewed by hand." in page and "Approve release" not in page  # the maintainer cannot approve
    client.force_login(people["admin"])
    assert "Approve release" in client.get("/models/churn/versions/1/artifacts/").content.decode()
    client.post(f"/models/churn/releases/{release.pk}/approve/")
    release.refresh_from_db()
    assert release.state == "approved"
    page = client.get("/models/churn/versions/1/artifacts/").content.decode()
    assert "quarantine-banner" not in page and "artifacts/model.pkl" in page
    # A bad request reads as a message, never a 500.
    response = client.post(f"/models/churn/releases/{release.pk}/revoke/", {"reason": ""}, follow=True)
    assert response.status_code == 200 and "Give a reason" in response.content.decode()
