"""The pipeline's public writes for other apps: durable jobs and their kinds, signature checks, the server key.

Other apps reach the pipeline through this module and `registry.pipeline.selectors`, never its inner modules.
"""

from __future__ import annotations

from registry.pipeline.jobs import job_enqueue, job_progress, register_handler
from registry.pipeline.keys import key_fingerprint, private_key, public_key_pem
from registry.pipeline.signing import signature_verify

__all__ = [
    "job_enqueue",
    "job_progress",
    "key_fingerprint",
    "private_key",
    "public_key_pem",
    "register_handler",
    "signature_verify",
]
