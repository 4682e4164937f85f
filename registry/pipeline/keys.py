"""The server's signing key: one EC P-256 key (STRATUM_SIGNING_KEY, or one generated into var/ for development).

It signs model versions (the pipeline) and governance's audit checkpoints; its public half is published.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings


def _development_key_path() -> Path:
    return Path(settings.VAR_DIR) / "signing_key.pem"


@functools.cache
def _load(configured: str) -> ec.EllipticCurvePrivateKey:
    if configured.lstrip().startswith("-----BEGIN"):
        pem = configured.encode()
    else:
        path = Path(configured) if configured else _development_key_path()
        if not configured and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            except FileExistsError:  # another process generated it first
                pass
        pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("STRATUM_SIGNING_KEY must be an EC P-256 private key in PEM form.")
    return key


def private_key() -> ec.EllipticCurvePrivateKey:
    """Return the server's EC P-256 signing key (STRATUM_SIGNING_KEY: PEM text or path; a var/ key otherwise)."""
    return _load(getattr(settings, "STRATUM_SIGNING_KEY", "") or "")


def public_key_pem() -> str:
    """Return the published public key that verifies version signatures and audit checkpoints."""
    return private_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_fingerprint() -> str:
    """Return the SHA-256 fingerprint of the public key (DER), as model-signing's bundle hint shows it."""
    der = private_key().public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
