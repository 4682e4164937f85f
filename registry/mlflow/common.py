"""What every MLflow-compatible route shares: the view base (JSON only, MLflow's error shape), the request
message, the decorator that turns a function into a view, offset paging, and the routes' fallbacks."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import validation
from registry.api.parsers import BoundedJSONParser
from registry.errors import InvalidInput
from registry.mlflow import errors


class MlflowApi(APIView):
    """Base for MLflow routes: JSON bodies (also on DELETE), MLflow's error shape."""

    parser_classes = [BoundedJSONParser]
    renderer_classes = [JSONRenderer]
    schema = None  # MLflow's own API, documented by MLflow; kept out of the native OpenAPI schema

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        """JSON whatever the Accept header asks, as MLflow's server answers (no negotiation to run)."""
        renderer = JSONRenderer()
        return renderer, renderer.media_type

    def get_exception_handler(self) -> Callable[..., Response | None]:
        return errors.exception_handler


API_DOCS_HINT = " See the API docs for more information about request parameters."


def missing(name: str) -> str:
    """MLflow's message for a required parameter that is absent or empty."""
    return f"Missing value for required parameter '{name}'.{API_DOCS_HINT}"


def invalid(name: str, value: Any) -> str:
    """MLflow's message for a parameter of the wrong type or out of range (its request-schema check)."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)[:200]
    return (f"Invalid value {shown} for parameter '{name}' supplied:  Hint: Value was of type "
            f"'{type(value).__name__}'.{API_DOCS_HINT}")


class Args:
    """The request message: query parameters on GET, the JSON body otherwise (query parameters as fallback)."""

    def __init__(self, request: Request) -> None:
        self.query = request.query_params
        if request.method == "GET":
            self.body: dict[str, Any] = {}
        else:
            body = request.data if request.content_type and request.content_type.startswith("application/json") else {}
            if not isinstance(body, dict):
                raise InvalidInput("The request body must be a JSON object.")
            self.body = body

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.body:
            return self.body[name]
        values = self.query.getlist(name)
        if not values:
            return default
        return values if len(values) > 1 else values[0]

    def str(self, name: str, *, required: bool = False, default: str = "") -> str:
        value = self.get(name)
        if value is None or value == "":
            if required:
                raise InvalidInput(missing(name))
            return default
        if isinstance(value, list) or isinstance(value, dict):
            raise InvalidInput(invalid(name, value))
        return str(value)

    def list(self, name: str) -> list[Any]:
        if name in self.body:
            value = self.body[name]
            if value is None:
                return []
            if not isinstance(value, list):
                raise InvalidInput(invalid(name, value))
            return value
        return self.query.getlist(name)

    def bool(self, name: str) -> bool:
        value = self.get(name, False)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", ""):
            return value.lower() == "true"
        raise InvalidInput(f"Invalid value {value!r} for parameter '{name}': expected true or false.")

    def int(self, name: str, *, default: int | None = None, low: int = 1, high: int | None = None) -> int | None:
        value = self.get(name)
        if value in (None, ""):
            return default
        try:
            number = validation.integer(value if isinstance(value, int) else str(value), name)
        except InvalidInput:
            raise InvalidInput(invalid(name, value))
        if number < low or (high is not None and number > high):
            raise InvalidInput(invalid(name, value))
        return number

    def tags(self, name: str = "tags") -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.list(name):
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise InvalidInput(f"Each entry of '{name}' must be an object with a string key.")
            out[item["key"]] = "" if item.get("value") is None else str(item["value"])
        return out


def mlflow_view(*methods: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn `fn(request, args, **url_kwargs) -> dict` into a view answering `methods` with MLflow JSON."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def handler(self: APIView, request: Request, **kwargs: Any) -> Response:
            return Response(fn(request, Args(request), **kwargs))

        attrs: dict[str, Any] = {m.lower(): handler for m in methods}
        attrs["__doc__"] = fn.__doc__
        attrs["__module__"] = fn.__module__
        return type(fn.__name__, (MlflowApi,), attrs).as_view()

    return wrap


def page_offset(token: str) -> int:
    """Return the offset a page token names (0 without a token); raise InvalidInput for a token we never made."""
    if not token:
        return 0
    try:
        data = validation.json_loads(base64.b64decode(token.encode() + b"===", validate=False).decode())
        offset = validation.integer(data["offset"], "offset")
    except (ValueError, TypeError, KeyError, InvalidInput):
        raise InvalidInput("Invalid page token, could not base64-decode")
    if offset < 0:
        raise InvalidInput("Invalid page token: negative offset")
    return offset


def page_token(offset: int) -> str:
    """Return the page token of the page that starts at `offset`."""
    return base64.b64encode(json.dumps({"offset": offset}).encode()).decode()


def paged(qs: Any, args: Args, *, default: int, high: int, low: int = 1) -> tuple[list[Any], str | None]:
    """Return one page of `qs` (max_results and page_token from `args`) and the next page's token, if any."""
    size = args.int("max_results", default=default, low=low, high=high)
    offset = page_offset(args.str("page_token"))
    rows = list(qs[offset: offset + size + 1])
    token = None
    if len(rows) > size:
        rows = rows[:size]
        token = page_token(offset + size)
    return rows, token


class ServerInfoApi(MlflowApi):
    """GET /api/3.0/mlflow/server-info: what this server supports (no multipart, no workspaces)."""

    def get(self, request: Request) -> Response:
        return Response({"store_type": "SqlStore", "workspaces_enabled": False,
                         "multipart_uploads_enabled": False, "multipart_downloads_enabled": False})


class EndpointNotFoundApi(MlflowApi):
    """Any other path under the MLflow prefixes: 401 to anonymous callers, JSON ENDPOINT_NOT_FOUND otherwise."""

    def _missing(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(errors.error_body("ENDPOINT_NOT_FOUND", f"No API endpoint at {request.method} {request.path}."),
                        status=404)

    get = post = put = patch = delete = _missing
