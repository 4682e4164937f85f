"""Import every module that registers a job handler, so a worker knows every job kind."""

from registry.models import JobKind
from registry.pipeline import convert, jobs, signing
from registry.pipeline.scan import services as scan_service
from registry.webhooks import delivery as webhook_delivery

jobs.register_handler(JobKind.CONVERT, convert.artifact_convert_run)

__all__ = ["scan_service", "signing", "webhook_delivery"]
