"""``Idempotency-Key`` on money-moving POSTs: the ``@idempotent`` view decorator (storage lives in shared/).

Without the header a request runs as usual. With it, the first request runs and its response is stored in
the same database transaction as the money it moved; a retry with the same key and body gets that response
back with ``Idempotent-Replayed: true`` and moves nothing. The same key with another body is 422
``idempotency_key_reused``; while the first request is still running, 409 ``idempotency_request_in_progress``.
A 5xx stores nothing, so the client may retry with the same key. Keys are per user and last 24 hours.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Response, request
from flask_smorest import Blueprint

from api.auth import current_account
from api.errors import ValidationFailed, client_error_response
from api.extensions import db_session
from shared import idempotency

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII, space included: what any HTTP client can send verbatim and any log can show.
_VALID_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}")
# Response headers a replay repeats besides the body (Location of a new withdrawal).
REPLAYED_RESPONSE_HEADERS = ("Location",)


OPENAPI_DOC = {
    "parameters": [
        {
            "in": "header",
            "name": HEADER,
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
            "description": "Makes retries safe: the same key and body within 24 hours replay the first response "
            f"(with `{REPLAYED_HEADER}: true`) and move nothing again. Scoped to the caller.",
        }
    ],
    "responses": {
        "409": {"description": "`idempotency_request_in_progress`: the first request with this key is still running"},
        "422": {"description": "`idempotency_key_reused` (the key was used for another request), or a business rule"},
    },
}


class _ServerErrorResponse(Exception):
    """The view returned (rather than raised) a 5xx: treat it like a raised server error."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def idempotent(view: F) -> F:
    """Honor ``Idempotency-Key`` on this view. Place it under the body-parsing decorator (``@blp.json_body``):
    a request that fails validation never claims a key; and over ``@blp.response``, to store what was sent.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = _key_from_header()
        if key is None:
            return view(*args, **kwargs)
        session = db_session()
        outcome = idempotency.claim(
            session,
            current_account().user_id,
            key,
            _request_fingerprint(),
            method=request.method,
            path=request.path,
        )
        if isinstance(outcome, idempotency.StoredResponse):
            return _replay(outcome)
        return _run(view, args, kwargs, outcome)

    return cast(F, Blueprint.doc(**OPENAPI_DOC)(wrapper))


def _key_from_header() -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _VALID_KEY.fullmatch(key):
        raise ValidationFailed(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            details={HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} printable ASCII characters."]},
        )
    return key


def _request_fingerprint() -> str:
    # Canonical JSON, so the same body with other key order or spacing counts as the same request.
    body = request.get_json(silent=True)
    raw = request.get_data() if body is None else json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return idempotency.fingerprint(request.method, request.path, raw)


def _run(view: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], held: idempotency.Claim) -> Response:
    session = db_session()
    produced: list[Response] = []

    def work() -> idempotency.StoredResponse:
        response = view(*args, **kwargs)
        if response.status_code >= 500:
            raise _ServerErrorResponse(response)
        produced.append(response)
        return _stored(response)

    try:
        idempotency.complete(session, held, work)
    except idempotency.IdempotentRequestInProgress:
        raise  # another request took the key over: nothing moved here, and the key is not ours to touch
    except _ServerErrorResponse as failure:
        _release(session, held)
        return failure.response
    except Exception as exc:
        refusal = client_error_response(exc)
        if refusal is None:
            _release(session, held)
            raise
        idempotency.record(session, held, _stored(refusal))
        return refusal
    return produced[0]


def _release(session: Any, held: idempotency.Claim) -> None:
    try:
        idempotency.release(session, held)
    except Exception:
        # The original failure matters more; the lock expires on its own after idempotency.LOCK_TIMEOUT.
        log.warning("could not release an idempotency key after a server error", exc_info=True)


def _stored(response: Response) -> idempotency.StoredResponse:
    headers = {name: response.headers[name] for name in REPLAYED_RESPONSE_HEADERS if name in response.headers}
    return idempotency.StoredResponse(response.status_code, response.get_data(as_text=True), headers)


def _replay(stored: idempotency.StoredResponse) -> Response:
    response = Response(stored.body, status=stored.status, mimetype="application/json")
    for name, value in stored.headers.items():
        response.headers[name] = value
    response.headers[REPLAYED_HEADER] = "true"
    return response
