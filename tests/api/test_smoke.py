from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import bypass_headers


def test_health(client: FlaskClient) -> None:
    assert client.get("/health").json == {"status": "ok"}


def test_deposit_then_withdraw(client: FlaskClient) -> None:
    headers = bypass_headers()
    assert client.post("/deposit", json={"material": "aluminum", "units": 50}, headers=headers).status_code == 201
    response = client.post("/withdraw", json={"amount_cents": 300, "bank_token": "tok_x"}, headers=headers)
    assert response.status_code == 202
    assert response.json["new_balance_cents"] == 200
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 200
