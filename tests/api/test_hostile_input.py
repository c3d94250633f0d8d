"""Hostile input found by the correctness review: each got a 500 from the server, and must be a 4xx that moves
nothing."""

from __future__ import annotations

import base64
import uuid

import pytest
from flask.testing import FlaskClient

from tests.factories import bypass_headers

USER = bypass_headers("hostile@example.com")


def _balance(client: FlaskClient) -> int:
    return int(client.get("/wallet", headers=USER).get_json()["balance_cents"])


def _funded(client: FlaskClient) -> int:
    assert client.post("/deposit", json={"material": "aluminum", "units": 100}, headers=USER).status_code == 201
    return _balance(client)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 20_000 + "]" * 20_000, id="deeply-nested-array"),
        pytest.param('{"material": "aluminum", "units": 1' + "0" * 5000 + "}", id="integer-over-4300-digits"),
    ],
)
@pytest.mark.parametrize("path", ["/deposit", "/withdraw"])
def test_json_the_parser_cannot_load_is_a_validation_error(client: FlaskClient, path: str, body: str) -> None:
    before = _funded(client)
    response = client.post(path, data=body, content_type="application/json", headers=USER)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "validation_error"
    assert _balance(client) == before


@pytest.mark.parametrize(
    "raw_token",
    [
        pytest.param('"tok\\u0000x"', id="nul"),
        pytest.param('"tok\\ud800"', id="lone-surrogate"),
        pytest.param('"tok\\u0007x"', id="control-character"),
    ],
)
def test_a_bank_token_that_cannot_be_stored_is_a_validation_error(client: FlaskClient, raw_token: str) -> None:
    before = _funded(client)
    body = '{"amount_cents": 200, "bank_token": ' + raw_token + "}"
    response = client.post("/withdraw", data=body, content_type="application/json", headers=USER)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "bank_token" in response.get_json()["error"]["details"]
    assert _balance(client) == before


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize("path", ["/transactions", "/withdrawals"])
def test_a_cursor_outside_the_datetime_range_is_a_validation_error(client: FlaskClient, path: str, stamp: str) -> None:
    cursor = base64.urlsafe_b64encode(f"{stamp}|{uuid.uuid4()}".encode()).decode().rstrip("=")
    response = client.get(f"{path}?cursor={cursor}", headers=USER)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "validation_error"


def test_a_bypass_email_too_long_for_a_user_id_is_refused(client: FlaskClient) -> None:
    response = client.get("/wallet", headers=bypass_headers("a" * 200 + "@example.com"))
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "unauthenticated"
