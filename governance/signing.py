"""The server's EC P-256 signing key (STRATUM_SIGNING_KEY, generated into var/ for development) and checkpoints."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from .models import AuditCheckpoint


def _development_key_path() -> Path:
    return Path(settings.VAR_DIR) / "signing_key.pem"


def _generate(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


@functools.cache
def _load(configured: str) -> ec.EllipticCurvePrivateKey:
    if configured.lstrip().startswith("-----BEGIN"):
        pem = configured.encode()
    else:
        path = Path(configured) if configured else _development_key_path()
        if not configured and not path.exists():
            try:
                _generate(path)
            except FileExistsError:  # another process generated it first
                pass
        pem = path.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("STRATUM_SIGNING_KEY must be an EC P-256 private key in PEM form.")
    return key


def private_key() -> ec.EllipticCurvePrivateKey:
    """Return the server's signing key (PEM text or a path in STRATUM_SIGNING_KEY; a var/ key in development)."""
    return _load(getattr(settings, "STRATUM_SIGNING_KEY", "") or "")


def public_key_pem() -> str:
    """Return the public half of the signing key, for auditors who verify checkpoints offline."""
    return private_key().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def key_id() -> str:
    """Return the SHA-256 fingerprint of the public key (DER)."""
    der = private_key().public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def checkpoint_message(seq: int, head_hash: str, created_at_iso: str) -> bytes:
    """The exact bytes a checkpoint signs."""
    return f"stratum-audit-checkpoint\n{seq}\n{head_hash}\n{created_at_iso}".encode()


def sign(message: bytes) -> str:
    """Sign `message` with ECDSA P-256 / SHA-256 and return the DER signature in base64."""
    return base64.b64encode(private_key().sign(message, ec.ECDSA(hashes.SHA256()))).decode()


def verify_checkpoint(checkpoint: AuditCheckpoint) -> bool:
    """True when the checkpoint's signature is valid under the server's current key."""
    from .audit import iso

    if checkpoint.key_id != key_id():
        return False
    message = checkpoint_message(checkpoint.seq, checkpoint.head_hash, iso(checkpoint.created_at))
    try:
        private_key().public_key().verify(base64.b64decode(checkpoint.signature), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
