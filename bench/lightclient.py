"""A small keep-alive HTTP/1.1 client for the benchmarks (standard library only), one per thread.

Client and server share this machine's two cores, so whatever the client burns per request is taken from the
server being measured. `requests` spent about 1.5 ms of CPU per request here (measured with /proc/<pid>/stat
against a local server), as much as Stratum's whole /healthz; this client spends about 0.35 ms. Both servers
in a comparison are driven by the same client, so neither is favoured; `--client requests` on the benchmarks
switches back to measure with requests.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import select
from typing import Any
from urllib.parse import urlencode, urlsplit


class Response:
    """The parts of a response the benchmarks read (named as in requests)."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, content: bytes) -> None:
        self.status_code, self.headers, self.content = status, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class Session:
    """One persistent connection per origin; reconnects when the server closed it (never re-sends a request)."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self._conns: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def _connection(self, scheme: str, host: str, port: int, timeout: float) -> http.client.HTTPConnection:
        key = (scheme, host, port)
        conn = self._conns.get(key)
        if conn is not None and conn.sock is not None:
            # A kept-alive socket that is readable before we asked anything was closed by the server.
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:
                conn.close()
        if conn is None:
            cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
            conn = self._conns[key] = cls(host, port, timeout=timeout)
        conn.timeout = timeout
        return conn

    def request(self, method: str, url: str, *, params: dict[str, Any] | None = None, json: Any = None,
                data: bytes | str | None = None, headers: dict[str, str] | None = None,
                timeout: float = 30.0) -> Response:
        parts = urlsplit(url)
        path = parts.path or "/"
        query = parts.query
        if params:
            query = "&".join(q for q in (query, urlencode(params, doseq=True)) if q)
        if query:
            path = f"{path}?{query}"
        sent = {**self.headers, **(headers or {})}
        body: bytes | None = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = data.encode() if isinstance(data, str) else data
        port = parts.port or (443 if parts.scheme == "https" else 80)
        conn = self._connection(parts.scheme, parts.hostname or "127.0.0.1", port, timeout)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            content = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        return Response(response.status, response.headers, content)

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def new_session(kind: str = "light") -> Any:
    """A session of the benchmarks' `--client` choice: this module's ("light") or requests' ("requests")."""
    if kind == "requests":
        import requests

        return requests.Session()
    return Session()
