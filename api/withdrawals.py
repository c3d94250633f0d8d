"""POST /withdraw, GET /withdrawals and GET /withdrawals/<id>."""

from __future__ import annotations

import uuid
from typing import Any

from flask import url_for

from api.auth import current_account
from api.blueprint import Blueprint
from api.extensions import db_session, get_config, read_session
from api.idempotency import idempotent
from api.payouts import conditional_json, enqueue_payout
from api.schemas import (
    ErrorSchema,
    WithdrawalPage,
    WithdrawalPageArgs,
    WithdrawalSchema,
    WithdrawRequest,
    WithdrawResponse,
)
from shared import ledger
from shared.db import on_commit

blp = Blueprint("withdrawals", __name__, description="Withdrawals to a bank account").protected()
LOCATION_HEADER = {"description": "/withdrawals/<id> of the new withdrawal", "schema": {"type": "string"}}


@blp.route("/withdraw", methods=["POST"])
@blp.json_body(WithdrawRequest)
@idempotent
@blp.response(202, WithdrawResponse, headers={"Location": LOCATION_HEADER})
def create_withdrawal(body: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
    policy = ledger.WithdrawalPolicy.from_config(get_config())
    result = ledger.request_withdrawal(
        db_session(), current_account(), body["amount_cents"], body["bank_token"], policy
    )
    withdrawal_id = result.withdrawal.id
    # After the real commit: with an Idempotency-Key the ledger's writes commit only once the response is
    # stored. A failed enqueue is logged and left to the sweeper.
    on_commit(db_session(), lambda: enqueue_payout(withdrawal_id))
    location = url_for("withdrawals.get_withdrawal", withdrawal_id=result.withdrawal.id)
    payload = {"success": True, "withdrawal": result.withdrawal, "new_balance_cents": result.new_balance_cents}
    return payload, 202, {"Location": location}


@blp.route("/withdrawals")
@blp.arguments(WithdrawalPageArgs, location="query")
@blp.response(200, WithdrawalPage)
def list_withdrawals(args: dict[str, Any]) -> ledger.Page[Any]:
    # History may lag a little behind the primary: it is read from the replica when there is one.
    return ledger.list_withdrawals(read_session(), current_account(), args["limit"], args.get("cursor"))


@blp.route("/withdrawals/<uuid:withdrawal_id>")
@blp.response(200, WithdrawalSchema)
@blp.alt_response(304, description="Not modified: the If-None-Match ETag is still current")
@blp.alt_response(404, schema=ErrorSchema, description="not_found: no withdrawal with this id is yours")
def get_withdrawal(withdrawal_id: uuid.UUID) -> Any:
    withdrawal = ledger.get_withdrawal(db_session(), current_account(), withdrawal_id)
    return conditional_json(WithdrawalSchema().dump(withdrawal))
