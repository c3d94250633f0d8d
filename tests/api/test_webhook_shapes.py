"""Signed Stripe webhooks with shapes Stripe never sends: a clear 400 (or 200-ignored for event types we do not
handle), never a 500, and nothing changes.

Why 400 and not 200-ignored for an unreadable payout event: it may be a real ``payout.failed``. A 4xx leaves it
unrecorded, so Stripe retries it (for up to three days) and shows the failed deliveries to the operators, and a
fixed release applies it; a 2xx would drop it silently.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import ledger
from shared.models import AppliedWebhookEvent
from tests.api.test_payouts_api import SECRET, webhook
from tests.fake_stripe import payout_event, sign_webhook
from tests.shared.ledger.payout_helpers import claimed, make_withdrawal, reload


@pytest.fixture
def signed_client(app: Flask) -> FlaskClient:
    app.extensions["wallet_config"] = app.extensions["wallet_config"].replace(stripe_webhook_secret=SECRET)
    return app.test_client()


def _event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(payout_event("evt_odd", "payout.failed", "po_1", None, failure_code="x"))
    return event | changes


def _payout(**changes: Any) -> dict[str, Any]:
    event = _event()
    event["data"]["object"] |= changes
    return event


ODD_ENVELOPES = {
    "not an object": [],
    "a number": 7,
    "null": None,
    "id missing": {k: v for k, v in _event().items() if k != "id"},
    "id a number": _event(id=12345),
    "id an object": _event(id={"a": 1}),
    "id empty": _event(id=""),
    "id over 255": _event(id="evt_" + "x" * 300),
    "id with NUL": _event(id="evt_\x00"),
    "id a lone surrogate": _event(id="evt_\ud800"),
    "type a list": _event(type=["payout.failed"]),
    "data a list": _event(data=[1, 2]),
    "data a string": _event(data="payout"),
    "object a list": _event(data={"object": [1]}),
    "object missing": _event(data={}),
    "payout id a number": _payout(id=42),
    "payout id over 255": _payout(id="po_" + "y" * 300),
    "metadata a list": _payout(metadata=["withdrawal_id"]),
    "metadata a string": _payout(metadata="w"),
    "failure_code an object": _payout(failure_code={"code": "x"}),
    "failure_message a number": _payout(failure_message=3),
}


@pytest.mark.parametrize("body", list(ODD_ENVELOPES.values()), ids=list(ODD_ENVELOPES))
def test_odd_shapes_are_400_and_change_nothing(signed_client: FlaskClient, db_session: Session, body: Any) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.mark_paid(db_session, claimed(db_session, withdrawal), "po_1")
    payload = json.dumps(body)
    response = webhook(signed_client, payload, sign_webhook(payload, SECRET))
    assert response.status_code == 400, response.json
    assert response.json["error"]["code"] == "invalid_event"
    assert reload(db_session, withdrawal).status == "paid"
    assert db_session.execute(select(func.count()).select_from(AppliedWebhookEvent)).scalar_one() == 0


def test_an_event_type_we_do_not_handle_is_acknowledged_whatever_its_data(
    signed_client: FlaskClient, db_session: Session
) -> None:
    payload = json.dumps(_event(type="customer.created", data={"object": {"id": 5, "metadata": "odd"}}))
    response = webhook(signed_client, payload, sign_webhook(payload, SECRET))
    assert (response.status_code, response.json) == (200, {"received": True, "outcome": "ignored"})


def test_odd_metadata_values_are_only_hints(signed_client: FlaskClient, db_session: Session) -> None:
    withdrawal = make_withdrawal(db_session)
    ledger.mark_paid(db_session, claimed(db_session, withdrawal), "po_1")
    payload = json.dumps(_payout(metadata={"withdrawal_id": ["x"], "attempt_generation": {"g": 1}}))
    response = webhook(signed_client, payload, sign_webhook(payload, SECRET))
    assert (response.status_code, response.json["outcome"]) == (200, "applied")  # found by its payout id
    assert reload(db_session, withdrawal).status == "failed"
