"""Secrets never appear in logs or error bodies: a full flow against gunicorn, every log line captured.

The server runs with LOG_LEVEL=DEBUG and the gunicorn access log on, with a Stripe key and webhook secret
configured; the flow sends ID tokens, bank tokens and keys in every place a client could put them.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from shared import ledger
from shared.db import Database
from tests.conftest import truncate_all
from tests.live_server import LiveServer, start_live_server
from tests.server_env import server_env


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


NONCE = uuid.uuid4().hex[:12]
ID_TOKEN = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64({'sub': NONCE, 'aud': 'demo-test'})}.c2lnLXtOTkNFfQ"
BANK_TOKEN = f"btok_{NONCE}"
CARD_STYLE_TOKEN = f"tok_{NONCE}"
PLAIN_BANK_TOKEN = f"acct-{NONCE}-savings"  # a bank token in no known format: only its field name gives it away
STRIPE_KEY = f"sk_test_{NONCE}STRIPEKEY"
WEBHOOK_SECRET = f"whsec_{NONCE}WEBHOOK"
SECRET_KEY = f"flask-secret-{NONCE}"
SECRETS = [ID_TOKEN, BANK_TOKEN, CARD_STYLE_TOKEN, PLAIN_BANK_TOKEN, STRIPE_KEY, WEBHOOK_SECRET, SECRET_KEY]


@pytest.fixture
def server(database_url: str, database: Database) -> Iterator[LiveServer]:
    env = server_env(
        database_url,
        LOG_LEVEL="DEBUG",
        GUNICORN_ACCESSLOG="-",
        SECRET_KEY=SECRET_KEY,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    live = start_live_server(env, workers=1, threads=2)
    try:
        yield live
    finally:
        live.stop()
        truncate_all(database)


def _full_flow(base: str) -> list[requests.Response]:
    user = {"X-Test-User-Email": f"logs-{NONCE}@example.com"}
    session = requests.Session()
    post: Any = lambda path, **kw: session.post(f"{base}{path}", timeout=15, **kw)  # noqa: E731
    get: Any = lambda path, **kw: session.get(f"{base}{path}", timeout=15, **kw)  # noqa: E731
    responses = [
        get("/wallet", headers={"Authorization": f"Bearer {ID_TOKEN}"}),
        get("/wallet", headers={"Authorization": f"Bearer {STRIPE_KEY}"}),
        get(f"/wallet?id_token={ID_TOKEN}", headers=user),
        post("/deposit", json={"material": "aluminum", "units": 100}, headers=user),
        post("/withdraw", json={"amount_cents": 100, "bank_token": BANK_TOKEN}, headers=user),
        post("/withdraw", json={"amount_cents": 100, "bank_token": PLAIN_BANK_TOKEN}, headers=user),
        post("/withdraw", json={"amount_cents": 900_000, "bank_token": CARD_STYLE_TOKEN}, headers=user),
        post("/withdraw", json={"amount_cents": "lots", "bank_token": PLAIN_BANK_TOKEN}, headers=user),
        post("/withdraw", json={"amount_cents": 100, "bank_token": "x" * 300, "key": STRIPE_KEY}, headers=user),
        post(
            "/withdraw",
            data=f'{{"amount_cents": 100, "bank_token": "{PLAIN_BANK_TOKEN}"',
            headers={**user, "Content-Type": "application/json"},
        ),
        post(
            "/withdraw",
            json={"amount_cents": 150, "bank_token": PLAIN_BANK_TOKEN},
            headers={**user, "Idempotency-Key": f"again-{NONCE}"},
        ),
        post(
            "/withdraw",
            json={"amount_cents": 150, "bank_token": PLAIN_BANK_TOKEN},
            headers={**user, "Idempotency-Key": f"again-{NONCE}"},
        ),
        post("/webhooks/stripe", data=json.dumps({"secret": WEBHOOK_SECRET}), headers={"Stripe-Signature": "t=1,v1=0"}),
        get("/withdrawals", headers=user),
        get("/transactions", headers=user),
    ]
    withdrawal_id = responses[4].json()["withdrawal"]["id"]
    responses.append(get(f"/withdrawals/{withdrawal_id}", headers=user))
    return responses


def test_a_full_flow_leaks_no_secret_into_logs_or_bodies(server: LiveServer, database: Database) -> None:
    responses = _full_flow(server.url)
    statuses = [r.status_code for r in responses]
    assert statuses[:12] == [401, 401, 200, 201, 202, 202, 422, 400, 400, 400, 202, 202]
    server.stop()  # flush and close every log stream
    logs = server.log()

    assert "POST /withdraw" in logs and "GET /wallet" in logs, "the access log was captured"
    assert "Booting worker" in logs, "gunicorn's error log was captured"
    assert "[REDACTED]" in logs
    for secret in SECRETS:
        assert secret not in logs, f"{secret!r} leaked into the logs"
        for response in responses:
            assert secret not in response.text, f"{secret!r} leaked into a {response.status_code} body"
    with database.session() as session:
        assert ledger.verify(session) == []


def test_an_unexpected_error_logs_no_secret_and_says_nothing_of_it(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(f"provider rejected {BANK_TOKEN} using {STRIPE_KEY} for bank_token={PLAIN_BANK_TOKEN}")

    monkeypatch.setattr(ledger, "request_withdrawal", explode)
    user = {"X-Test-User-Email": f"boom-{NONCE}@example.com"}
    response = client.post("/withdraw", json={"amount_cents": 100, "bank_token": BANK_TOKEN}, headers=user)

    assert response.status_code == 500
    assert response.json["error"]["code"] == "internal_error"
    logged = "\n".join(caplog.text.splitlines()) + "\n".join(r.exc_text or "" for r in caplog.records)
    assert "RuntimeError" in logged, "the failure itself is logged"
    for secret in SECRETS:
        assert secret not in logged
        assert secret not in response.get_data(as_text=True)
