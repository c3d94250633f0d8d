"""Operator actions over HTTP, for admins only (Firebase custom claim ``admin: true``).

POST /admin/withdrawals/<id>/requeue and /cancel do what ``flask payouts requeue|cancel`` do.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import g
from marshmallow import fields, validate

from api.blueprint import Blueprint
from api.errors import Forbidden
from api.extensions import db_session
from api.payouts import enqueue_payout
from api.schemas import StrictSchema, WithdrawalSchema, storable
from shared import ledger

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Operator actions (admins only)").protected()

MAX_REASON_LENGTH = 1000


@blp.before_request
def require_admin() -> None:
    if not g.identity.is_admin:
        raise Forbidden("operator actions need an admin account")


def actor() -> str:
    identity = g.identity
    return f"admin:{identity.uid}" + (f" <{identity.email}>" if identity.email else "")


class RequeueRequest(StrictSchema):
    reason = fields.String(validate=[validate.Length(max=MAX_REASON_LENGTH), storable], load_default=None)
    force = fields.Boolean(
        load_default=False,
        metadata={"description": "requeue even though Stripe may have forgotten the keys (checked in Stripe first)"},
    )


class CancelRequest(RequeueRequest):
    force = fields.Boolean(
        load_default=False,
        metadata={"description": "cancel even though the money may have left (checked in Stripe first)"},
    )


class AdminWithdrawalSchema(WithdrawalSchema):
    user_id = fields.UUID()
    attempt_generation = fields.Integer()
    provider_account_id = fields.String(allow_none=True)
    provider_transfer_id = fields.String(allow_none=True)
    provider_payout_id = fields.String(allow_none=True)


@blp.route("/withdrawals/<uuid:withdrawal_id>/requeue", methods=["POST"])
@blp.json_body(RequeueRequest)
@blp.response(200, AdminWithdrawalSchema)
def requeue_withdrawal(body: dict[str, Any], withdrawal_id: uuid.UUID) -> Any:
    withdrawal = ledger.requeue(db_session(), withdrawal_id, actor(), body["reason"], force=body["force"])
    enqueue_payout(withdrawal.id)
    return withdrawal


@blp.route("/withdrawals/<uuid:withdrawal_id>/cancel", methods=["POST"])
@blp.json_body(CancelRequest)
@blp.response(200, AdminWithdrawalSchema)
def cancel_withdrawal(body: dict[str, Any], withdrawal_id: uuid.UUID) -> Any:
    return ledger.cancel(db_session(), withdrawal_id, actor(), body["reason"], force=body["force"])
