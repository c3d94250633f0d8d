"""POST /webhooks/stripe: Stripe tells us what happened to payouts (paid, or failed even after paid)."""

from __future__ import annotations

import logging
from typing import Any

from flask import request
from marshmallow import Schema, fields

from api.blueprint import Blueprint
from api.errors import APIError
from api.extensions import db_session, get_config
from shared import ledger
from shared.payouts.stripe_webhooks import InvalidWebhook, MalformedEvent, parse_event

log = logging.getLogger(__name__)

blp = Blueprint("webhooks", __name__, description="Provider webhooks (signed; no user authentication)")


class InvalidSignature(APIError):
    status = 400
    code = "invalid_signature"


class InvalidEvent(APIError):
    """Signed, but not an event we can read: 400 so that Stripe retries it and shows it (see stripe_webhooks)."""

    status = 400
    code = "invalid_event"


class WebhookAck(Schema):
    received = fields.Boolean()
    outcome = fields.String(metadata={"description": "applied | ignored | duplicate"})


@blp.route("/webhooks/stripe", methods=["POST"])
@blp.response(200, WebhookAck)
def stripe_webhook() -> dict[str, Any]:
    """Verify the Stripe-Signature, then apply payout.paid / payout.failed once per event id."""
    try:
        event = parse_event(
            request.get_data(cache=False), request.headers.get("Stripe-Signature"), get_config().stripe_webhook_secret
        )
    except MalformedEvent as exc:
        log.error("rejected a signed Stripe webhook we cannot read: %s", exc)
        raise InvalidEvent(str(exc)) from None
    except InvalidWebhook as exc:
        log.warning("rejected a Stripe webhook: %s", exc)
        raise InvalidSignature(str(exc)) from None
    outcome = ledger.apply_payout_event(db_session(), event)
    log.info("stripe event %s (%s): %s", event.event_id, event.event_type, outcome)
    return {"received": True, "outcome": outcome}
