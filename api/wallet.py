"""GET /wallet: the caller's balance (wallet created on the first authenticated request)."""

from __future__ import annotations

from typing import Any

from api.auth import current_account
from api.blueprint import Blueprint
from api.extensions import db_session
from api.schemas import WalletSchema
from shared import ledger

blp = Blueprint("wallet", __name__, description="The caller's wallet").protected()


@blp.route("/wallet")
@blp.response(200, WalletSchema)
def get_wallet() -> Any:
    return ledger.get_wallet(db_session(), current_account())
