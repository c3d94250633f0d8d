"""Stripe webhook events: signature verified by the ``stripe`` library, turned into ledger PayoutEvents."""

from __future__ import annotations

import uuid
from typing import Any

import stripe

from shared.ledger.webhooks import PayoutEvent


class InvalidWebhook(Exception):
    """The body is not a Stripe event signed with our webhook secret."""


def parse_event(payload: bytes, signature_header: str | None, secret: str | None) -> PayoutEvent:
    if not secret:
        raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not configured; refusing every webhook")
    if not signature_header:
        raise InvalidWebhook("missing Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(payload.decode("utf-8"), signature_header, secret)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidWebhook(f"signature verification failed: {exc}") from None
    raw: dict[str, Any] = event.to_dict()
    obj = (raw.get("data") or {}).get("object") or {}
    if not isinstance(obj, dict) or not isinstance(raw.get("id"), str):
        raise InvalidWebhook("event has no id or data.object")
    is_payout = obj.get("object") == "payout"
    metadata = obj.get("metadata") or {}
    return PayoutEvent(
        event_id=raw["id"],
        event_type=str(raw.get("type", "")),
        payout_id=obj.get("id") if is_payout else None,
        withdrawal_id=_uuid(metadata.get("withdrawal_id")) if is_payout else None,
        generation=_int(metadata.get("attempt_generation")) if is_payout else None,
        failure_code=obj.get("failure_code"),
        failure_message=obj.get("failure_message"),
    )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
