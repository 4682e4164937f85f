"""The gateway's one error: a refused request, with the HTTP status and error code the caller sees."""

from __future__ import annotations


class GatewayError(Exception):
    """A request the gateway refuses, with the HTTP status and error code the caller sees."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
