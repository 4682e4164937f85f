"""Detect an artifact's format from its first bytes, never from its name. Nothing here unpickles."""

from __future__ import annotations

import codecs
import json
import re

from registry.models import ArtifactFormat

SNIFF_BYTES = 64 * 1024
_PROTO0_GLOBAL = re.compile(rb"c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")
_ONNX_NEXT_TAGS = {0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x52, 0x72}


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint) then a length-delimited field.
    if len(head) < 4 or head[0] != 0x08 or not (1 <= head[1] <= 20):
        return False
    return head[2] in _ONNX_NEXT_TAGS and (b"onnx" in head or b"ai.onnx" in head or head[2] == 0x12)


def _looks_like_pickle(head: bytes) -> bool:
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    # Protocol 0/1 pickles of objects start with a GLOBAL opcode: "c<module>\n<name>\n".
    return _PROTO0_GLOBAL.match(head) is not None


def detect_format(head: bytes) -> str:
    """Return the ArtifactFormat value for a file starting with `head`."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return ArtifactFormat.ZIP
    if _looks_like_pickle(head):
        if b"joblib.numpy_pickle" in head or b"NumpyArrayWrapper" in head:
            return ArtifactFormat.JOBLIB
        return ArtifactFormat.PICKLE
    if (
        head.startswith(b"\x1f\x8b")
        or head.startswith(b"BZh")
        or head.startswith(b"\xfd7zXZ\x00")
        or head.startswith(b"\x04\x22\x4d\x18")
        or (len(head) > 1 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA))
        or head.startswith(b"ZF")
    ):
        return ArtifactFormat.COMPRESSED
    if _looks_like_onnx(head):
        return ArtifactFormat.ONNX
    try:
        # Incremental decoding is strict but tolerates a character cut at the end of the sniffed head.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return ArtifactFormat.BINARY
    if head and not text:
        return ArtifactFormat.BINARY
    if "\x00" in text:
        return ArtifactFormat.BINARY
    stripped = text.lstrip()
    if any(line.startswith("flavors:") for line in text.splitlines()):
        return ArtifactFormat.MLMODEL
    if stripped[:1] in ("{", "["):
        try:
            json.loads(text)
            return ArtifactFormat.JSON
        except ValueError:
            pass
    return ArtifactFormat.TEXT


CONTENT_TYPES = {
    ArtifactFormat.ZIP: "application/zip",
    ArtifactFormat.JSON: "application/json",
    ArtifactFormat.TEXT: "text/plain; charset=utf-8",
    ArtifactFormat.MLMODEL: "text/plain; charset=utf-8",
}


def content_type_for(fmt: str) -> str:
    """Return the Content-Type a download of this format is served with."""
    return CONTENT_TYPES.get(fmt, "application/octet-stream")
