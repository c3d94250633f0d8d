"""API fixtures: a funded caller, a stranger, one withdrawal each, all made through the API itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import bypass_headers

FUNDED_EMAIL = "user@example.com"  # bypass_headers() default
STRANGER_EMAIL = "stranger@example.com"
ERROR_KEYS = {"code", "message", "details"}


@dataclass(frozen=True)
class Seeded:
    own_withdrawal_id: str
    strangers_withdrawal_id: str
    balance_cents: int


@pytest.fixture
def seeded(client: FlaskClient) -> Seeded:
    for email in (FUNDED_EMAIL, STRANGER_EMAIL):
        deposit = client.post("/deposit", json={"material": "aluminum", "units": 100}, headers=bypass_headers(email))
        assert deposit.status_code == 201, deposit.json
    own = client.post("/withdraw", json={"amount_cents": 200, "bank_token": "tok_a"}, headers=bypass_headers())
    theirs = client.post(
        "/withdraw", json={"amount_cents": 300, "bank_token": "tok_b"}, headers=bypass_headers(STRANGER_EMAIL)
    )
    assert own.status_code == theirs.status_code == 202
    return Seeded(own.json["withdrawal"]["id"], theirs.json["withdrawal"]["id"], 800)


def assert_error(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message", "details"}}; returns the details."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.json
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == ERROR_KEYS, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return error["details"]
