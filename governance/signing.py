"""The server's EC P-256 signing key (STRATUM_SIGNING_KEY, generated into var/ for development) and checkpoints."""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from governance.models import AuditCheckpoint
from governance.timestamps import iso
from registry.pipeline import services as pipeline

# One server key signs both model versions (registry pipeline) and audit checkpoints; the registry owns it.
private_key = pipeline.private_key
public_key_pem = pipeline.public_key_pem
key_id = pipeline.key_fingerprint


def checkpoint_message(seq: int, head_hash: str, created_at_iso: str) -> bytes:
    """The exact bytes a checkpoint signs."""
    return f"stratum-audit-checkpoint\n{seq}\n{head_hash}\n{created_at_iso}".encode()


def sign(message: bytes) -> str:
    """Sign `message` with ECDSA P-256 / SHA-256 and return the DER signature in base64."""
    return base64.b64encode(private_key().sign(message, ec.ECDSA(hashes.SHA256()))).decode()


def verify_checkpoint(checkpoint: AuditCheckpoint) -> bool:
    """True when the checkpoint's signature is valid under the server's current key."""
    if checkpoint.key_id != key_id():
        return False
    message = checkpoint_message(checkpoint.seq, checkpoint.head_hash, iso(checkpoint.created_at))
    try:
        private_key().public_key().verify(base64.b64decode(checkpoint.signature), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True
