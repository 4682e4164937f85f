"""Durable jobs and automatic scans: queued after commit, idempotent, swept when lost; shown on page and API."""

from __future__ import annotations

import pickle
from datetime import timedelta

import pytest
from django.utils import timezone

from registry import services, tasks
from registry.models import ArtifactScan, Job, JobKind, JobState
from registry.pipeline import jobs
from registry.pipeline.scan.analysis import SCANNER
from registry.pipeline.selectors import version_scan_status
from tests.conftest import spooled
from tests.registry.pickle_corpus import MALICIOUS, benign_models, joblib_bytes

pytestmark = pytest.mark.django_db

EVIL = MALICIOUS["os.system"][0]


@pytest.fixture
def clean_model_bytes():
    return pickle.dumps(benign_models()["ridge"])


def upload(make_version, model, files, hooks):
    with hooks(execute=True):
        return make_version(model, files=files)


def test_upload_queues_scans_after_commit_and_records_verdicts(registered_model, make_version,
                                                                django_capture_on_commit_callbacks,
                                                                clean_model_bytes):
    version = upload(make_version, registered_model, {"model.pkl": clean_model_bytes, "evil.txt": EVIL,
                                                      "model.joblib": joblib_bytes(benign_models()["knn"]),
                                                      "README.md": b"# churn\n"}, django_capture_on_commit_callbacks)
    job_rows = Job.objects.filter(version=version)
    assert job_rows.count() == 4
    assert set(job_rows.values_list("state", flat=True)) == {JobState.SUCCEEDED}
    assert set(job_rows.values_list("attempts", flat=True)) == {1}
    status = version_scan_status(version=version)
    verdicts = {row["path"]: row["verdict"] for row in status["artifacts"]}
    assert verdicts == {"README.md": "not_pickle", "evil.txt": "unsafe", "model.joblib": "safe", "model.pkl": "safe"}
    assert status["status"] == "quarantined" and "evil.txt" in status["detail"]
    evil = next(r for r in status["artifacts"] if r["path"] == "evil.txt")
    assert evil["offending"] == ["posix.system"] and evil["scanner"] and evil["duration_ms"] is not None
    from governance.models import AuditEvent

    scanned = AuditEvent.objects.filter(action="model_version.artifact_scanned")
    assert scanned.count() == 4
    assert scanned.get(data__path="evil.txt").data["quarantined"] is True


def test_without_commit_nothing_is_queued(registered_model, make_version):
    make_version(registered_model, files={"model.pkl": EVIL})
    assert Job.objects.count() == 0  # the scan is queued only once the upload is committed


def test_mlflow_model_directory_and_artifact_add(registered_model, make_version, owner,
                                                 django_capture_on_commit_callbacks, clean_model_bytes):
    version = upload(make_version, registered_model, {
        "model/MLmodel": b"flavors:\n  sklearn:\n    pickled_model: model.pkl\n",
        "model/model.pkl": clean_model_bytes}, django_capture_on_commit_callbacks)
    assert version_scan_status(version=version)["status"] == "clean"
    with django_capture_on_commit_callbacks(execute=True):
        services.artifact_add(version=version, actor=owner, path="model/model.pkl", upload=spooled(EVIL))
    status = version_scan_status(version=version)
    assert status["status"] == "quarantined"
    assert ArtifactScan.objects.filter(artifact__version=version, artifact__path="model/model.pkl").count() == 2


def test_job_runs_once_and_a_second_delivery_does_nothing(registered_model, make_version,
                                                         django_capture_on_commit_callbacks):
    version = upload(make_version, registered_model, {"m.pkl": EVIL}, django_capture_on_commit_callbacks)
    job = Job.objects.get(version=version)
    assert jobs.job_run(job.pk) is None  # redelivered message: already succeeded
    tasks.job_execute.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.attempts == 1 and ArtifactScan.objects.count() == 1


def test_broker_down_leaves_jobs_queued_and_the_sweeper_sends_them(registered_model, make_version, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    def broker_down(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.job_execute, "apply_async", broker_down)
    version = upload(make_version, registered_model, {"m.pkl": EVIL}, django_capture_on_commit_callbacks)
    job = Job.objects.get(version=version)
    assert job.state == JobState.QUEUED and job.dispatched_at is None
    assert jobs.jobs_sweep() == 1  # still down: nothing lost, still queued
    assert Job.objects.get(pk=job.pk).state == JobState.QUEUED
    monkeypatch.undo()
    assert tasks.jobs_sweep.apply().get() == 1
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.attempts == 1
    assert jobs.jobs_sweep() == 0


def test_a_job_whose_worker_died_is_taken_over_only_once_stale(registered_model, make_version, settings,
                                                              django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(tasks.job_execute, "apply_async", lambda *a, **k: None)
    version = upload(make_version, registered_model, {"m.pkl": EVIL}, django_capture_on_commit_callbacks)
    job = Job.objects.get(version=version)
    # A worker claimed it, then was killed -9 before finishing.
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, attempts=1, heartbeat_at=timezone.now())
    assert jobs.job_run(job.pk) is None  # a live worker holds it: the duplicate delivery backs off
    assert jobs.jobs_sweep() == 0
    stale = timezone.now() - timedelta(seconds=settings.STRATUM_JOB_STALE_SECONDS + 1)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=stale)
    assert jobs.jobs_sweep() == 1
    done = jobs.job_run(job.pk)
    assert done.state == JobState.SUCCEEDED and done.attempts == 2
    assert ArtifactScan.objects.filter(artifact__version=version).count() == 1


def test_a_job_that_keeps_killing_workers_fails_after_max_attempts(registered_model, make_version, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    monkeypatch.setattr(tasks.job_execute, "apply_async", lambda *a, **k: None)
    version = upload(make_version, registered_model, {"m.pkl": EVIL}, django_capture_on_commit_callbacks)
    job = Job.objects.get(version=version)
    Job.objects.filter(pk=job.pk).update(state=JobState.RUNNING, attempts=3,
                                         heartbeat_at=timezone.now() - timedelta(days=1))
    assert jobs.job_run(job.pk) is None
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "3 attempts" in job.error


def test_api_reports_scans_and_jobs_and_queues_a_rescan(registered_model, make_version, api_client_for, owner,
                                                        outsider, django_capture_on_commit_callbacks):
    upload(make_version, registered_model, {"m.pkl": EVIL}, django_capture_on_commit_callbacks)
    client = api_client_for(owner)
    body = client.get("/api/v1/models/churn/versions/1/scans").json()
    assert body["status"] == "quarantined"
    assert body["artifacts"][0]["offending"] == ["posix.system"]
    assert body["artifacts"][0]["scanner"] == SCANNER
    jobs_body = client.get("/api/v1/models/churn/versions/1/jobs").json()
    assert jobs_body["jobs"][0]["kind"] == "scan" and jobs_body["jobs"][0]["state"] == "succeeded"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/models/churn/versions/1/scans")
    assert response.status_code == 202
    assert response.json()["jobs"][0]["target"] == "m.pkl"
    assert Job.objects.get().attempts == 1 and ArtifactScan.objects.count() == 1
    assert api_client_for(outsider).post("/api/v1/models/churn/versions/1/scans").status_code == 404
    assert api_client_for(outsider).get("/api/v1/models/churn/versions/1/jobs").status_code == 404


def test_version_page_panel_shows_verdicts_and_polls_while_jobs_run(client, owner, registered_model, make_version,
                                                                   django_capture_on_commit_callbacks, monkeypatch):
    client.force_login(owner)
    monkeypatch.setattr(tasks.job_execute, "apply_async", lambda *a, **k: None)
    upload(make_version, registered_model, {"m.pkl": EVIL}, django_capture_on_commit_callbacks)
    html = client.get("/models/churn/versions/1/").content.decode()
    assert 'hx-get="/models/churn/versions/1/pipeline/"' in html
    panel = client.get("/models/churn/versions/1/pipeline/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 2s"' in panel and "Queued" in panel and "Pending" in panel
    jobs.job_run(Job.objects.get().pk)
    panel = client.get("/models/churn/versions/1/pipeline/", HTTP_HX_REQUEST="true").content.decode()
    assert "every 2s" not in panel
    assert "Quarantined" in panel and "posix.system" in panel and "Succeeded" in panel
    full = client.get("/models/churn/versions/1/pipeline/")
    assert full.status_code == 200 and "<html" in full.content.decode().lower()


def test_rescan_button_needs_contributor(client, owner, outsider, grant, registered_model, make_version,
                                        django_capture_on_commit_callbacks):
    from registry.models import Role

    upload(make_version, registered_model, {"m.pkl": EVIL}, django_capture_on_commit_callbacks)
    grant(registered_model, outsider, Role.VIEWER)
    client.force_login(outsider)
    panel = client.get("/models/churn/versions/1/pipeline/", HTTP_HX_REQUEST="true").content.decode()
    assert "Rescan files" not in panel
    response = client.post("/models/churn/versions/1/pipeline/", follow=True)
    assert "permission" in response.content.decode()
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/models/churn/versions/1/pipeline/", follow=True)
    assert "Queued 1 scan job" in response.content.decode()


def test_only_registered_job_kinds_are_queued_and_each_shows_its_label(registered_model):
    with pytest.raises(ValueError, match="no app registered"):
        jobs.job_enqueue(kind="nonsense", key="nonsense:1")
    assert not Job.objects.exists()
    with pytest.raises(ValueError, match="1 to 16 characters"):
        jobs.register_handler("a_kind_longer_than_its_column", lambda job: {})
    jobs.register_handler("test_kind", lambda job: {"ran": job.pk}, label="Test work")
    job = jobs.job_enqueue(kind="test_kind", key="test_kind:1")
    assert job.get_kind_display() == "Test work" and str(job).startswith("Test work #")
    assert jobs.job_run(job.pk).result == {"ran": job.pk}
    # The registry's own kinds keep their labels; a stored kind no app registers any more shows its value.
    assert Job(kind="scan").get_kind_display() == "Scan artifact"
    assert Job(kind="retired").get_kind_display() == "retired"


def test_a_conversion_run_before_its_scan_waits_and_runs_once_the_scan_ends(registered_model, make_version, owner,
                                                                          monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    from registry.models import Artifact
    from registry.pipeline.convert import convert_enqueue

    # The broker is down while both are queued: the rows are all there is, and the convert message arrives first.
    monkeypatch.setattr(tasks.job_execute, "apply_async", lambda *a, **k: None)
    version = upload(make_version, registered_model, {"m.pkl": pickle.dumps(benign_models()["logreg"])},
                     django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        convert = convert_enqueue(artifact=Artifact.objects.get(version=version), actor=owner)
    scan = Job.objects.get(kind="scan")
    waited = jobs.job_run(convert.pk)
    assert waited.state == JobState.QUEUED and waited.attempts == 0  # waiting spends no attempt
    assert waited.error.startswith("Waiting: the scan of m.pkl has not finished")
    monkeypatch.undo()  # the broker is back: finishing the scan sends the conversion waiting on it
    assert jobs.job_run(scan.pk).state == JobState.SUCCEEDED
    convert.refresh_from_db()
    assert convert.state == JobState.SUCCEEDED and convert.attempts == 1, convert.error
    assert Artifact.objects.filter(version=version, path="m.onnx").exists()


def test_a_conversion_whose_scan_gave_up_fails_with_the_reason(registered_model, make_version, owner, monkeypatch,
                                                               django_capture_on_commit_callbacks):
    from registry.models import Artifact
    from registry.pipeline.convert import convert_enqueue

    monkeypatch.setattr(tasks.job_execute, "apply_async", lambda *a, **k: None)
    version = upload(make_version, registered_model, {"m.pkl": pickle.dumps(benign_models()["logreg"])},
                     django_capture_on_commit_callbacks)
    scan = Job.objects.get(kind="scan")
    Job.objects.filter(pk=scan.pk).update(state=JobState.RUNNING, attempts=3,
                                          heartbeat_at=timezone.now() - timedelta(days=1))
    assert jobs.job_run(scan.pk) is None  # it killed its workers three times: given up
    convert = convert_enqueue(artifact=Artifact.objects.get(version=version), actor=owner)
    convert = jobs.job_run(convert.pk)
    assert convert.state == JobState.FAILED
    assert "the scan of m.pkl failed (Gave up after 3 attempts" in convert.error


def test_a_failed_dispatch_pauses_dispatching_so_requests_do_not_wait_on_the_broker(registered_model, settings,
                                                                                   monkeypatch):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # as with REDIS_URL set
    settings.STRATUM_JOB_DISPATCH_PAUSE_SECONDS = 60
    calls = []

    def broker_down(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.job_execute, "apply_async", broker_down)
    monkeypatch.setattr(jobs, "_dispatch_pause", jobs._DispatchPause())  # a fresh process
    first = jobs.job_enqueue(kind=JobKind.SCAN, key="scan:pause:1")
    assert not jobs.job_dispatch(first.pk) and len(calls) == 1
    assert not jobs.job_dispatch(first.pk) and len(calls) == 1  # paused: not even tried
    assert jobs.jobs_sweep() == 1 and len(calls) == 1
    assert Job.objects.get(pk=first.pk).dispatched_at is None  # the row waits for the sweeper


@pytest.mark.django_db(transaction=True)
def test_a_running_job_keeps_its_heartbeat_fresh(settings):
    import time

    settings.STRATUM_JOB_STALE_SECONDS = 1.2  # a beat every 0.2 s
    beats = []

    def slow(job):
        for _ in range(8):
            time.sleep(0.2)
            beats.append(Job.objects.get(pk=job.pk).heartbeat_at)
        return {}

    jobs.register_handler("test_slow", slow, label="Slow work")
    job = jobs.job_enqueue(kind="test_slow", key="test_slow:1")
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED  # ran eagerly after its commit
    assert len(set(beats)) >= 4  # the handler never reported progress: the heartbeat thread did
    assert jobs.jobs_sweep() == 0
