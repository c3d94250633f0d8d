"""One error shape for every failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from shared.idempotency import IdempotentRequestInProgress
from shared.ledger import errors as ledger_errors

log = logging.getLogger(__name__)


class APIError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


class ValidationFailed(APIError):
    status = 400
    code = "validation_error"


class Unauthenticated(APIError):
    status = 401
    code = "unauthenticated"


class Forbidden(APIError):
    status = 403
    code = "forbidden"


class AuthUnavailable(APIError):
    status = 503
    code = "auth_unavailable"


class UnsupportedMediaType(APIError):
    status = 415
    code = "unsupported_media_type"


# Domain errors are business-rule refusals (422, their own code) unless named here.
LEDGER_STATUS: dict[type[ledger_errors.LedgerError], tuple[int, str | None]] = {
    ledger_errors.NotFound: (404, None),
    ledger_errors.InvalidCursor: (400, "validation_error"),  # a bad query argument, like a bad limit
    ledger_errors.InvalidTransition: (409, None),
    IdempotentRequestInProgress: (409, None),
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: Any = None
) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    for name, value in dict(headers or {}).items():
        response.headers[name] = value
    return response


def _handle_api_error(exc: APIError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _handle_ledger_error(exc: ledger_errors.LedgerError) -> Response:
    status, code = next((v for cls, v in LEDGER_STATUS.items() if isinstance(exc, cls)), (422, None))
    return error_response(status, code or exc.code, exc.message, exc.details)


def _handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    if "messages" in data:  # webargs rejected the request's arguments
        messages = data["messages"]
        # webargs nests by location ({"json": {...}}); one location per endpoint, so flatten it.
        if isinstance(messages, dict) and len(messages) == 1:
            messages = next(iter(messages.values()))
        if isinstance(messages, dict) and "_schema" in messages and len(messages) == 1:
            messages = {"body": messages["_schema"]}
        if not isinstance(messages, dict):
            messages = {"body": messages}
        return error_response(400, "validation_error", "the request is not valid", messages)
    code = HTTP_CODES.get(status, "http_error")
    message = exc.description or exc.name
    headers = {}
    if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return error_response(status, code, message, headers=headers)


def _handle_validation_error(exc: ValidationError) -> Response:
    messages = exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}
    return error_response(400, "validation_error", "the request is not valid", messages)


def _handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    log.exception("unhandled error")
    return error_response(500, "internal_error", "an unexpected error occurred; please retry later")


def client_error_response(exc: Exception) -> Response | None:
    """The response for an error the client caused (4xx), or None when the server is at fault."""
    response: Response | None = None
    if isinstance(exc, APIError):
        response = _handle_api_error(exc)
    elif isinstance(exc, ledger_errors.LedgerError):
        response = _handle_ledger_error(exc)
    elif isinstance(exc, ValidationError):
        response = _handle_validation_error(exc)
    elif isinstance(exc, HTTPException):
        response = _handle_http_exception(exc)
    return response if response is not None and response.status_code < 500 else None


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(APIError, _handle_api_error)
    app.register_error_handler(ledger_errors.LedgerError, _handle_ledger_error)
    app.register_error_handler(ValidationError, _handle_validation_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
