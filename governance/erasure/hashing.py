"""Keyed hashes of data-subject identifiers: HMAC-SHA256 under a server key, so raw identifiers are never stored."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

from django.conf import settings

from registry.errors import InvalidInput

MAX_IDENTIFIER = 512


def _key() -> bytes:
    """Return the subject-hash key: STRATUM_SUBJECT_HASH_KEY when set, else one derived from SECRET_KEY."""
    configured = getattr(settings, "STRATUM_SUBJECT_HASH_KEY", "") or ""
    if configured:
        return configured.encode()
    return hmac.new(settings.SECRET_KEY.encode(), b"stratum:subject-hash:v1", hashlib.sha256).digest()


def key_id() -> str:
    """Return a short public fingerprint of the key (so a hash can be matched to the key that made it)."""
    return hashlib.sha256(b"key-id:" + _key()).hexdigest()[:16]


def normalise(identifier: str) -> str:
    """Return the identifier as it is hashed: Unicode NFC, surrounding whitespace removed."""
    if not isinstance(identifier, str):
        raise InvalidInput("A subject identifier must be text.")
    value = unicodedata.normalize("NFC", identifier).strip()
    if not value or len(value) > MAX_IDENTIFIER or "\x00" in value:
        raise InvalidInput(f"A subject identifier must be 1 to {MAX_IDENTIFIER} characters, without NUL.")
    return value


def subject_hash(identifier: str) -> str:
    """Return the keyed hash (hex HMAC-SHA256) of a subject identifier."""
    return hmac.new(_key(), normalise(identifier).encode(), hashlib.sha256).hexdigest()
