"""POST /deposit and GET /transactions."""

from __future__ import annotations

from typing import Any

from api.auth import current_account
from api.blueprint import Blueprint
from api.extensions import db_session, get_config, read_session
from api.idempotency import idempotent
from api.ratelimit import DEPOSITS, rate_limited
from api.schemas import DepositRequest, DepositResponse, TransactionPage, TransactionPageArgs
from shared import ledger
from shared.models import Material

blp = Blueprint("deposits", __name__, description="Deposits and the transaction history").protected()


@blp.route("/deposit", methods=["POST"])
@rate_limited(DEPOSITS)
@blp.json_body(DepositRequest)
@idempotent
@blp.response(201, DepositResponse)
def create_deposit(body: dict[str, Any]) -> dict[str, Any]:
    result = ledger.deposit(
        db_session(), current_account(), Material(body["material"]), body["units"], get_config().material_rates()
    )
    return {"success": True, "transaction": result.transaction, "new_balance_cents": result.new_balance_cents}


@blp.route("/transactions")
@blp.arguments(TransactionPageArgs, location="query")
@blp.response(200, TransactionPage)
def list_transactions(args: dict[str, Any]) -> ledger.Page[Any]:
    # History may lag a little behind the primary: it is read from the replica when there is one.
    return ledger.list_transactions(read_session(), current_account(), args["limit"], args.get("cursor"))
