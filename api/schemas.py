"""Marshmallow schemas: what the API accepts and what it returns (and the OpenAPI document)."""

from __future__ import annotations

import numbers
import unicodedata
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from shared.models import Material

MAX_DEPOSIT_UNITS = 10_000
# $10M: far above any real payout, low enough that no sum of them overflows BIGINT.
MAX_WITHDRAWAL_CENTS = 1_000_000_000
MAX_BANK_TOKEN_LENGTH = 255
MAX_PAGE_SIZE = 200
MAX_CURSOR_LENGTH = 200


class StrictInteger(fields.Integer):
    """A JSON integer and nothing else: booleans, floats (even 10.0) and numeric strings are refused."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise self.make_error("invalid")
        return super()._validated(value)


class UTCTimestamp(fields.DateTime):
    """ISO 8601 in UTC with milliseconds and a Z, as in the specification's examples (OpenAPI: date-time)."""

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def Dollars(cents_field: str) -> fields.Function:  # noqa: N802  (reads like a field class)
    """``cents_field`` shown in dollars (a JSON number); the *_cents field is the authoritative value."""

    def to_dollars(obj: Any) -> float:
        cents = obj[cents_field] if isinstance(obj, dict) else getattr(obj, cents_field)
        return int(cents) / 100

    return fields.Function(to_dollars, metadata={"type": "number", "description": f"{cents_field} / 100"})


def _no_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def storable(value: str) -> None:
    """Text the database can store: PostgreSQL refuses NUL, and a lone surrogate (valid in a JSON escape) has no
    UTF-8 encoding. Other control characters are refused too: no token or reason contains them."""
    if any(unicodedata.category(c) in ("Cc", "Cs") and c not in "\t\n\r" for c in value):
        raise ValidationError("Must not contain control characters or unpaired surrogates.")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# -- requests --------------------------------------------------------------------------------------------


class DepositRequest(StrictSchema):
    material = fields.String(required=True, validate=validate.OneOf([m.value for m in Material]))
    units = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_DEPOSIT_UNITS))


class WithdrawRequest(StrictSchema):
    amount_cents = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_WITHDRAWAL_CENTS))
    bank_token = fields.String(
        required=True, validate=[validate.Length(min=1, max=MAX_BANK_TOKEN_LENGTH), _no_blank, storable]
    )


class PageArgs(StrictSchema):
    cursor = fields.String(validate=validate.Length(min=1, max=MAX_CURSOR_LENGTH))


class TransactionPageArgs(PageArgs):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


class WithdrawalPageArgs(PageArgs):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


# -- responses -------------------------------------------------------------------------------------------


class WalletSchema(Schema):
    id = fields.UUID()
    balance_cents = fields.Integer()
    balance_dollars = Dollars("balance_cents")
    updated_at = UTCTimestamp()


class TransactionSchema(Schema):
    id = fields.UUID()
    transaction_type = fields.String()
    material = fields.String(allow_none=True)
    units = fields.Integer(allow_none=True)
    amount_cents = fields.Integer()
    amount_dollars = Dollars("amount_cents")
    withdrawal_id = fields.UUID(allow_none=True)
    created_at = UTCTimestamp()


class WithdrawalSchema(Schema):
    id = fields.UUID()
    amount_cents = fields.Integer()
    amount_dollars = Dollars("amount_cents")
    status = fields.String()
    failure_code = fields.String(allow_none=True)
    failure_message = fields.String(allow_none=True)
    attempts = fields.Integer()
    paid_at = UTCTimestamp(allow_none=True)
    created_at = UTCTimestamp()
    updated_at = UTCTimestamp()


class DepositResponse(Schema):
    success = fields.Boolean()
    transaction = fields.Nested(TransactionSchema)
    new_balance_cents = fields.Integer()
    new_balance_dollars = Dollars("new_balance_cents")


class WithdrawResponse(Schema):
    success = fields.Boolean()
    withdrawal = fields.Nested(WithdrawalSchema)
    new_balance_cents = fields.Integer()
    new_balance_dollars = Dollars("new_balance_cents")


class TransactionPage(Schema):
    transactions = fields.List(fields.Nested(TransactionSchema), attribute="items")
    next_cursor = fields.String(allow_none=True)


class WithdrawalPage(Schema):
    withdrawals = fields.List(fields.Nested(WithdrawalSchema), attribute="items")
    next_cursor = fields.String(allow_none=True)


class HealthSchema(Schema):
    status = fields.String()


class CheckSchema(Schema):
    status = fields.String(metadata={"description": "ok, timeout, or the error's class name"})
    latency_ms = fields.Float()


class ReadinessSchema(Schema):
    status = fields.String(metadata={"description": "ready, or degraded when only optional checks fail"})
    checks = fields.Dict(keys=fields.String(), values=fields.Nested(CheckSchema))


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    details = fields.Dict(required=True, metadata={"description": "per-field messages, or facts about the refusal"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBody, required=True)


class ReadinessErrorSchema(ErrorSchema):
    """503 from /health/ready: the error shape; ``details.failing`` names the failed checks, ``details.checks``
    has every result. (Its own name keeps it apart from flask-smorest's default "Error" component.)"""
