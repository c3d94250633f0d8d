"""The request id (and user id) of the work in progress, carried from an HTTP request into its tasks' logs."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# Long enough for a UUID, a W3C trace id or an AWS trace header; short enough to be harmless in every log line.
MAX_REQUEST_ID_LENGTH = 128
# Letters, digits and a few separators: nothing that could forge a log line or a header.
_REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]*")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("user_id", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_valid_request_id(value: str) -> bool:
    return len(value) <= MAX_REQUEST_ID_LENGTH and _REQUEST_ID_PATTERN.fullmatch(value) is not None


def accept_request_id(raw: str | None) -> str:
    """The caller's id when it is well formed, else a fresh one (a bad id is replaced, never an error)."""
    if raw is not None:
        raw = raw.strip()
        if is_valid_request_id(raw):
            return raw
    return new_request_id()


def current_request_id() -> str | None:
    return request_id_var.get()


@contextmanager
def bound(request_id: str | None, user_id: str | None = None) -> Iterator[None]:
    """Bind ids for the duration of a block (a task run); restores the previous values after."""
    request_token = request_id_var.set(request_id)
    user_token = user_id_var.set(user_id)
    try:
        yield
    finally:
        request_id_var.reset(request_token)
        user_id_var.reset(user_token)
