"""Security headers on every response, CORS off unless configured, HSTS in production."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from api import create_app
from shared import ledger
from shared.config import AppEnv, Config
from shared.db import Database
from tests.conftest import truncate_all

USER = {"X-Test-User-Email": "headers@example.com"}

REQUESTS: dict[str, Callable[[FlaskClient], TestResponse]] = {
    "health": lambda c: c.get("/health"),
    "openapi": lambda c: c.get("/openapi.json"),
    "wallet": lambda c: c.get("/wallet", headers=USER),
    "deposit 201": lambda c: c.post("/deposit", json={"material": "plastic", "units": 1}, headers=USER),
    "withdraw 422": lambda c: c.post("/withdraw", json={"amount_cents": 100, "bank_token": "tok_h"}, headers=USER),
    "history": lambda c: c.get("/transactions", headers=USER),
    "400": lambda c: c.post("/deposit", json={"units": "many"}, headers=USER),
    "401": lambda c: c.get("/wallet"),
    "404": lambda c: c.get("/no-such-page"),
    "405": lambda c: c.delete("/wallet", headers=USER),
    "413": lambda c: c.post("/deposit", data="x" * (64 * 1024 + 1), content_type="application/json", headers=USER),
    "415": lambda c: c.post("/deposit", data="material=plastic", headers=USER),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_every_response_carries_the_security_headers(client: FlaskClient, name: str) -> None:
    response = REQUESTS[name](client)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in response.headers  # not production
    assert "Access-Control-Allow-Origin" not in response.headers


def test_expected_statuses_of_the_header_checks(client: FlaskClient) -> None:
    statuses = {name: REQUESTS[name](client).status_code for name in REQUESTS}
    assert statuses == {
        "health": 200,
        "openapi": 200,
        "wallet": 200,
        "deposit 201": 201,
        "withdraw 422": 422,
        "history": 200,
        "400": 400,
        "401": 401,
        "404": 404,
        "405": 405,
        "413": 413,
        "415": 415,
    }


def test_json_is_locked_down_and_the_docs_page_may_load_swagger_ui(client: FlaskClient) -> None:
    assert client.get("/health").headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    docs = client.get("/docs").headers["Content-Security-Policy"]
    assert "https://cdn.jsdelivr.net" in docs and "frame-ancestors 'none'" in docs


def test_a_500_carries_them_too(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("unexpected")

    for name in ("deposit", "deposit_as"):  # a deposit by a known account, or by the caller's identity
        monkeypatch.setattr(ledger, name, broken)
    response = client.post("/deposit", json={"material": "plastic", "units": 1}, headers=USER)
    assert response.status_code == 500
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture
def make_app(config: Config, database: Database) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def make(**changes: Any) -> Flask:
        app = create_app(config.replace(**changes))
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["wallet_db"].dispose()
    truncate_all(database)


def test_hsts_in_production(make_app: Callable[..., Flask]) -> None:
    production = make_app(
        app_env=AppEnv.PRODUCTION,
        auth_dev_bypass=False,
        stripe_secret_key="sk_live_placeholder",
        metrics_token="m" * 16,
    )
    hsts = production.test_client().get("/health").headers["Strict-Transport-Security"]
    assert hsts == "max-age=63072000; includeSubDomains"


ORIGIN = "https://app.recyclingwallet.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


def test_cors_is_off_by_default(client: FlaskClient) -> None:
    assert "Access-Control-Allow-Origin" not in client.get("/health", headers={"Origin": ORIGIN}).headers
    preflight = client.options("/deposit", headers=PREFLIGHT)
    assert not [name for name, _ in preflight.headers.items() if name.startswith("Access-Control-")]


def test_cors_origins_enables_exactly_the_listed_origins(make_app: Callable[..., Flask]) -> None:
    config = Config.from_env({"CORS_ORIGINS": f"{ORIGIN}, https://admin.example"})
    assert config.cors_origins == (ORIGIN, "https://admin.example")
    client = make_app(cors_origins=config.cors_origins).test_client()

    allowed = client.get("/wallet", headers={**USER, "Origin": ORIGIN})
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Origin" in allowed.headers["Vary"]
    assert "Access-Control-Allow-Credentials" not in allowed.headers  # bearer tokens, no cookies
    exposed = allowed.headers["Access-Control-Expose-Headers"]
    assert "Retry-After" in exposed and "Idempotent-Replayed" in exposed and "Location" in exposed

    preflight = client.options("/deposit", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "idempotency-key" in preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]

    stranger = client.get("/wallet", headers={**USER, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in stranger.headers
    assert (
        "Access-Control-Allow-Origin"
        not in client.options("/deposit", headers={**PREFLIGHT, "Origin": "https://evil.example"}).headers
    )
