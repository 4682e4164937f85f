"""How Stratum talks to an S3-compatible artifact store (django-storages' S3Storage options), shared by the settings
and the tests that run against a real S3 server."""

from __future__ import annotations

from typing import Any

MIB = 1024**2


def transfer_config() -> Any:
    """boto3 transfers in 8 MiB parts, up to 8 at a time. Blobs go up from their spool file with boto3's file upload,
    which reads each part from disk as it is sent, so memory stays flat whatever the size."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=8)


def storage_options(*, bucket: str, endpoint_url: str | None, region: str | None, prefix: str,
                    addressing_style: str = "path", **credentials: str) -> dict[str, Any]:
    """OPTIONS for storages.backends.s3.S3Storage. Credentials (access_key, secret_key) default to boto3's chain:
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, an instance or pod role. Presigned URLs use Signature V4 (what every
    S3-compatible server accepts; boto3 still presigns V2 by default). Path-style requests (endpoint/bucket/key)
    work with every S3-compatible server under any host name."""
    return {"bucket_name": bucket, "endpoint_url": endpoint_url or None, "region_name": region or None,
            "addressing_style": addressing_style, "signature_version": "s3v4", "location": prefix,
            "file_overwrite": False,
            "transfer_config": transfer_config(), **credentials}
