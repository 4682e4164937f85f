"""Hostile and broken request bodies: multipart that does not parse or ends early, JSON too large or nested too
deep, clients that go away mid-body. Each is a 4xx in the API's shape, writes nothing, leaves no spool file behind
and logs no traceback."""

from __future__ import annotations

import io
import json
import logging
import os
import time

import pytest
from django.test import Client

from registry.artifacts.storage import HashingWriter
from registry.models import Artifact, Blob, ModelVersion, RegisteredModel
from registry.validation import MAX_JSON_DEPTH, json_depth

pytestmark = pytest.mark.django_db

VERSIONS = "/api/v1/models/churn/versions"
BOUNDARY = "stratum-test-boundary"


@pytest.fixture
def api(owner, api_client_for):
    return api_client_for(owner)


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]


def _multipart(*parts: tuple[str, str | None, bytes], boundary: str = BOUNDARY, close: bool = True) -> bytes:
    """A multipart/form-data body built by hand: (field name, file name or None, content) per part."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


def _post_multipart(api, body: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}", url=VERSIONS):
    return api.generic("POST", url, body, content_type=content_type)


def _spool_files(settings) -> list[str]:
    spool = settings.ARTIFACT_ROOT / "tmp"
    return sorted(os.listdir(spool)) if spool.exists() else []


def _nothing_written(settings) -> None:
    assert not ModelVersion.objects.exists() and not Blob.objects.exists() and not Artifact.objects.exists()
    assert _spool_files(settings) == []


# ------------------------------------------------------------------------------------------------- multipart


def test_well_formed_multipart_still_registers_its_files(api, registered_model, settings):
    body = _multipart(("file", "model.bin", b"weights" * 100), ("path", None, b"model/model.bin"))
    response = _post_multipart(api, body)
    assert response.status_code == 201, response.content
    assert list(ModelVersion.objects.get().artifacts.values_list("path", flat=True)) == ["model/model.bin"]
    assert _spool_files(settings) == []


def test_multipart_under_another_boundary_is_400_and_writes_nothing(api, registered_model, settings):
    body = _multipart(("file", "model.bin", b"weights" * 100), boundary="the-real-boundary")
    response = _post_multipart(api, body, content_type="multipart/form-data; boundary=not-the-one-in-the-body")
    _error(response, 400, "MALFORMED_REQUEST")
    _nothing_written(settings)


def test_multipart_without_a_boundary_is_400_and_writes_nothing(api, registered_model, settings):
    response = _post_multipart(api, _multipart(("file", "a.bin", b"x")), content_type="multipart/form-data")
    _error(response, 400, "MALFORMED_REQUEST")
    _nothing_written(settings)


@pytest.mark.parametrize("size", [10, 600_000])  # within one chunk, and over several of the handler's chunks
def test_file_part_that_never_closes_is_400_and_leaves_no_spool(api, registered_model, settings, size):
    body = _multipart(("file", "model.bin", b"w" * size), close=False)[:-2]  # no closing boundary at all
    _error(_post_multipart(api, body), 400, "MALFORMED_REQUEST")
    _nothing_written(settings)


def test_truncated_second_file_drops_the_first_as_well(api, registered_model, settings):
    whole = _multipart(("file", "a.bin", b"a" * 1000))[: -len(f"--{BOUNDARY}--\r\n")]
    body = whole + f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="b.bin"\r\n\r\n'.encode()
    _error(_post_multipart(api, body + b"b" * 5000), 400, "MALFORMED_REQUEST")
    _nothing_written(settings)


def test_file_part_without_a_filename_is_400(api, registered_model, settings):
    _error(_post_multipart(api, _multipart(("file", None, b"not a file"))), 400, "MALFORMED_REQUEST")
    _nothing_written(settings)


def test_multipart_with_fields_only_still_registers(api, registered_model):
    response = _post_multipart(api, _multipart(("description", None, b"no files this time")))
    assert response.status_code == 201, response.content
    assert ModelVersion.objects.get().description == "no files this time"


def test_empty_multipart_form_still_registers(api, registered_model):
    response = _post_multipart(api, f"--{BOUNDARY}--\r\n".encode())
    assert response.status_code == 201, response.content


def test_artifact_upload_with_unclosed_part_is_400(api, registered_model, make_version, settings):
    make_version(registered_model)
    body = _multipart(("file", "x.bin", b"x" * 3000), close=False)[:-2]
    response = _post_multipart(api, body, url=f"{VERSIONS}/1/artifacts")
    _error(response, 400, "MALFORMED_REQUEST")
    assert not Artifact.objects.exists() and _spool_files(settings) == []


def test_upload_page_refuses_an_unclosed_part(client, owner, registered_model, settings):
    client.force_login(owner)
    body = _multipart(("semver", None, b"1.0.0"), ("files", "x.bin", b"x" * 3000), close=False)[:-2]
    response = client.generic("POST", "/models/churn/versions/new/", body,
                              content_type=f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 400
    assert "did not arrive complete" in response.content.decode()
    _nothing_written(settings)


# ----------------------------------------------------------------------------------- clients that go away


class _Disconnecting(io.RawIOBase):
    """A request body that sends `data` and then fails as a socket does when the client goes away."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        left = len(self.data.getbuffer()) - self.data.tell()
        if size < 0 or size > left:  # the read that needs bytes the client never sent fails
            raise ConnectionResetError("client went away")
        return self.data.read(size)


def _send(owner_token: str, path: str, body: io.RawIOBase, length: int, content_type: str):
    """POST/PUT through Django's full stack with a wsgi.input we control (the test client always sends whole)."""
    return Client().generic("PUT" if "/artifacts/" in path else "POST", path, b"", content_type=content_type,
                            HTTP_AUTHORIZATION=f"Bearer {owner_token}", CONTENT_LENGTH=str(length),
                            CONTENT_TYPE=content_type,
                            **{"wsgi.input": body})


@pytest.fixture
def token(owner):
    from registry import access

    return access.token_create(user=owner, actor=owner, name="raw")[1]


def test_client_gone_mid_multipart_file_is_400_and_leaves_no_spool(token, registered_model, settings):
    body = _multipart(("file", "model.bin", b"w" * 700_000))
    partial = body[:400_000]  # inside the file part, after the handler has spooled a chunk or more
    response = _send(token, VERSIONS, _Disconnecting(partial), len(body),
                     f"multipart/form-data; boundary={BOUNDARY}")
    _error(response, 400, "MALFORMED_REQUEST")
    _nothing_written(settings)


def test_client_gone_mid_multipart_anywhere_is_400_without_a_traceback(token, settings, caplog):
    body = _multipart(("name", None, b"fraud"), ("file", "stray.bin", b"w" * 700_000))
    response = _send(token, "/api/v1/models", _Disconnecting(body[:400_000]), len(body),
                     f"multipart/form-data; boundary={BOUNDARY}")
    _error(response, 400, "MALFORMED_REQUEST")
    assert not RegisteredModel.objects.exists() and _spool_files(settings) == []
    assert [r for r in caplog.records if r.exc_info] == []


def test_client_gone_mid_json_is_400_without_a_traceback(token, caplog):
    body = json.dumps({"name": "fraud", "description": "d" * 10_000}).encode()
    response = _send(token, "/api/v1/models", _Disconnecting(body[:5000]), len(body), "application/json")
    _error(response, 400, "MALFORMED_REQUEST")
    assert not RegisteredModel.objects.exists()
    assert [r for r in caplog.records if r.exc_info] == []


def test_a_spool_writer_nobody_finished_removes_its_file():
    writer = HashingWriter()
    writer.write(b"half an upload")
    path = writer.path
    assert os.path.exists(path)
    del writer
    assert not os.path.exists(path)


def test_short_multipart_body_is_400_and_leaves_no_spool(token, registered_model, settings):
    body = _multipart(("file", "model.bin", b"w" * 700_000))
    response = _send(token, VERSIONS, io.BytesIO(body[:400_000]), len(body),
                     f"multipart/form-data; boundary={BOUNDARY}")
    _error(response, 400, "MALFORMED_REQUEST")
    _nothing_written(settings)


def test_client_gone_mid_raw_put_is_400_and_leaves_no_spool(token, registered_model, make_version, settings):
    make_version(registered_model)
    blobs = Blob.objects.count()
    response = _send(token, f"{VERSIONS}/1/artifacts/model.onnx", _Disconnecting(b"x" * 300_000), 1_000_000,
                     "application/octet-stream")
    _error(response, 400, "MALFORMED_REQUEST")
    assert not Artifact.objects.exists() and Blob.objects.count() == blobs and _spool_files(settings) == []


def test_raw_put_shorter_than_declared_is_400_not_a_truncated_artifact(token, registered_model, make_version,
                                                                        settings):
    make_version(registered_model)
    response = _send(token, f"{VERSIONS}/1/artifacts/model.onnx", io.BytesIO(b"x" * 300_000), 1_000_000,
                     "application/octet-stream")
    _error(response, 400, "MALFORMED_REQUEST")
    assert not Artifact.objects.exists() and _spool_files(settings) == []


# -------------------------------------------------------------------------------------- refused uploads


@pytest.mark.parametrize("path, content_type, expected", [
    ("/api/v1/models/nope/versions/1/artifacts/a.bin", "application/octet-stream", 404),
    (VERSIONS, f"multipart/form-data; boundary={BOUNDARY}", 413),  # refused on its declared length alone
    ("/api/v1/models", "application/json", 413),
])
def test_a_refused_body_is_read_to_its_end_so_the_answer_reaches_the_client(token, registered_model, settings,
                                                                              path, content_type, expected):
    if expected == 413:
        settings.MAX_UPLOAD_BYTES = 1000
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    stream = io.BytesIO(b"z" * 3_000_000)
    response = _send(token, path, stream, 3_000_000, content_type)
    assert response.status_code == expected, response.content
    # A server that closes with unread bytes resets the connection: the client would see that, not the answer.
    assert stream.tell() == 3_000_000


def test_oversize_multipart_after_a_whole_file_leaves_no_spool(api, registered_model, settings):
    settings.MAX_UPLOAD_BYTES = 1000
    body = _multipart(("file", "small.bin", b"s" * 500), ("file", "big.bin", b"b" * 5000))
    _error(_post_multipart(api, body), 413, "PAYLOAD_TOO_LARGE")
    _nothing_written(settings)


def test_refused_by_declared_length_reads_nothing_and_spools_nothing(api, registered_model, settings):
    settings.MAX_UPLOAD_BYTES = 10
    body = _multipart(("file", "big.bin", b"b" * (2 * 1024 * 1024)))
    _error(_post_multipart(api, body), 413, "PAYLOAD_TOO_LARGE")
    _nothing_written(settings)


def test_service_refusal_after_spooling_leaves_no_spool(api, registered_model, settings, monkeypatch):
    body = _multipart(("file", "a.bin", b"a" * 1000), ("file", "b.bin", b"b" * 1000), ("path", None, b"same"),
                      ("path", None, b"same"))
    _error(_post_multipart(api, body), 400, "INVALID_PARAMETER_VALUE")
    _nothing_written(settings)


def test_failure_inside_the_store_after_spooling_leaves_no_spool(api, registered_model, settings, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk went away")

    monkeypatch.setattr("django.core.files.storage.FileSystemStorage.save", broken)
    body = _multipart(("file", "a.bin", b"a" * 1000), ("file", "b.bin", b"b" * 1000))
    with pytest.raises(OSError):
        _post_multipart(api, body)
    _nothing_written(settings)


def test_path_count_mismatch_leaves_no_spool(api, registered_model, settings):
    body = _multipart(("file", "a.bin", b"a" * 1000), ("file", "b.bin", b"b" * 1000), ("path", None, b"only-one"))
    _error(_post_multipart(api, body), 400, "INVALID_PARAMETER_VALUE")
    _nothing_written(settings)


def test_unknown_model_after_spooling_leaves_no_spool(api, registered_model, settings):
    body = _multipart(("file", "a.bin", b"a" * 1000))
    _error(_post_multipart(api, body, url="/api/v1/models/nope/versions"), 404, "RESOURCE_DOES_NOT_EXIST")
    _nothing_written(settings)


# ------------------------------------------------------------------------------------------------------ JSON


def _nested(depth: int) -> str:
    return '{"name": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("url, shape", [("/api/v1/models", "native"),
                                        ("/api/2.0/mlflow/registered-models/create", "mlflow")])
def test_deeply_nested_json_is_400_without_a_traceback(api, caplog, url, shape):
    caplog.set_level(logging.DEBUG)
    response = api.generic("POST", url, "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert response.status_code == 400
    if shape == "native":
        _error(response, 400, "MALFORMED_REQUEST")
    else:
        assert response.json()["error_code"] == "MALFORMED_REQUEST"
    assert not RegisteredModel.objects.exists()
    assert [r for r in caplog.records if r.exc_info] == []
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 1


def test_nesting_at_the_limit_parses_and_one_more_is_refused(api):
    ok = api.generic("POST", "/api/v1/models", _nested(MAX_JSON_DEPTH - 1), content_type="application/json")
    _error(ok, 400, "INVALID_PARAMETER_VALUE")  # parsed: the serializer refuses a list as a name
    _error(api.generic("POST", "/api/v1/models", _nested(MAX_JSON_DEPTH), content_type="application/json"),
           400, "MALFORMED_REQUEST")


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[" * 500 + '\\"{' * 100, "b": [[1]]})
    assert json_depth(text) == 3
    assert json_depth('"' + "[" * 10) == 10  # an unterminated string hides nothing


def test_deep_json_in_a_multipart_field_is_400(api, registered_model, settings):
    body = _multipart(("metrics", None, ("[" * 50_000 + "]" * 50_000).encode()))
    _error(_post_multipart(api, body), 400, "INVALID_PARAMETER_VALUE")
    _nothing_written(settings)


def test_json_over_the_limit_is_413_in_both_shapes(api, settings, caplog):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = json.dumps({"name": "x" * 2000})
    _error(api.generic("POST", "/api/v1/models", big, content_type="application/json"), 413, "PAYLOAD_TOO_LARGE")
    response = api.generic("POST", "/api/2.0/mlflow/registered-models/create", big, content_type="application/json")
    assert response.status_code == 413 and response.json()["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    assert not RegisteredModel.objects.exists()
    assert [r for r in caplog.records if r.exc_info] == []
    small = json.dumps({"name": "fits"})
    assert api.generic("POST", "/api/v1/models", small, content_type="application/json").status_code == 201


def test_json_longer_than_declared_is_refused_on_what_arrives(token, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = json.dumps({"name": "x" * 5000}).encode()
    response = Client().generic("POST", "/api/v1/models", b"", content_type="application/json",
                                HTTP_AUTHORIZATION=f"Bearer {token}", CONTENT_LENGTH="500",
                                CONTENT_TYPE="application/json",
                                **{"wsgi.input": io.BytesIO(big)})
    # Django reads no more than the declared 500 bytes: a malformed document, not a 413 and never a 500.
    _error(response, 400, "MALFORMED_REQUEST")


def test_depth_scan_of_a_large_flat_body_is_fast():
    text = json.dumps({"rows": [[i, i + 1] for i in range(200_000)]})  # about 3 MB, 200k brackets, depth 3
    started = time.perf_counter()
    assert json_depth(text) == 3
    assert time.perf_counter() - started < 2.0

