"""The flask-smorest Blueprint every resource uses: argument errors become 400 validation_error."""

from __future__ import annotations

from typing import Any

import flask_smorest
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import RequestEntityTooLarge


class _Parser(FlaskParser):
    # webargs answers 422 by default; a malformed request is a 400 in this API.
    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req: Any, schema: Any) -> Any:
        _refuse_truncated_stream(req)
        try:
            return super().load_json(req, schema)
        except (RecursionError, ValueError) as exc:
            # Well-formed JSON that Python's json module still refuses to load (webargs only handles syntax
            # errors): nesting deeper than the recursion limit, integers over sys.get_int_max_str_digits().
            self._handle_invalid_json_error(exc, req)  # type: ignore[arg-type]


def _refuse_truncated_stream(req: Any) -> None:
    """413 for a chunked body (no Content-Length) that reaches MAX_CONTENT_LENGTH.

    Werkzeug stops reading such a stream at the limit without raising, so the view would see the body cut
    short and answer 400 "Invalid JSON body" instead of 413.
    """
    limit = req.max_content_length
    if limit is not None and not req.content_length and len(req.get_data(cache=True)) >= limit:
        raise RequestEntityTooLarge()


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()
    _requires_auth = False

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        # webargs instantiates a schema class on every request (a fifth of argument parsing in the profile);
        # marshmallow schemas keep no per-load state, so one instance per view is reused.
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    def protected(self) -> Blueprint:
        """Require an authenticated caller on every view of this blueprint (and say so in the OpenAPI doc)."""
        from api.auth import authenticate

        self.before_request(authenticate)
        self._requires_auth = True
        return self

    def route(self, rule: str, **kwargs: Any) -> Any:
        register = super().route(rule, **kwargs)
        if not self._requires_auth:
            return register
        document_401 = self.alt_response(401, response="UNAUTHORIZED")
        return lambda view: register(document_401(view))

    def json_body(self, schema: Any) -> Any:
        return self.arguments(schema, location="json")
