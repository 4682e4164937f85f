"""Registry pages: what a person sees, what they may do, and that nothing they type yields a 500."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from registry import access, charts, services
from registry.models import AccessToken, Alias, Artifact, ModelVersion, RegisteredModel, Role, Stage

pytestmark = pytest.mark.django_db

PICKLE = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."


@pytest.fixture
def client_for():
    """client_for(user) -> a Django test client signed in as `user`."""

    def _client(user, **kwargs):
        client = Client(**kwargs)
        client.force_login(user)
        return client

    return _client


@pytest.fixture
def owner_client(client_for, owner):
    return client_for(owner)


def text_of(response) -> str:
    """Return the response body as text."""
    return response.content.decode()


# ------------------------------------------------------------------------------------------- access


@pytest.mark.parametrize(
    "url", ["/", "/models/new/", "/models/churn/", "/models/churn/versions/1/", "/models/churn/versions/new/",
            "/tokens/"],
)
def test_anonymous_visitor_is_sent_to_login(client, registered_model, make_version, url):
    make_version(registered_model)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_login_page_signs_in_and_lands_on_models(client, owner):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    body = text_of(page)
    assert "Sign in to Stratum" in body and 'name="username"' in body and "csrfmiddlewaretoken" in body
    response = client.post("/accounts/login/", {"username": "owner", "password": "pw-correct-horse-42"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "Registered models" in text_of(client.get("/"))


def test_login_page_shows_a_readable_error_for_a_wrong_password(client, owner):
    response = client.post("/accounts/login/", {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in text_of(response)


def test_navigation_bar_links_models_api_docs_tokens_and_logout(owner_client):
    body = text_of(owner_client.get("/"))
    assert 'href="/"' in body and 'href="/api/v1/docs/"' in body and 'href="/tokens/"' in body
    assert 'action="/accounts/logout/"' in body and "owner" in body


def test_unknown_address_gets_the_error_page(owner_client):
    response = owner_client.get("/models/churn/nothing/here/")
    assert response.status_code == 404
    assert "Not found" in text_of(response)


# --------------------------------------------------------------------------------------- model list


def test_model_list_shows_what_a_person_needs(owner_client, owner, registered_model, make_version):
    services.model_tag_set(model=registered_model, actor=owner, key="team", value="ml")
    make_version(registered_model)
    v2 = make_version(registered_model)
    services.alias_set(model=registered_model, alias="champion", version=v2, actor=owner)
    old = services.model_create(actor=owner, name="legacy", description="The old one.")
    services.model_deprecate(model=old, actor=owner, reason="Replaced.", successor=registered_model)

    response = owner_client.get("/")
    body = text_of(response)
    assert response.status_code == 200
    assert 'href="/models/churn/"' in body and "Predicts churn." in body  # excerpt is plain text
    assert "<strong>churn</strong>" not in body
    assert 'href="/models/churn/versions/2/">v2</a>' in body
    assert "@champion → v2" in body
    assert '<span class="tag-key">team</span>=ml' in body
    assert "Deprecated" in body and "legacy" in body
    assert "2 models" in body


def test_model_list_empty_state(owner_client):
    body = text_of(owner_client.get("/"))
    assert "No models yet" in body and 'href="/models/new/"' in body


def test_model_list_only_shows_visible_models(client_for, outsider, registered_model):
    body = text_of(client_for(outsider).get("/"))
    assert 'href="/models/churn/"' not in body and "No models yet" in body


def test_search_with_the_filter_language(owner_client, owner, registered_model, make_version):
    other = services.model_create(actor=owner, name="fraud", tags={"team": "risk"})
    services.model_tag_set(model=registered_model, actor=owner, key="team", value="ml")
    make_version(registered_model, metrics={"auc": 0.95})
    make_version(other, metrics={"auc": 0.7})

    def names(query):
        response = owner_client.get("/", query)
        assert response.status_code == 200, text_of(response)
        return set(re.findall(r'class="model-name" href="/models/([^/]+)/"', text_of(response)))

    assert names({"filter": "name LIKE 'chu%'"}) == {"churn"}
    assert names({"filter": "tags.team = 'risk'"}) == {"fraud"}
    assert names({"filter": "metrics.auc > 0.9"}) == {"churn"}
    assert names({"tag": "team=ml"}) == {"churn"}
    assert names({"filter": "name = 'nothing'"}) == set()
    assert "No models match" in text_of(owner_client.get("/", {"filter": "name = 'nothing'"}))


def test_stage_filter(owner_client, owner, registered_model, make_version):
    services.model_create(actor=owner, name="fraud")
    version = make_version(registered_model)
    services.version_transition_stage(version=version, actor=owner, stage="Production")
    body = text_of(owner_client.get("/", {"stage": "Production"}))
    assert 'href="/models/churn/"' in body and 'href="/models/fraud/"' not in body


@pytest.mark.parametrize("query, message", [
    ({"filter": "name LIKE"}, "That filter did not work."),
    ({"filter": "colour = 'red'"}, "Unknown field"),
    ({"filter": "name = 'x' AND (("}, "That filter did not work."),
    ({"stage": "Limbo"}, "Select a valid choice"),
])
def test_bad_filter_is_a_readable_400_on_the_page(owner_client, registered_model, query, message):
    response = owner_client.get("/", query)
    body = text_of(response)
    assert response.status_code == 400
    assert message in body
    assert "Registered models" in body and 'name="q"' in body  # the page itself still renders


def test_htmx_search_gets_only_the_results_partial(owner_client, registered_model):
    response = owner_client.get("/", {"filter": "name = 'churn'"}, HTTP_HX_REQUEST="true")
    body = text_of(response)
    assert response.status_code == 200
    assert "<html" not in body and 'href="/models/churn/"' in body
    assert "HX-Request" in response["Vary"]
    bad = owner_client.get("/", {"filter": "name ~ 1"}, HTTP_HX_REQUEST="true")
    assert bad.status_code == 400 and "<html" not in text_of(bad) and "That filter did not work." in text_of(bad)


def test_full_page_wires_htmx_search(owner_client):
    body = text_of(owner_client.get("/"))
    assert 'hx-get="/"' in body and 'hx-target="#model-results"' in body
    assert "django_htmx/htmx-2.min.js" in body
    assert "cdn" not in body.lower()


def test_pagination_25_per_page(owner_client, owner):
    for i in range(30):
        services.model_create(actor=owner, name=f"model-{i:02d}")
    first = text_of(owner_client.get("/"))
    second = text_of(owner_client.get("/", {"page": 2}))
    assert first.count('class="model-row"') == 25 and "Page 1 of 2" in first and "?page=2" in first
    assert second.count('class="model-row"') == 5 and "model-29" in second


def _populate(owner, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        model = services.model_create(actor=owner, name=f"m{i:03d}", tags={"team": "ml", "tier": str(i)})
        version = services.version_create(model=model, actor=owner, metrics={"auc": 0.5})
        services.alias_set(model=model, alias="champion", version=version, actor=owner)


def test_model_list_query_count_does_not_grow_with_models(client_for, make_user, grant):
    viewer = make_user("viewer")
    creator = make_user("creator")
    client = client_for(viewer)

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/")
        assert response.status_code == 200
        return len(ctx.captured_queries)

    _populate(creator, 3)
    for model in RegisteredModel.objects.all():
        grant(model, viewer, Role.VIEWER)
    few = count_queries()
    _populate(creator, 27, start=3)
    for model in RegisteredModel.objects.exclude(roles__user=viewer):
        grant(model, viewer, Role.VIEWER)
    many = count_queries()
    assert few == many, f"{few} queries for 3 models but {many} for 30"


def test_model_page_query_count_does_not_grow_with_versions(owner_client, owner, registered_model, make_version):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert owner_client.get("/models/churn/").status_code == 200
        return len(ctx.captured_queries)

    def add_versions(count: int) -> None:
        for i in range(count):
            version = make_version(registered_model, metrics={"auc": 0.5 + i / 100}, tags={"k": "v"},
                                   datasets=[{"name": "d"}])
            services.alias_set(model=registered_model, alias=f"a{version.number}", version=version, actor=owner)

    add_versions(2)
    few = count_queries()
    add_versions(10)
    assert count_queries() == few


# ------------------------------------------------------------------------------------ model detail


def test_model_page_shows_description_versions_aliases_and_tags(owner_client, owner, registered_model, make_version):
    services.model_tag_set(model=registered_model, actor=owner, key="team", value="ml")
    v1 = make_version(registered_model, semver="1.0.0")
    make_version(registered_model, semver="1.1.0")
    services.alias_set(model=registered_model, alias="champion", version=v1, actor=owner)
    services.version_transition_stage(version=v1, actor=owner, stage="Production")

    response = owner_client.get("/models/churn/")
    body = text_of(response)
    assert response.status_code == 200
    assert "<strong>churn</strong>" in body  # Markdown rendered
    assert 'href="/models/churn/versions/1/">Version 1</a>' in body and "1.1.0" in body
    assert 'class="badge badge-stage-production"' in body and 'class="badge badge-stage-none"' in body
    assert "@champion" in body and "<dt>team</dt><dd>ml</dd>" in body
    assert 'href="/">Models</a>' in body  # breadcrumbs


def test_model_page_charts_each_metric_with_local_plotly(owner_client, registered_model, make_version):
    make_version(registered_model, metrics={"auc": 0.8, "loss": 0.4})
    make_version(registered_model, metrics={"auc": 0.85})
    body = text_of(owner_client.get("/models/churn/"))
    assert body.count("data-plotly-chart") == 2
    assert body.count("vendor/plotly.min.js") == 1 and "js/charts.js" in body
    assert '"x": [1, 2]' in body and '"y": [0.8, 0.85]' in body


def test_model_page_without_metrics_has_an_empty_state_and_no_plotly(owner_client, registered_model):
    body = text_of(owner_client.get("/models/churn/"))
    assert "No versions yet." in body and "No metrics recorded yet." in body
    assert "plotly.min.js" not in body


def test_deprecation_banner_links_the_successor(owner_client, owner, registered_model):
    successor = services.model_create(actor=owner, name="churn-next")
    services.model_deprecate(model=registered_model, actor=owner, reason="Superseded by the v2 pipeline.",
                             successor=successor)
    body = text_of(owner_client.get("/models/churn/"))
    assert "This model is deprecated." in body and "Superseded by the v2 pipeline." in body
    assert 'href="/models/churn-next/"' in body


def test_outsider_gets_404_on_model_and_version_pages(client_for, outsider, registered_model, make_version):
    make_version(registered_model)
    client = client_for(outsider)
    for url in ("/models/churn/", "/models/churn/versions/1/", "/models/churn/versions/new/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "churn" not in text_of(response) or "not found" in text_of(response).lower()
    assert client.post("/models/churn/aliases/", {"alias": "x", "version": 1}).status_code == 404


def test_missing_version_is_404(owner_client, registered_model):
    assert owner_client.get("/models/churn/versions/9/").status_code == 404
    assert owner_client.get("/models/ch%00urn/").status_code == 400  # no name holds NUL: the address is refused
    assert owner_client.get("/", {"filter": "name = 'a\x00'"}).status_code == 400


def test_viewer_sees_no_forms(client_for, make_user, grant, registered_model, make_version):
    make_version(registered_model)
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    client = client_for(viewer)
    model_page = text_of(client.get("/models/churn/"))
    assert "alias-form" not in model_page and "Set alias" not in model_page
    assert "/models/churn/versions/new/" not in model_page
    version_page = text_of(client.get("/models/churn/versions/1/"))
    assert "stage-form" not in version_page
    assert client.get("/models/churn/versions/new/").status_code == 403


def test_maintainer_sees_alias_and_stage_forms(client_for, make_user, grant, registered_model, make_version):
    make_version(registered_model)
    maintainer = make_user("maint")
    grant(registered_model, maintainer, Role.MAINTAINER)
    client = client_for(maintainer)
    assert "alias-form" in text_of(client.get("/models/churn/"))
    assert "stage-form" in text_of(client.get("/models/churn/versions/1/"))


def test_contributor_may_register_but_not_move_aliases(client_for, make_user, grant, registered_model):
    contributor = make_user("contrib")
    grant(registered_model, contributor, Role.CONTRIBUTOR)
    client = client_for(contributor)
    page = text_of(client.get("/models/churn/"))
    assert 'href="/models/churn/versions/new/"' in page and "alias-form" not in page


XSS = (
    "<script>alert('x')</script>\n\n[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n"
    '<a href="javascript:alert(2)">raw</a>'
)


def test_xss_in_descriptions_is_inert(owner_client, owner, make_version):
    model = services.model_create(actor=owner, name="evil", description=XSS)
    make_version(model, description=XSS)
    for url in ("/", "/models/evil/", "/models/evil/versions/1/"):
        body = text_of(owner_client.get(url))
        assert not re.search(r"<script[^>]*>\s*alert", body, re.IGNORECASE), url
        assert not re.search(r"<a\b[^>]*href=[\"']?\s*javascript:", body, re.IGNORECASE), url
        assert not re.search(r"<[a-z]+[^>]*\son\w+\s*=", body, re.IGNORECASE), url


def test_xss_in_names_and_tags_is_escaped(owner_client, owner):
    services.model_create(actor=owner, name="safe", tags={"<b>k</b>": "<script>alert(1)</script>"})
    body = text_of(owner_client.get("/models/safe/"))
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body


# ---------------------------------------------------------------------------------- version detail


def test_version_page_shows_provenance_signature_metrics_and_artifacts(owner_client, registered_model, make_version):
    pkl = PICKLE
    make_version(
        registered_model,
        files={"model/model.pkl": pkl, "model/MLmodel": b"flavors:\n  sklearn: {}\n", "README.md": b"# hi\n"},
        semver="2.0.0", source_uri="s3://bucket/run/42/model", run_id="run-42",
        code_repository="https://git.example.com/ml/churn", code_commit="a1b2c3d4e5f6a7b8c9d0" * 2,
        metrics={"auc": 0.912345, "f1": 0.8}, params={"max_depth": 6},
        signature={"inputs": [{"name": "tenure", "type": "double"}], "outputs": [{"name": "p", "type": "float"}]},
        environment=["scikit-learn==1.9.1", "numpy==2.4.6"],
        datasets=[{"name": "customers", "uri": "s3://data/customers.parquet", "digest": "sha256:abcdef0123456789ff",
                   "role": "train"}],
        tags={"reviewed": "yes"}, description="Trained on **Q3** data.",
    )
    response = owner_client.get("/models/churn/versions/1/")
    body = text_of(response)
    assert response.status_code == 200
    for expected in ("s3://bucket/run/42/model", "run-42", "https://git.example.com/ml/churn", "customers",
                     "s3://data/customers.parquet", "Training", "scikit-learn==1.9.1", "tenure", "double",
                     "0.912345", "max_depth", "<strong>Q3</strong>", "2.0.0", "reviewed"):
        assert expected in body, expected
    body = text_of(owner_client.get("/models/churn/versions/1/artifacts/"))  # the files are on the Artifacts tab
    digest = hashlib.sha256(pkl).hexdigest()
    assert f'<code title="{digest}">{digest[:12]}</code>' in body
    # The pickle has not been scanned yet: its bytes are withheld and the page says so instead of offering them.
    assert 'href="/api/v1/models/churn/versions/1/artifacts/model/model.pkl"' not in body
    assert "Awaiting its scan" in body
    assert 'href="/api/v1/models/churn/versions/1/artifacts/model/MLmodel"' in body
    from registry.pipeline import handlers  # noqa: F401 - installs the job handlers
    from registry.pipeline.jobs import job_run
    from registry.pipeline.scan.services import scan_enqueue

    job_run(scan_enqueue(Artifact.objects.get(path="model/model.pkl")).pk)
    body = text_of(owner_client.get("/models/churn/versions/1/artifacts/"))
    assert 'href="/api/v1/models/churn/versions/1/artifacts/model/model.pkl"' in body
    assert "model/</td>" in body  # the folder row of the tree
    assert "badge-format-pickle" in body and "badge-format-mlmodel" in body
    assert f"{len(pkl)}\xa0bytes" in body


def test_version_page_empty_states(owner_client, registered_model, make_version):
    make_version(registered_model)
    body = text_of(owner_client.get("/models/churn/versions/1/"))
    assert "No metrics." in body and "No input/output signature recorded." in body
    artifacts = text_of(owner_client.get("/models/churn/versions/1/artifacts/"))
    assert "No files were uploaded with this version." in artifacts


def test_download_link_encodes_odd_names(owner_client, owner, make_version):
    model = services.model_create(actor=owner, name="my model")
    make_version(model, files={"dir/a b#c.txt": b"x"})
    body = text_of(owner_client.get("/models/my%20model/versions/1/artifacts/"))
    assert 'href="/api/v1/models/my%20model/versions/1/artifacts/dir/a%20b%23c.txt"' in body


# ---------------------------------------------------------------------------------------- create model


def test_create_model_happy_path(owner_client):
    assert "Create model" in text_of(owner_client.get("/models/new/"))
    response = owner_client.post("/models/new/", {
        "name": "fraud", "description": "Flags *fraud*.", "tags": "team = risk\n\n# comment\ntier=1",
    })
    assert response.status_code == 302 and response["Location"] == "/models/fraud/"
    model = RegisteredModel.objects.get(name="fraud")
    assert model.owner.username == "owner"
    assert dict(model.tags.values_list("key", "value")) == {"team": "risk", "tier": "1"}
    assert "Created model fraud." in text_of(owner_client.get("/models/fraud/"))


def test_create_model_duplicate_name_is_a_readable_error(owner_client, registered_model):
    response = owner_client.post("/models/new/", {"name": "churn"})
    assert response.status_code == 409
    assert "Registered model &#x27;churn&#x27; already exists." in text_of(response)
    assert RegisteredModel.objects.count() == 1


@pytest.mark.parametrize("data, message", [
    ({"name": ""}, "This field is required."),
    ({"name": "bad/name"}, "Model name must be"),
    ({"name": "ok", "tags": "just-a-key"}, "is not of the form name=value"),
])
def test_create_model_invalid_input(owner_client, data, message):
    response = owner_client.post("/models/new/", data)
    assert response.status_code == 400 and message in text_of(response)
    assert not RegisteredModel.objects.exists()


# -------------------------------------------------------------------------------------- register version


def test_upload_form_stores_files_and_provenance(owner_client, registered_model):
    page = text_of(owner_client.get("/models/churn/versions/new/"))
    assert 'enctype="multipart/form-data"' in page and 'type="file"' in page and "multiple" in page
    response = owner_client.post("/models/churn/versions/new/", {
        "files": [SimpleUploadedFile("model.pkl", PICKLE), SimpleUploadedFile("requirements.txt", b"numpy\n")],
        "semver": "1.0.0", "description": "First.", "source_uri": "s3://b/m", "run_id": "r1",
        "metrics": "auc=0.91\nf1 = 0.8", "params": "max_depth=6", "code_repository": "https://g/x",
        "code_commit": "abc123", "environment": "numpy==2.4.6\n",
    })
    assert response.status_code == 302 and response["Location"] == "/models/churn/versions/1/"
    version = ModelVersion.objects.get(model=registered_model, number=1)
    assert version.metrics == {"auc": 0.91, "f1": 0.8} and version.params == {"max_depth": "6"}
    assert version.semver == "1.0.0" and version.environment == ["numpy==2.4.6"] and version.creator.username == "owner"
    artifact = Artifact.objects.get(version=version, path="model.pkl")
    assert artifact.blob_id == hashlib.sha256(PICKLE).hexdigest() and artifact.format == "pickle"
    assert Artifact.objects.filter(version=version).count() == 2
    assert "Registered version 1 of churn." in text_of(owner_client.get(response["Location"]))


@pytest.mark.parametrize("data, message", [
    ({"semver": "1.0"}, "is not a semantic version"),
    ({"metrics": "auc=high"}, "Metric &#x27;auc&#x27; must be a number"),
    ({"metrics": "auc"}, "is not of the form name=value"),
])
def test_upload_form_errors_are_readable_and_store_nothing(owner_client, registered_model, data, message):
    response = owner_client.post("/models/churn/versions/new/", {
        "files": [SimpleUploadedFile("model.pkl", PICKLE)], **data,
    })
    assert response.status_code == 400 and message in text_of(response)
    assert not ModelVersion.objects.exists() and not Artifact.objects.exists()


def test_upload_form_shows_every_field_error_at_once(owner_client, registered_model):
    response = owner_client.post("/models/churn/versions/new/", {
        "files": [SimpleUploadedFile("model.pkl", PICKLE)], "semver": "1.0", "metrics": "auc",
        "source_uri": "file:///etc/passwd", "code_commit": "x" * 65, "params": "depth=3",
    })
    body = text_of(response)
    assert response.status_code == 400
    # one from the form's parsing (metrics), the others from the service's checks, each beside its field
    for message in ("is not a semantic version", "is not of the form name=value", "at most 64 characters",
                    "file:///etc/passwd"):
        assert message in body, message
    assert body.count('class="field-error') >= 4 or body.count("errorlist") >= 4
    assert not ModelVersion.objects.exists() and not Artifact.objects.exists()


def test_duplicate_semver_is_a_readable_error(owner_client, registered_model, make_version):
    make_version(registered_model, semver="1.0.0")
    response = owner_client.post("/models/churn/versions/new/", {"semver": "1.0.0"})
    assert response.status_code == 409 and "already has a version 1.0.0" in text_of(response)


def test_upload_over_the_limit_is_a_readable_413(owner_client, registered_model, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    response = owner_client.post("/models/churn/versions/new/", {
        "files": [SimpleUploadedFile("big.bin", b"x" * 5000)],
    })
    assert response.status_code == 413 and "larger than the limit" in text_of(response)
    assert not ModelVersion.objects.exists()


def test_register_on_a_deprecated_model_is_refused_readably(owner_client, owner, registered_model):
    services.model_deprecate(model=registered_model, actor=owner, reason="Old.")
    response = owner_client.post("/models/churn/versions/new/", {})
    assert response.status_code == 409 and "is deprecated" in text_of(response)


# ---------------------------------------------------------------------------------------------- aliases


def test_set_alias_happy_path(owner_client, registered_model, make_version):
    make_version(registered_model)
    make_version(registered_model)
    response = owner_client.post("/models/churn/aliases/", {"alias": "champion", "version": "1"})
    assert response.status_code == 302 and response["Location"] == "/models/churn/#aliases"
    assert Alias.objects.get(model=registered_model, name="champion").version.number == 1
    body = text_of(owner_client.get("/models/churn/"))
    assert "Alias @champion now points at version 1." in body


@pytest.mark.parametrize("data, message", [
    ({"alias": "latest", "version": "1"}, "Alias &#x27;latest&#x27; is reserved"),
    ({"alias": "v3", "version": "1"}, "is reserved"),
    ({"alias": "has space", "version": "1"}, "Alias must be 1-255 characters"),
    ({"alias": "ok", "version": "7"}, "Select a valid choice"),
])
def test_set_alias_errors_are_readable(owner_client, registered_model, make_version, data, message):
    make_version(registered_model)
    response = owner_client.post("/models/churn/aliases/", data)
    assert response.status_code == 400 and message in text_of(response)
    assert "alias-form" in text_of(response) and not Alias.objects.exists()


def test_viewer_cannot_set_alias(client_for, make_user, grant, registered_model, make_version):
    make_version(registered_model)
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    response = client_for(viewer).post("/models/churn/aliases/", {"alias": "champion", "version": "1"})
    assert response.status_code == 403 and "permission" in text_of(response)
    assert not Alias.objects.exists()


# ------------------------------------------------------------------------------------------------ stage


def test_stage_transition_happy_path_with_archiving(owner_client, owner, registered_model, make_version):
    v1 = make_version(registered_model)
    make_version(registered_model)
    services.version_transition_stage(version=v1, actor=owner, stage="Production")
    response = owner_client.post("/models/churn/versions/2/stage/",
                                 {"stage": "Production", "archive_existing_versions": "on"})
    assert response.status_code == 302 and response["Location"] == "/models/churn/versions/2/"
    stages = dict(ModelVersion.objects.values_list("number", "stage"))
    assert stages == {1: Stage.ARCHIVED, 2: Stage.PRODUCTION}
    assert "Version 2 is now in Production." in text_of(owner_client.get("/models/churn/versions/2/"))


def test_unknown_stage_is_a_readable_400(owner_client, registered_model, make_version):
    make_version(registered_model)
    response = owner_client.post("/models/churn/versions/1/stage/", {"stage": "Limbo"})
    assert response.status_code == 400 and "Select a valid choice" in text_of(response)
    assert ModelVersion.objects.get().stage == Stage.NONE


def test_viewer_cannot_transition(client_for, make_user, grant, registered_model, make_version):
    make_version(registered_model)
    viewer = make_user("viewer")
    grant(registered_model, viewer, Role.VIEWER)
    response = client_for(viewer).post("/models/churn/versions/1/stage/", {"stage": "Staging"})
    assert response.status_code == 403 and ModelVersion.objects.get().stage == Stage.NONE


# ------------------------------------------------------------------------------------------------- CSRF


@pytest.mark.parametrize("url, data", [
    ("/models/new/", {"name": "x"}),
    ("/models/churn/aliases/", {"alias": "champion", "version": "1"}),
    ("/models/churn/versions/1/stage/", {"stage": "Staging"}),
    ("/models/churn/versions/new/", {}),
    ("/tokens/", {"name": "t"}),
])
def test_csrf_is_enforced_on_every_form(client_for, owner, registered_model, make_version, url, data):
    make_version(registered_model)
    client = client_for(owner, enforce_csrf_checks=True)
    response = client.post(url, data)
    assert response.status_code == 403
    assert not Alias.objects.exists() and ModelVersion.objects.count() == 1
    assert RegisteredModel.objects.count() == 1 and not AccessToken.objects.exists()


def test_csrf_token_in_the_form_is_accepted(client_for, owner):
    client = client_for(owner, enforce_csrf_checks=True)
    page = text_of(client.get("/models/new/"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post("/models/new/", {"name": "fraud", "csrfmiddlewaretoken": token})
    assert response.status_code == 302


# ----------------------------------------------------------------------------------------------- tokens


def test_token_page_shows_the_raw_token_once(owner_client, owner):
    assert "No tokens yet." in text_of(owner_client.get("/tokens/"))
    response = owner_client.post("/tokens/", {"name": "ci", "expires_in_days": "30"})
    assert response.status_code == 302 and response["Location"] == "/tokens/"  # post/redirect/get
    response = owner_client.get("/tokens/")
    body = text_of(response)
    assert response.status_code == 200
    raw = re.search(r'<code id="raw-token">(stm_[^<]+)</code>', body).group(1)
    assert "it will not be shown again" in body
    token = AccessToken.objects.get(user=owner)
    assert token.token_hash == access.token_hash(raw) and token.expires_at is not None
    assert "no-store" in response["Cache-Control"]
    later = text_of(owner_client.get("/tokens/"))
    assert raw not in later and token.prefix in later and "ci" in later and "Active" in later
    assert AccessToken.objects.filter(user=owner).count() == 1


def test_last_use_is_written_at_most_once_a_minute(owner, api_client_for):
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from registry import authentication

    api = api_client_for(owner)
    assert api.get("/api/v1/models").status_code == 200
    token = AccessToken.objects.get(user=owner)
    first = token.last_used_at
    assert first is not None
    for _ in range(3):
        assert api.get("/api/v1/models").status_code == 200
    assert AccessToken.objects.get(pk=token.pk).last_used_at == first  # no write within the minute
    # Two minutes on (the stored time moved back, the process's copy and the shared claim gone) it is written again.
    AccessToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(minutes=2))
    authentication.forget_checked_tokens()
    cache.clear()
    assert api.get("/api/v1/models").status_code == 200
    assert AccessToken.objects.get(pk=token.pk).last_used_at > first


def test_token_errors_are_readable(owner_client):
    response = owner_client.post("/tokens/", {"name": "", "expires_in_days": "0"})
    body = text_of(response)
    assert response.status_code == 400 and "This field is required." in body
    assert "greater than or equal to 1" in body and not AccessToken.objects.exists()


def test_revoke_token(owner_client, owner):
    token, _ = access.token_create(user=owner, actor=owner, name="old")
    response = owner_client.post(f"/tokens/{token.pk}/revoke/")
    assert response.status_code == 302 and response["Location"] == "/tokens/"
    token.refresh_from_db()
    assert token.revoked_at is not None
    body = text_of(owner_client.get("/tokens/"))
    assert "Revoked" in body and "Revoked token old" in body


def test_tokens_are_private_to_their_user(client_for, owner, outsider):
    token, _ = access.token_create(user=owner, actor=owner, name="mine")
    client = client_for(outsider)
    assert token.prefix not in text_of(client.get("/tokens/"))
    assert client.post(f"/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


# ----------------------------------------------------------------------------------------------- charts


def test_metric_figures_build_one_plain_figure_per_metric():
    figures = charts.metric_figures({"loss": [(2, 0.3), (1, 0.5)], "auc": [(1, 0.8)], "bad": [(1, "x")]})
    assert [f["name"] for f in figures] == ["auc", "loss"]
    loss = figures[1]["figure"]
    assert loss["data"][0]["x"] == [1, 2] and loss["data"][0]["y"] == [0.5, 0.3]
    assert loss["layout"]["xaxis"]["ticktext"] == ["v1", "v2"]
