"""The serving gateway's engine: per-process ONNX Runtime sessions and routing, input checks, buffered statistics.

Nothing here queries the database on the request path once warm: routing snapshots are cached per process and
re-checked against the endpoint's generation at most every STRATUM_ROUTING_REFRESH_SECONDS (endpoints); ONNX sessions
are cached by content hash (sessions); request statistics are aggregated in memory and written in batches by a
background thread (recording). Other modules use the names below.
"""

from deployments.serving.access import authenticate
from deployments.serving.endpoints import routing_changed
from deployments.serving.errors import GatewayError
from deployments.serving.recording import BUCKET_SECONDS, recorder
from deployments.serving.serve import drain, predict, reset
from deployments.serving.sessions import smoke_check

__all__ = [
    "BUCKET_SECONDS",
    "GatewayError",
    "authenticate",
    "drain",
    "predict",
    "recorder",
    "reset",
    "routing_changed",
    "smoke_check",
]
