"""The serving gateway's HTTP face: `POST /serve/<endpoint>/predict`, plain Django for the least overhead."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from deployments import serving
from governance.middleware import REQUEST_ID
from registry import validation


def _error(status: int, code: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": {"code": code, "message": message, "details": None}}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="stratum-serving"'
    return response


@csrf_exempt  # token-authenticated; no browser session is ever accepted here
def predict(request: HttpRequest, endpoint: str) -> JsonResponse:
    """Answer with the predictions of the version the endpoint routes this request to."""
    try:
        # Authenticate before anything else: an anonymous caller learns nothing, not even what a valid body is.
        token = serving.authenticate(request.headers.get("Authorization", ""))
        if request.method != "POST":
            response = _error(405, "METHOD_NOT_ALLOWED", "Send predictions requests with POST.")
            response["Allow"] = "POST"
            return response
        supplied = request.headers.get("X-Request-Id")
        if supplied is not None and not REQUEST_ID.fullmatch(supplied):
            # the caller's own id is honoured when well-formed; anything else is refused, never silently replaced
            raise serving.GatewayError(400, "INVALID_PARAMETER_VALUE", "X-Request-Id must be 8 to 64 letters, "
                                       "digits, '.', '_', ':' or '-'; leave it out and the gateway assigns one.")
        try:
            body = request.body
        except RequestDataTooBig:
            raise serving.GatewayError(413, "PAYLOAD_TOO_LARGE", f"The body is larger than "
                                       f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; split the batch.")
        try:
            payload = validation.json_loads(body.decode())
        except (ValueError, UnicodeDecodeError):
            raise serving.GatewayError(400, "MALFORMED_REQUEST", "The body is not valid JSON.")
        data, headers = serving.predict(endpoint, payload, token=token,
                                        headers=request.headers, request_id=getattr(request, "request_id", None))
    except serving.GatewayError as error:
        return _error(error.status, error.code, error.message)
    response = JsonResponse(data)
    for name, value in headers.items():
        response[name] = value
    return response
