"""Operator actions over HTTP: admins only (Firebase custom claim ``admin: true``), audited, refunds once.

Token verification itself is tested with real tokens elsewhere; here the app's verifier is replaced by one
that maps a token to an identity, so these tests are about authorization and the actions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from api.auth import Identity
from api.errors import Unauthenticated
from shared import ledger
from tests.shared.ledger.payout_helpers import balance, claimed, failed, make_withdrawal

IDENTITIES = {
    "admin-token": Identity(uid="ops-1", email="ops@example.com", claims={"admin": True}),
    "user-token": Identity(uid="user-1", email="user@example.com", claims={}),
    "string-admin-token": Identity(uid="user-2", email="u2@example.com", claims={"admin": "true"}),
}


class TokenTable:
    def verify(self, token: str) -> Identity:
        if token not in IDENTITIES:
            raise Unauthenticated("the ID token is not valid")
        return IDENTITIES[token]


@pytest.fixture
def admin_client(app: Flask) -> Iterator[FlaskClient]:
    app.extensions["wallet_token_verifier"] = TokenTable()
    yield app.test_client()


def post(client: FlaskClient, path: str, token: str, body: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return client.post(path, json=body or {}, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("token", ["user-token", "string-admin-token"])
@pytest.mark.parametrize("action", ["requeue", "cancel"])
def test_non_admins_get_403_and_nothing_moves(
    admin_client: FlaskClient, db_session: Session, token: str, action: str
) -> None:
    withdrawal = failed(db_session)
    response = post(admin_client, f"/admin/withdrawals/{withdrawal.id}/{action}", token)
    assert (response.status_code, response.json["error"]["code"]) == (403, "forbidden")
    assert balance(db_session, withdrawal) == 700
    assert ledger.operator_actions(db_session, withdrawal.id) == []


def test_anonymous_gets_401(admin_client: FlaskClient, db_session: Session) -> None:
    withdrawal = failed(db_session)
    assert admin_client.post(f"/admin/withdrawals/{withdrawal.id}/cancel", json={}).status_code == 401


def test_admin_cancel_refunds_once_and_is_audited(admin_client: FlaskClient, db_session: Session) -> None:
    withdrawal = failed(db_session)
    path = f"/admin/withdrawals/{withdrawal.id}/cancel"
    response = post(admin_client, path, "admin-token", {"reason": "customer request"})
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["failure_code"]) == ("canceled", "account_closed")
    assert balance(db_session, withdrawal) == 1000
    again = post(admin_client, path, "admin-token")
    assert (again.status_code, again.json["error"]["code"]) == (409, "invalid_transition")
    assert balance(db_session, withdrawal) == 1000
    (action,) = ledger.operator_actions(db_session, withdrawal.id)
    assert (action.actor, action.action, action.reason) == (
        "admin:ops-1 <ops@example.com>",
        "cancel",
        "customer request",
    )
    assert ledger.verify(db_session) == []


def test_admin_requeue_moves_failed_to_pending_with_a_new_generation(
    admin_client: FlaskClient, db_session: Session
) -> None:
    withdrawal = failed(db_session)
    response = post(admin_client, f"/admin/withdrawals/{withdrawal.id}/requeue", "admin-token")
    assert response.status_code == 200, response.json
    assert (response.json["status"], response.json["attempt_generation"], response.json["attempts"]) == (
        "pending",
        1,
        0,
    )


def test_cancel_that_needs_force_says_so(admin_client: FlaskClient, db_session: Session) -> None:
    withdrawal = failed(db_session, code=ledger.RETRIES_EXHAUSTED)
    path = f"/admin/withdrawals/{withdrawal.id}/cancel"
    refused = post(admin_client, path, "admin-token")
    assert refused.status_code == 409 and "unknown" in refused.json["error"]["message"]
    assert post(admin_client, path, "admin-token", {"force": True, "reason": "checked"}).status_code == 200
    assert balance(db_session, withdrawal) == 1000


@pytest.mark.parametrize("state", ["pending-tried", "processing"])
def test_invalid_transitions_are_409(admin_client: FlaskClient, db_session: Session, state: str) -> None:
    withdrawal = make_withdrawal(db_session)
    claim = claimed(db_session, withdrawal)
    if state == "pending-tried":
        ledger.release_for_retry(db_session, claim, 60)
    for action in ("requeue", "cancel"):
        response = post(admin_client, f"/admin/withdrawals/{withdrawal.id}/{action}", "admin-token")
        assert response.status_code == 409, response.json


def test_unknown_withdrawal_is_404_and_bad_body_is_400(admin_client: FlaskClient, db_session: Session) -> None:
    assert post(admin_client, f"/admin/withdrawals/{uuid.uuid4()}/cancel", "admin-token").status_code == 404
    withdrawal = failed(db_session)
    path = f"/admin/withdrawals/{withdrawal.id}/cancel"
    bad = post(admin_client, path, "admin-token", {"force": "yes please"})
    assert (bad.status_code, bad.json["error"]["code"]) == (400, "validation_error")
    assert post(admin_client, path, "admin-token", {"unexpected": 1}).status_code == 400
    assert balance(db_session, withdrawal) == 700


def test_a_reason_the_database_cannot_store_is_a_validation_error(
    admin_client: FlaskClient, db_session: Session
) -> None:
    withdrawal = failed(db_session)
    response = admin_client.post(
        f"/admin/withdrawals/{withdrawal.id}/cancel",
        data='{"reason": "bad\\u0000reason"}',
        content_type="application/json",
        headers={"Authorization": "Bearer admin-token"},
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "reason" in response.get_json()["error"]["details"]
    assert balance(db_session, withdrawal) == 700


def test_requeue_of_an_outcome_unknown_older_than_23_hours_needs_force(
    admin_client: FlaskClient, db_session: Session
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from shared.db import utcnow
    from shared.models import Withdrawal

    withdrawal = failed(db_session, code=ledger.RETRIES_EXHAUSTED)
    old = utcnow() - timedelta(hours=23, minutes=5)
    db_session.execute(update(Withdrawal).where(Withdrawal.id == withdrawal.id).values(created_at=old))
    db_session.commit()
    path = f"/admin/withdrawals/{withdrawal.id}/requeue"
    refused = post(admin_client, path, "admin-token")
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "invalid_transition")
    assert "idempotency keys" in refused.json["error"]["message"]
    forced = post(admin_client, path, "admin-token", {"force": True, "reason": "checked Stripe"})
    assert (forced.status_code, forced.json["status"]) == (200, "pending")
    assert [a.action for a in ledger.operator_actions(db_session, withdrawal.id)] == ["requeue_forced"]
