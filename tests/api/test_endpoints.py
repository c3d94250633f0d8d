"""Happy paths: the seed's response shapes, status codes and headers for every endpoint."""

from __future__ import annotations

import re
import uuid

from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from shared.config import Config
from shared.db import Database
from tests.api.conftest import assert_error
from tests.conftest import truncate_all
from tests.factories import bypass_headers

ISO_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
H = bypass_headers()


def test_health(client: FlaskClient) -> None:
    response = client.get("/health")
    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_first_request_creates_an_empty_wallet(client: FlaskClient) -> None:
    body = client.get("/wallet", headers=H).json
    assert set(body) == {"id", "balance_cents", "balance_dollars", "updated_at"}
    uuid.UUID(body["id"])
    assert (body["balance_cents"], body["balance_dollars"]) == (0, 0)
    assert ISO_UTC_MS.match(body["updated_at"])
    assert client.get("/wallet", headers=H).json["id"] == body["id"]  # the same wallet next time


def test_deposit_has_the_seed_shape(client: FlaskClient) -> None:
    response = client.post("/deposit", json={"material": "plastic", "units": 10}, headers=H)

    assert response.status_code == 201
    body = response.json
    assert set(body) == {"success", "transaction", "new_balance_cents", "new_balance_dollars"}
    assert (body["success"], body["new_balance_cents"], body["new_balance_dollars"]) == (True, 50, 0.5)
    txn = body["transaction"]
    assert {k: txn[k] for k in ("transaction_type", "material", "units", "amount_cents", "amount_dollars")} == {
        "transaction_type": "deposit",
        "material": "plastic",
        "units": 10,
        "amount_cents": 50,
        "amount_dollars": 0.5,
    }
    uuid.UUID(txn["id"])
    assert ISO_UTC_MS.match(txn["created_at"])


def test_aluminum_pays_ten_cents_a_unit(client: FlaskClient) -> None:
    body = client.post("/deposit", json={"material": "aluminum", "units": 125}, headers=H).json
    assert (body["transaction"]["amount_cents"], body["new_balance_cents"], body["new_balance_dollars"]) == (
        1250,
        1250,
        12.5,
    )
    assert client.get("/wallet", headers=H).json["balance_cents"] == 1250


def test_rates_come_from_config(config: Config, database: Database) -> None:
    app = create_app(config.replace(plastic_rate_cents=7, aluminum_rate_cents=12))
    try:
        client = app.test_client()
        assert (
            client.post("/deposit", json={"material": "plastic", "units": 10}, headers=H).json["new_balance_cents"]
            == 70
        )
        assert (
            client.post("/deposit", json={"material": "aluminum", "units": 1}, headers=H).json["new_balance_cents"]
            == 82
        )
    finally:
        app.extensions["wallet_db"].dispose()
        truncate_all(database)


def test_withdraw_is_accepted_pending_with_a_location(client: FlaskClient) -> None:
    client.post("/deposit", json={"material": "aluminum", "units": 125}, headers=H)

    response = client.post("/withdraw", json={"amount_cents": 1000, "bank_token": "tok_test_bank_account"}, headers=H)

    assert response.status_code == 202
    body = response.json
    assert (body["success"], body["new_balance_cents"], body["new_balance_dollars"]) == (True, 250, 2.5)
    withdrawal = body["withdrawal"]
    assert response.headers["Location"] == f"/withdrawals/{withdrawal['id']}"
    assert {
        k: withdrawal[k] for k in ("amount_cents", "amount_dollars", "status", "failure_code", "failure_message")
    } == {
        "amount_cents": 1000,
        "amount_dollars": 10.0,
        "status": "pending",
        "failure_code": None,
        "failure_message": None,
    }
    assert "tok_test_bank_account" not in response.get_data(as_text=True)

    fetched = client.get(response.headers["Location"], headers=H)
    assert fetched.status_code == 200
    assert fetched.json == withdrawal
    for key in ("id", "amount_cents", "amount_dollars", "status", "failure_code", "failure_message"):
        assert key in fetched.json
    assert ISO_UTC_MS.match(fetched.json["created_at"]) and ISO_UTC_MS.match(fetched.json["updated_at"])
    assert "bank_token" not in fetched.json


def test_history_lists_both_sides_of_the_ledger(client: FlaskClient) -> None:
    client.post("/deposit", json={"material": "aluminum", "units": 50}, headers=H)
    withdrawal = client.post("/withdraw", json={"amount_cents": 300, "bank_token": "tok_x"}, headers=H).json

    transactions = client.get("/transactions", headers=H).json
    assert [t["amount_cents"] for t in transactions["transactions"]] == [-300, 500]
    assert transactions["transactions"][0]["transaction_type"] == "withdrawal"
    assert transactions["transactions"][0]["withdrawal_id"] == withdrawal["withdrawal"]["id"]
    assert transactions["next_cursor"] is None

    withdrawals = client.get("/withdrawals", headers=H).json
    assert withdrawals == {"withdrawals": [withdrawal["withdrawal"]], "next_cursor": None}
    assert "tok_x" not in client.get("/withdrawals", headers=H).get_data(as_text=True)


def test_users_only_see_their_own_money(client: FlaskClient) -> None:
    client.post("/deposit", json={"material": "aluminum", "units": 50}, headers=H)
    other = bypass_headers("other@example.com")
    assert client.get("/wallet", headers=other).json["balance_cents"] == 0
    assert client.get("/transactions", headers=other).json == {"transactions": [], "next_cursor": None}
    assert client.get("/withdrawals", headers=other).json == {"withdrawals": [], "next_cursor": None}


def test_an_unexpected_error_is_500_in_the_error_shape_without_internals(app: Flask) -> None:
    @app.get("/__boom")
    def boom() -> None:
        raise RuntimeError("secret internals: postgresql://user:password@db")

    response = app.test_client().get("/__boom")

    details = assert_error(response, 500, "internal_error")
    assert details == {}
    assert "secret" not in response.get_data(as_text=True)
