"""The pipeline's public writes for other apps: durable jobs and their kinds, scans, conversions, signing and
signature checks, the server key.

Other apps reach the pipeline through this module and `registry.pipeline.selectors`, never its inner modules.
"""

from __future__ import annotations

from registry.pipeline.convert import convert_enqueue
from registry.pipeline.jobs import job_enqueue, job_progress, job_run, register_handler
from registry.pipeline.keys import key_fingerprint, private_key, public_key_pem
from registry.pipeline.scan.services import scan_enqueue
from registry.pipeline.signing import (
    SIGNED_DOCUMENT_DIR,
    register_signed_document,
    sign_enqueue,
    signature_verify,
    signed_document,
)

__all__ = [
    "SIGNED_DOCUMENT_DIR",
    "convert_enqueue",
    "job_enqueue",
    "job_progress",
    "job_run",
    "key_fingerprint",
    "private_key",
    "public_key_pem",
    "register_handler",
    "register_signed_document",
    "scan_enqueue",
    "sign_enqueue",
    "signature_verify",
    "signed_document",
]
