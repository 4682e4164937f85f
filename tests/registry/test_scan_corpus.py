"""Stratum's scanner on the corpora that bench/scan_corpus.py compares with picklescan and modelscan: every malicious
file is quarantined, no benign file is, and hostile inputs end in a readable refusal within the scan's limits."""

from __future__ import annotations

import io
import os
import pickle
import tracemalloc
import zipfile

import pytest

from registry.artifacts.formats import SNIFF_BYTES, detect_format
from registry.pipeline.scan.analysis import scan_file
from tests.registry.scan_corpus import PROTOCOLS, benign_corpus, describe, malicious_corpus, onnx_with_external_data


@pytest.fixture(autouse=True)
def _never_unpickle(monkeypatch):
    """Any unpickling during a scan fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the scanner unpickled something")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


@pytest.fixture(scope="module")
def corpora():
    return benign_corpus(), malicious_corpus()


def scan(data: bytes, **kw):
    return scan_file(io.BytesIO(data), fmt=detect_format(data[:SNIFF_BYTES]), max_bytes=kw.get("max_bytes", 10**9),
                     timeout=kw.get("timeout", 60))


def test_the_corpora_are_as_broad_as_promised(corpora):
    benign, malicious = corpora
    assert len(benign) >= 50 and len(describe(benign)) >= 10
    assert len(describe(malicious)) >= 25
    assert {f"os-system-p{p}.pkl" for p in PROTOCOLS} <= {s.name for s in malicious}
    assert {"image", "text", "CSV", "JSON", "parquet", "safetensors", "ONNX", "joblib, compressed"} <= set(
        describe(benign))


def test_every_malicious_file_is_quarantined(corpora):
    missed = []
    for sample in corpora[1]:
        report = scan(sample.data)
        if not report.quarantined:
            missed.append((sample.name, sample.kind, report.verdict, report.detail))
    assert missed == []


def test_no_benign_file_is_quarantined_and_data_formats_are_recognised(corpora):
    flagged = []
    for sample in corpora[0]:
        report = scan(sample.data)
        if report.quarantined:
            flagged.append((sample.name, report.verdict, report.offending, report.detail))
    assert flagged == []
    formats = {s.kind: detect_format(s.data[:SNIFF_BYTES]) for s in corpora[0]}
    assert formats["image"] == "image" and formats["parquet"] == "parquet" and formats["ONNX"] == "onnx"
    assert formats["safetensors"] == "safetensors" and formats["CSV"] == "csv" and formats["numpy .npy"] == "npy"


def test_a_png_is_an_image_and_never_parsed_as_a_pickle(corpora):
    png = next(s for s in corpora[0] if s.name == "photo.png").data
    report = scan(png)
    assert detect_format(png) == "image" and report.verdict == "not_pickle" and report.globals == []


# ------------------------------------------------------------------------------------------------ bad input


def _bomb(levels: int = 1) -> bytes:
    """A zip whose one member expands 1 GiB of zeros from about 1 MiB (levels > 1 nests it)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive, \
            archive.open("zeros.pkl", "w", force_zip64=True) as member:
        block = b"\x00" * (1 << 20)
        for _ in range(1024):
            member.write(block)
    data = buf.getvalue()
    for _ in range(levels - 1):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("inner.zip", data)
        data = out.getvalue()
    return data


def test_a_zip_bomb_is_refused_with_a_reason_without_expanding_it():
    for levels in (1, 2):
        report = scan(_bomb(levels))
        assert report.verdict == "error" and report.quarantined
        assert "zip bomb" in report.detail and "refused" in report.detail


def test_overlapping_zip_entries_are_refused():
    member = b"\x80\x04K\x01."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a.pkl", member)
    data = bytearray(buf.getvalue())
    # A second central-directory entry pointing at the same local header: the overlapping-entry construction.
    cd = data.index(b"PK\x01\x02")
    eocd = data.index(b"PK\x05\x06")
    entry = bytes(data[cd:eocd]).replace(b"a.pkl", b"b.pkl")
    new = bytes(data[:eocd]) + entry
    tail = bytearray(data[eocd:])
    tail[8:10] = tail[10:12] = (2).to_bytes(2, "little")
    tail[12:16] = (len(entry) * 2).to_bytes(4, "little")
    report = scan(new + bytes(tail))
    assert report.quarantined and ("overlap" in report.detail or "unreadable" in report.detail), report


class _HugeStringPickle(io.RawIOBase):
    """A protocol-4 pickle of a 2 GiB string, produced as it is read (nothing of that size is ever in memory)."""

    def __init__(self, size: int = 2 * 1024**3) -> None:
        self.head = b"\x80\x04\x8d" + size.to_bytes(8, "little")
        self.left, self.tail = size, b"\x94."
        self.block = b"a" * (1 << 20)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if self.head:
            n = min(len(view), len(self.head))
            view[:n], self.head = self.head[:n], self.head[n:]
            return n
        if self.left:
            n = min(len(view), self.left, len(self.block))
            view[:n] = self.block[:n]
            self.left -= n
            return n
        n = min(len(view), len(self.tail))
        view[:n], self.tail = self.tail[:n], self.tail[n:]
        return n


def test_a_pickle_of_a_2_gib_string_is_refused_at_the_limit_in_flat_memory():
    tracemalloc.start()
    try:
        report = scan_file(io.BufferedReader(_HugeStringPickle()), fmt="pickle", max_bytes=2 * 1024**3, timeout=120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.verdict == "error" and report.quarantined and "limit" in report.detail
    assert peak < 64 * 1024**2
    # Below the limit the string is skipped on disk, not held: a harmless pickle of a big string is clean.
    small = scan_file(io.BufferedReader(_HugeStringPickle(64 * 1024**2)), fmt="pickle", max_bytes=10**9, timeout=60)
    assert small.verdict == "safe", small


def test_a_truncated_pickle_is_quarantined_with_a_reason(corpora):
    data = next(s for s in corpora[0] if s.name == "sklearn-forest-p4.pkl").data
    for cut in (len(data) // 2, len(data) - 1, 3):
        report = scan(data[:cut])
        assert report.verdict == "error" and report.quarantined and report.detail.endswith("quarantined")


def test_a_pickle_inside_a_zip_inside_a_zip_is_found(corpora):
    nested = next(s for s in corpora[1] if s.kind == "pickle in a zip in a zip").data
    report = scan(nested)
    assert report.verdict == "unsafe" and "posix.system" in report.offending
    assert report.members == ["outer/inner.zip!archive/data.pkl"]


def test_containers_nested_too_deep_are_refused():
    data = b"\x80\x04K\x01."
    for i in range(7):
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr(f"level{i}.zip" if i else "data.pkl", data)
        data = out.getvalue()
    report = scan(data)
    assert report.verdict == "error" and "nested more than" in report.detail


def test_onnx_external_data_reference_is_quarantined_and_never_followed(tmp_path, monkeypatch):
    opened = []
    real_open = open

    def watch(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watch)
    data = onnx_with_external_data("../../etc/passwd")
    assert detect_format(data) == "onnx"
    report = scan(data)
    assert report.verdict == "unsafe" and report.quarantined
    assert any("../../etc/passwd" in o for o in report.offending) and "outside the file" in report.detail
    assert not any("passwd" in path for path in opened)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("model/model.onnx", data)
    assert scan(zipped.getvalue()).verdict == "unsafe"
    assert scan(onnx_with_external_data("weights.bin")).quarantined  # any external file is outside the store


def test_gateway_refuses_an_onnx_model_with_external_data():
    from deployments.serving.errors import GatewayError
    from deployments.serving.sessions import refuse_external_data

    with pytest.raises(GatewayError) as info:
        refuse_external_data(onnx_with_external_data(), "abc")
    assert "external" in str(info.value.message).lower()
    assert os.path.exists("/etc/passwd")  # the reference was real; it was never opened
