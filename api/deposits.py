"""POST /deposit and GET /transactions."""

from __future__ import annotations

from typing import Any

from flask import g

from api.auth import current_account, current_identity, resolves_own_account
from api.blueprint import Blueprint
from api.extensions import db_session, get_config, read_session
from api.idempotency import idempotent
from api.ratelimit import DEPOSITS, rate_limited
from api.schemas import DepositRequest, DepositResponse, TransactionPage, TransactionPageArgs
from shared import ledger
from shared.models import Material

blp = Blueprint("deposits", __name__, description="Deposits and the transaction history").protected()


@blp.route("/deposit", methods=["POST"])
@resolves_own_account
@rate_limited(DEPOSITS)
@blp.json_body(DepositRequest)
@idempotent
@blp.response(201, DepositResponse)
def create_deposit(body: dict[str, Any]) -> dict[str, Any]:
    material, units, rates = Material(body["material"]), body["units"], get_config().material_rates()
    account = g.get("account")  # already resolved when an Idempotency-Key was claimed for this user
    if account is None:
        # The wallet is found inside the money statement itself (one round trip on PostgreSQL).
        identity = current_identity()
        g.account, result = ledger.deposit_as(db_session(), identity.uid, identity.email, material, units, rates)
    else:
        result = ledger.deposit(db_session(), account, material, units, rates)
    return {"success": True, "transaction": result.transaction, "new_balance_cents": result.new_balance_cents}


@blp.route("/transactions")
@blp.arguments(TransactionPageArgs, location="query")
@blp.response(200, TransactionPage)
def list_transactions(args: dict[str, Any]) -> ledger.Page[Any]:
    # History may lag a little behind the primary: it is read from the replica when there is one.
    return ledger.list_transactions(read_session(), current_account(), args["limit"], args.get("cursor"))
