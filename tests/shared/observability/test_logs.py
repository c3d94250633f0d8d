from __future__ import annotations

import json
import logging
import sys

from shared.observability import context
from shared.observability.logs import JsonFormatter, configure_logging


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("wallet.test", logging.WARNING, __file__, 1, "paid %s", ("w-1",), None)
    record.__dict__.update(extra)
    return record


def test_one_json_object_per_line_with_extras() -> None:
    line = JsonFormatter().format(_record(withdrawal_id="w-1", attempt=2))
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["level"] == "WARNING" and payload["logger"] == "wallet.test"
    assert payload["message"] == "paid w-1"
    assert payload["withdrawal_id"] == "w-1" and payload["attempt"] == 2
    assert payload["ts"].endswith("Z")


def test_request_id_of_the_work_in_progress() -> None:
    with context.bound("req-42", user_id="u-1"):
        payload = json.loads(JsonFormatter().format(_record()))
    assert payload["request_id"] == "req-42" and payload["user_id"] == "u-1"
    assert "request_id" not in json.loads(JsonFormatter().format(_record()))


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    payload = json.loads(JsonFormatter().format(record))
    assert "RuntimeError: boom" in payload["exc_info"]


def test_configure_logging_is_idempotent_and_leaves_other_handlers() -> None:
    root = logging.getLogger()
    foreign = logging.NullHandler()
    root.addHandler(foreign)
    level = root.level
    try:
        configure_logging("DEBUG")
        configure_logging("WARNING")
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1
        assert foreign in root.handlers
        assert root.level == logging.WARNING
    finally:
        root.removeHandler(foreign)
        root.setLevel(level)


def test_request_ids_are_validated_and_bounded() -> None:
    assert context.accept_request_id("abc-123_X.y:z") == "abc-123_X.y:z"
    for bad in ("has space", "line\nbreak", "x" * (context.MAX_REQUEST_ID_LENGTH + 1), "", "-leading", "<script>"):
        generated = context.accept_request_id(bad)
        assert generated != bad and len(generated) == 32
    assert len(context.accept_request_id("x" * context.MAX_REQUEST_ID_LENGTH)) == context.MAX_REQUEST_ID_LENGTH
