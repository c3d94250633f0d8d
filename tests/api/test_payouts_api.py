"""The API side of payouts with the Flask test client: ETag polling, webhook signatures, the operator CLI."""

from __future__ import annotations

import uuid

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from shared import ledger
from shared.models import Withdrawal
from tests.factories import bypass_headers
from tests.fake_stripe import payout_event, sign_webhook
from tests.shared.ledger.payout_helpers import claimed, failed, make_withdrawal, reload

SECRET = "whsec_unit"


def withdraw(client: FlaskClient) -> str:
    headers = bypass_headers("poller@example.com")
    client.post("/deposit", json={"material": "aluminum", "units": 100}, headers=headers)
    response = client.post("/withdraw", json={"amount_cents": 300, "bank_token": "tok_x"}, headers=headers)
    assert response.status_code == 202
    return str(response.json["withdrawal"]["id"])


def test_get_withdrawal_sends_an_etag_and_honours_if_none_match(client: FlaskClient, db_session: Session) -> None:
    withdrawal_id = withdraw(client)
    headers = bypass_headers("poller@example.com")
    first = client.get(f"/withdrawals/{withdrawal_id}", headers=headers)
    assert first.status_code == 200 and first.json["attempts"] == 0 and first.headers["ETag"]
    etag = first.headers["ETag"]
    cached = client.get(f"/withdrawals/{withdrawal_id}", headers=headers | {"If-None-Match": etag})
    assert (cached.status_code, cached.data) == (304, b"")
    # A worker picks it up: the representation changes, so the old ETag no longer matches.
    claimed(db_session, _row(db_session, withdrawal_id))
    changed = client.get(f"/withdrawals/{withdrawal_id}", headers=headers | {"If-None-Match": etag})
    assert (changed.status_code, changed.json["status"], changed.json["attempts"]) == (200, "processing", 1)
    assert changed.headers["ETag"] != etag


def _row(session: Session, withdrawal_id: str) -> Withdrawal:
    withdrawal = session.get(Withdrawal, uuid.UUID(withdrawal_id))
    assert withdrawal is not None
    return withdrawal


def webhook(client: FlaskClient, payload: str, signature: str | None) -> TestResponse:
    headers = {"Stripe-Signature": signature} if signature else {}
    return client.post("/webhooks/stripe", data=payload, content_type="application/json", headers=headers)


def test_webhooks_need_a_valid_signature_and_the_secret(app: Flask, db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.mark_paid(db_session, claimed(db_session, withdrawal), "po_1")
    payload = payout_event("evt_1", "payout.failed", "po_1", str(withdrawal.id), failure_code="account_closed")
    client = app.test_client()
    # No STRIPE_WEBHOOK_SECRET configured: every webhook is refused.
    assert webhook(client, payload, sign_webhook(payload, SECRET)).status_code == 400
    app.extensions["wallet_config"] = app.extensions["wallet_config"].replace(stripe_webhook_secret=SECRET)
    stale = sign_webhook(payload, SECRET, timestamp=1_600_000_000)
    for signature in (None, "t=1,v1=deadbeef", sign_webhook(payload, "whsec_other"), stale):
        response = webhook(client, payload, signature)
        assert response.status_code == 400, signature
        assert response.json["error"]["code"] == "invalid_signature"
    assert reload(db_session, withdrawal).status == "paid"
    tampered = payload.replace("account_closed", "no_account")
    assert webhook(client, tampered, sign_webhook(payload, SECRET)).status_code == 400
    ok = webhook(client, payload, sign_webhook(payload, SECRET))
    assert ok.json == {"received": True, "outcome": "applied"}
    assert reload(db_session, withdrawal).status == "failed"


def test_cli_list_requeue_and_errors(app: Flask, db_session: Session) -> None:
    withdrawal = failed(db_session)
    other = make_withdrawal(db_session)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["payouts", "list", "--status", "failed"])
    assert listed.exit_code == 0 and str(withdrawal.id) in listed.output and str(other.id) not in listed.output
    assert "account_closed" in listed.output
    requeued = runner.invoke(args=["payouts", "requeue", str(withdrawal.id), "--actor", "alice", "--reason", "x"])
    assert requeued.exit_code == 0, requeued.output
    assert reload(db_session, withdrawal).status == "pending"
    assert ledger.operator_actions(db_session, withdrawal.id)[0].actor == "cli:alice"
    again = runner.invoke(args=["payouts", "requeue", str(withdrawal.id)])
    assert again.exit_code == 1 and "only a failed withdrawal can be requeued" in again.output
    unknown = runner.invoke(args=["payouts", "cancel", str(uuid.uuid4())])
    assert unknown.exit_code == 1 and "not_found" in unknown.output
    bad = runner.invoke(args=["payouts", "cancel", "not-a-uuid"])
    assert bad.exit_code == 2
