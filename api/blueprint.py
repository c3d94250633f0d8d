"""The flask-smorest Blueprint every resource uses: argument errors become 400 validation_error."""

from __future__ import annotations

from typing import Any

import flask_smorest
from webargs.flaskparser import FlaskParser


class _Parser(FlaskParser):
    # webargs answers 422 by default; a malformed request is a 400 in this API.
    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req: Any, schema: Any) -> Any:
        try:
            return super().load_json(req, schema)
        except (RecursionError, ValueError) as exc:
            # Well-formed JSON that Python's json module still refuses to load (webargs only handles syntax
            # errors): nesting deeper than the recursion limit, integers over sys.get_int_max_str_digits().
            self._handle_invalid_json_error(exc, req)  # type: ignore[arg-type]


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        # webargs instantiates a schema class on every request (a fifth of argument parsing in the profile);
        # marshmallow schemas keep no per-load state, so one instance per view is reused.
        return super().arguments(schema() if isinstance(schema, type) else schema, *args, **kwargs)

    def protected(self) -> Blueprint:
        """Require an authenticated caller on every view of this blueprint."""
        from api.auth import authenticate

        self.before_request(authenticate)
        return self

    def json_body(self, schema: Any) -> Any:
        return self.arguments(schema, location="json")
