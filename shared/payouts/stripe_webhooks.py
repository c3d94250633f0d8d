"""Stripe webhook events: signature verified by the ``stripe`` library, turned into ledger PayoutEvents.

A signed body is still checked for the shape Stripe documents before anything is stored. What does not fit
raises :class:`MalformedEvent` (HTTP 400, nothing recorded): it may be a real ``payout.failed`` we cannot read,
so Stripe should keep retrying it (up to three days, visible as failed deliveries in the dashboard) until a
fixed release applies it, rather than get a 2xx that drops it. Events of types we do not handle are only
checked for an id and a type; their data is never read, so they are acknowledged (200, ignored) whatever it is.
"""

from __future__ import annotations

import json
import unicodedata
import uuid
from typing import Any

import stripe

from shared.ledger.webhooks import PayoutEvent, PayoutEventKind

# The widths of applied_webhook_events.event_id and withdrawals.provider_payout_id (Stripe ids are ~30 chars).
MAX_ID_LENGTH = 255
MAX_TEXT_LENGTH = 5000


class InvalidWebhook(Exception):
    """The body is not a Stripe event signed with our webhook secret."""


class MalformedEvent(InvalidWebhook):
    """Signed, but not shaped like a Stripe event we can apply."""


def parse_event(payload: bytes, signature_header: str | None, secret: str | None) -> PayoutEvent:
    if not secret:
        raise InvalidWebhook("STRIPE_WEBHOOK_SECRET is not configured; refusing every webhook")
    if not signature_header:
        raise InvalidWebhook("missing Stripe-Signature header")
    try:
        body = payload.decode("utf-8")
        stripe.WebhookSignature.verify_header(body, signature_header, secret, stripe.Webhook.DEFAULT_TOLERANCE)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise InvalidWebhook(f"signature verification failed: {exc}") from None
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedEvent("the body is not JSON") from None
    if not isinstance(raw, dict):
        raise MalformedEvent("the event is not a JSON object")
    event_id = _text(raw.get("id"), "id", MAX_ID_LENGTH, required=True)
    event_type = _text(raw.get("type"), "type", MAX_ID_LENGTH, required=True)
    assert event_id is not None and event_type is not None
    if event_type not in set(PayoutEventKind):
        return PayoutEvent(event_id=event_id, event_type=event_type, payout_id=None)
    data = raw.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise MalformedEvent("a payout event needs data.object")
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise MalformedEvent("data.object.metadata is not an object")
    is_payout = obj.get("object") == "payout"
    return PayoutEvent(
        event_id=event_id,
        event_type=event_type,
        payout_id=_text(obj.get("id"), "data.object.id", MAX_ID_LENGTH) if is_payout else None,
        # Metadata are hints (the payout id decides first): a value we cannot read is no hint.
        withdrawal_id=_uuid(metadata.get("withdrawal_id")) if is_payout else None,
        generation=_int(metadata.get("attempt_generation")) if is_payout else None,
        failure_code=_text(obj.get("failure_code"), "failure_code", MAX_TEXT_LENGTH),
        failure_message=_text(obj.get("failure_message"), "failure_message", MAX_TEXT_LENGTH),
    )


def _text(value: Any, name: str, max_length: int, *, required: bool = False) -> str | None:
    """A string the database can store (no NUL, control character or lone surrogate), or None if absent."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise MalformedEvent(f"{name} must be a non-empty string of at most {max_length} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in value):
        raise MalformedEvent(f"{name} contains control characters or unpaired surrogates")
    return value


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        return int(value)
    except ValueError:
        return None
