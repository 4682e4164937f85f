"""Detect an artifact's format from its first bytes, never from its name. Nothing here unpickles."""

from __future__ import annotations

import codecs
import csv
import json
import re

from registry.models import ArtifactFormat

SNIFF_BYTES = 64 * 1024
_PROTO0_GLOBAL = re.compile(rb"c[A-Za-z_][\w.]*\n[A-Za-z_][\w.]*\n")
# ModelProto fields by number: wire type 0 (varint) or 2 (length-delimited).
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*",
                b"\x00\x00\x01\x00", b"BM")


def _varint(head: bytes, pos: int) -> tuple[int, int] | None:
    value = shift = 0
    while pos < len(head) and shift < 64:
        byte = head[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _looks_like_onnx(head: bytes) -> bool:
    """A ModelProto: ir_version (field 1, a small varint) first, then only ModelProto fields with their wire types
    as far as the head goes."""
    if len(head) < 4 or head[0] != 0x08 or not (1 <= head[1] <= 20):
        return False
    pos, fields = 2, 1
    while pos < len(head):
        tag = _varint(head, pos)
        if tag is None:
            break
        key, pos = tag
        number, wire = key >> 3, key & 7
        if _ONNX_FIELDS.get(number) != wire:
            return False
        value = _varint(head, pos)
        if value is None:
            break
        pos = value[1] + (value[0] if wire == 2 else 0)
        fields += 1
    return fields >= 2


def _looks_like_image(head: bytes) -> bool:
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return True
    if head.startswith(b"BM"):  # BMP: the header's size fields must agree, or "BM..." text would count
        return len(head) >= 26 and head[14] in (12, 40, 52, 56, 108, 124) and head[6:10] == b"\x00\x00\x00\x00"
    if head.startswith(b"\x00\x00\x01\x00"):  # ICO: a count of images and a sane first entry
        return len(head) >= 22 and 0 < int.from_bytes(head[4:6], "little") < 256
    return head.startswith(_IMAGE_MAGIC)


def _looks_like_safetensors(head: bytes) -> bool:
    """An 8-byte little-endian header length, then that many bytes of JSON (a dict of tensor descriptions)."""
    if len(head) < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    if not (2 <= length <= 100 * 1024**2) or head[8:9] != b"{":
        return False
    header = head[8:8 + length]
    if len(header) < length:  # the header runs past the sniffed head: its start must still look like JSON text
        return header[1:2] in (b'"', b" ", b"\n", b"}")
    try:
        return isinstance(json.loads(header), dict)
    except ValueError:
        return False


def _looks_like_csv(text: str) -> bool:
    """Two or more lines that all split into the same number (two or more) of fields on one delimiter."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(text) == SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut by the sniff
    if len(lines) < 2:
        return False
    for delimiter in (",", "\t", ";", "|"):
        counts = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(counts) == 1 and counts.pop() >= 2:
            return True
    return False


def _looks_like_pickle(head: bytes) -> bool:
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    # Protocol 0/1 pickles of objects start with a GLOBAL opcode: "c<module>\n<name>\n".
    return _PROTO0_GLOBAL.match(head) is not None


def detect_format(head: bytes) -> str:
    """Return the ArtifactFormat value for a file starting with `head`."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return ArtifactFormat.ZIP
    if _looks_like_image(head):
        return ArtifactFormat.IMAGE
    if head.startswith(b"PAR1"):
        return ArtifactFormat.PARQUET
    if head.startswith(b"\x93NUMPY"):
        return ArtifactFormat.NPY
    if _looks_like_safetensors(head):
        return ArtifactFormat.SAFETENSORS
    if _looks_like_pickle(head):
        if b"joblib.numpy_pickle" in head or b"NumpyArrayWrapper" in head:
            return ArtifactFormat.JOBLIB
        return ArtifactFormat.PICKLE
    if (
        head.startswith(b"\x1f\x8b")
        or head.startswith(b"BZh")
        or head.startswith(b"\xfd7zXZ\x00")
        or head.startswith(b"\x04\x22\x4d\x18")
        or head.startswith(b"\x5d\x00\x00")
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
    if _looks_like_csv(text):
        return ArtifactFormat.CSV
    return ArtifactFormat.TEXT


CONTENT_TYPES = {
    ArtifactFormat.ZIP: "application/zip",
    ArtifactFormat.JSON: "application/json",
    ArtifactFormat.CSV: "text/csv; charset=utf-8",
    ArtifactFormat.TEXT: "text/plain; charset=utf-8",
    ArtifactFormat.MLMODEL: "text/plain; charset=utf-8",
}


def content_type_for(fmt: str) -> str:
    """Return the Content-Type a download of this format is served with."""
    return CONTENT_TYPES.get(fmt, "application/octet-stream")
