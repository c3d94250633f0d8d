"""Idempotency-Key on POST /deposit and POST /withdraw, through the Flask app."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

import api.withdrawals
from api.auth import BYPASS_UID_PREFIX
from shared import idempotency, ledger
from shared.db import Database, utcnow
from shared.idempotency import keys as idempotency_keys
from shared.models import IdempotencyKey, Transaction, Withdrawal

DEPOSIT = {"material": "aluminum", "units": 10}
WITHDRAW = {"amount_cents": 100, "bank_token": "tok_idem"}


def _user() -> tuple[str, dict[str, str]]:
    email = f"idem-{uuid.uuid4().hex[:10]}@example.com"
    return email, {"X-Test-User-Email": email}


def _with_key(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def _count(database: Database, model: Any) -> int:
    with database.session() as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def _account(database: Database, email: str) -> ledger.Account:
    with database.session() as session:
        return ledger.get_or_create_account(session, BYPASS_UID_PREFIX + email, email)


def test_a_replayed_deposit_returns_the_first_response_and_moves_nothing(
    client: FlaskClient, database: Database
) -> None:
    _, headers = _user()
    first = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "dep-1"))
    again = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "dep-1"))

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _count(database, Transaction) == 1
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 100


def test_a_replayed_withdrawal_repeats_status_body_and_location(client: FlaskClient, database: Database) -> None:
    _, headers = _user()
    client.post("/deposit", json=DEPOSIT, headers=headers)
    first = client.post("/withdraw", json=WITHDRAW, headers=_with_key(headers, "wd-1"))
    again = client.post("/withdraw", json=WITHDRAW, headers=_with_key(headers, "wd-1"))

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json == first.json
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(database, Withdrawal) == 1
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 0


def test_the_same_json_written_differently_is_the_same_request(client: FlaskClient) -> None:
    _, headers = _user()
    headers = _with_key(headers, "spacing")
    first = client.post("/deposit", json=DEPOSIT, headers=headers)
    reordered = client.post(
        "/deposit", data='{ "units": 10,\n "material": "aluminum" }', content_type="application/json", headers=headers
    )
    assert first.status_code == reordered.status_code == 201
    assert reordered.headers["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_refused(client: FlaskClient, database: Database) -> None:
    _, headers = _user()
    client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "reuse"))
    refused = client.post("/deposit", json={**DEPOSIT, "units": 11}, headers=_with_key(headers, "reuse"))
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "idempotency_key_reused"
    other_path = client.post("/withdraw", json=WITHDRAW, headers=_with_key(headers, "reuse"))
    assert other_path.status_code == 422
    assert other_path.json["error"]["code"] == "idempotency_key_reused"
    assert _count(database, Transaction) == 1


def test_the_same_key_while_the_first_request_runs_is_409(client: FlaskClient, database: Database) -> None:
    email, headers = _user()
    account = _account(database, email)
    body = json.dumps(DEPOSIT, sort_keys=True, separators=(",", ":")).encode()
    with database.session() as session:  # the first request has claimed the key and is still running
        held = idempotency.claim(
            session,
            account.user_id,
            "busy",
            idempotency.fingerprint("POST", "/deposit", body),
            method="POST",
            path="/deposit",
        )
    assert isinstance(held, idempotency.Claim)

    response = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "busy"))
    assert response.status_code == 409
    assert response.json["error"]["code"] == "idempotency_request_in_progress"
    assert _count(database, Transaction) == 0


def test_a_key_stuck_in_flight_by_a_crash_runs_once_after_the_lock_times_out(
    client: FlaskClient, database: Database
) -> None:
    email, headers = _user()
    account = _account(database, email)
    body = json.dumps(DEPOSIT, sort_keys=True, separators=(",", ":")).encode()
    with database.session() as session:
        idempotency.claim(
            session,
            account.user_id,
            "crashed",
            idempotency.fingerprint("POST", "/deposit", body),
            method="POST",
            path="/deposit",
            now=utcnow() - idempotency.LOCK_TIMEOUT - timedelta(seconds=1),
        )

    first = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "crashed"))
    again = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "crashed"))
    assert (first.status_code, again.status_code) == (201, 201)
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert _count(database, Transaction) == 1


def test_an_expired_key_starts_a_new_request(client: FlaskClient, database: Database) -> None:
    _, headers = _user()
    assert client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "old")).status_code == 201
    with database.session() as session:
        session.execute(update(IdempotencyKey).values(created_at=utcnow() - idempotency.KEY_TTL - timedelta(minutes=1)))
        session.commit()

    later = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "old"))
    assert later.status_code == 201
    assert "Idempotent-Replayed" not in later.headers
    assert _count(database, Transaction) == 2


@pytest.mark.parametrize(
    "key",
    ["", "x" * 256, "bad\x01key", "tab\tkey", "del\x7f", "clé"],
    ids=["empty", "256-chars", "control", "tab", "del", "non-ascii"],
)
def test_an_invalid_key_is_400_and_moves_nothing(app: Flask, database: Database, key: str) -> None:
    _, headers = _user()
    environ = {"HTTP_IDEMPOTENCY_KEY": key}  # raw, so the test client cannot reject or re-encode it
    response = app.test_client().post("/deposit", json=DEPOSIT, headers=headers, environ_overrides=environ)
    assert response.status_code == 400
    assert response.json["error"]["code"] == "validation_error"
    assert "Idempotency-Key" in response.json["error"]["details"]
    assert _count(database, Transaction) == 0


@pytest.mark.parametrize("key", ["x" * 255, "a", "order 42/retry:1~!"], ids=["255-chars", "one-char", "punctuation"])
def test_valid_keys_are_accepted(client: FlaskClient, key: str) -> None:
    _, headers = _user()
    assert client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, key)).status_code == 201


def test_a_request_that_fails_validation_does_not_take_the_key(client: FlaskClient) -> None:
    _, headers = _user()
    headers = _with_key(headers, "fix-and-retry")
    assert client.post("/deposit", json={"material": "glass", "units": 1}, headers=headers).status_code == 400
    assert client.post("/deposit", json=DEPOSIT, headers=headers).status_code == 201


def test_a_refusal_is_stored_and_replayed(client: FlaskClient, database: Database) -> None:
    _, headers = _user()
    keyed = _with_key(headers, "too-much")
    refused = client.post("/withdraw", json=WITHDRAW, headers=keyed)
    assert refused.status_code == 422 and refused.json["error"]["code"] == "insufficient_funds"
    client.post("/deposit", json=DEPOSIT, headers=headers)
    again = client.post("/withdraw", json=WITHDRAW, headers=keyed)
    assert again.status_code == 422
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(database, Withdrawal) == 0


def test_a_server_error_can_be_retried_with_the_same_key(
    client: FlaskClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, headers = _user()
    real_deposit = ledger.deposit
    calls = []

    def fail_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database hiccup")
        return real_deposit(*args, **kwargs)

    monkeypatch.setattr(ledger, "deposit", fail_once)
    failed = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "retry-me"))
    assert failed.status_code == 500
    retried = client.post("/deposit", json=DEPOSIT, headers=_with_key(headers, "retry-me"))
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert _count(database, Transaction) == 1


def test_money_never_moves_without_its_stored_response(
    client: FlaskClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The response is written in the money's transaction: if writing it fails, the money does not move."""
    _, headers = _user()
    client.post("/deposit", json=DEPOSIT, headers=headers)
    real_store = idempotency_keys._store

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died while storing the response")

    monkeypatch.setattr(idempotency_keys, "_store", crash)
    failed = client.post("/withdraw", json=WITHDRAW, headers=_with_key(headers, "atomic"))
    assert failed.status_code == 500
    assert _count(database, Withdrawal) == 0
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 100

    monkeypatch.setattr(idempotency_keys, "_store", real_store)
    retried = client.post("/withdraw", json=WITHDRAW, headers=_with_key(headers, "atomic"))
    assert retried.status_code == 202
    assert _count(database, Withdrawal) == 1
    with database.session() as session:
        assert ledger.verify(session) == []


def test_keys_are_per_user_and_optional(client: FlaskClient, database: Database) -> None:
    _, first = _user()
    _, second = _user()
    assert client.post("/deposit", json=DEPOSIT, headers=_with_key(first, "shared-name")).status_code == 201
    assert client.post("/deposit", json=DEPOSIT, headers=_with_key(second, "shared-name")).status_code == 201
    for _ in range(2):  # no key: every request is a new deposit
        assert client.post("/deposit", json=DEPOSIT, headers=first).status_code == 201
    assert _count(database, Transaction) == 4


def test_openapi_documents_the_header(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").json["paths"]
    for path in ("/deposit", "/withdraw"):
        operation = paths[path]["post"]
        assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
        assert {"409", "422"} <= set(operation["responses"])


def test_the_payout_is_enqueued_only_after_the_commit(
    client: FlaskClient, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    visible_when_enqueued: list[bool] = []

    def enqueue(withdrawal_id: uuid.UUID) -> bool:
        with database.session() as other:  # another connection sees committed rows only
            visible_when_enqueued.append(other.get(Withdrawal, withdrawal_id) is not None)
        return True

    monkeypatch.setattr(api.withdrawals, "enqueue_payout", enqueue)
    _, headers = _user()
    for _ in range(4):
        client.post("/deposit", json=DEPOSIT, headers=headers)
    assert client.post("/withdraw", json=WITHDRAW, headers=headers).status_code == 202
    for _ in range(2):  # the replay enqueues nothing
        assert client.post("/withdraw", json=WITHDRAW, headers=_with_key(headers, "enqueue")).status_code == 202
    assert visible_when_enqueued == [True, True]

    def die(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the process died while storing the response")

    monkeypatch.setattr(idempotency_keys, "_store", die)
    failed = client.post("/withdraw", json={**WITHDRAW, "amount_cents": 200}, headers=_with_key(headers, "lost"))
    assert failed.status_code == 500
    assert visible_when_enqueued == [True, True], "nothing is enqueued for a withdrawal that rolled back"
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 200
