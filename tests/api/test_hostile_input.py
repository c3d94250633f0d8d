"""Hostile input found by the correctness review: each got a 500 from the server, and must be a 4xx that moves
nothing."""

from __future__ import annotations

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
