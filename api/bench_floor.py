"""The benchmark floor: the least work a deposit can do in this server. Registered only with BENCH_FLOOR=true.

`make bench` measures ``POST /deposit`` against ``POST /_bench/floor/deposit`` in the same server and the same
run. The floor does what a deposit cannot avoid and nothing else: the caller from the development bypass header
(resolved to a wallet once per process), the same Redis call as the deposit rate limit, and the same SQL
transaction (credit the wallet, insert the transaction row) through the same engine and pool - no
flask-smorest, no marshmallow, no ORM unit of work, statements built once. It validates almost nothing, so it
must never face real users: ``Config.check_safe_for_production`` refuses BENCH_FLOOR when APP_ENV=production.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from limits import RateLimitItem, parse
from sqlalchemy import bindparam, select

from api.auth import BYPASS_HEADER, BYPASS_UID_PREFIX
from api.errors import APIError, Unauthenticated, ValidationFailed
from api.extensions import get_config, get_database
from api.ratelimit import DEPOSITS, EXTENSION
from shared.db import utcnow
from shared.ledger.deposits import CREDIT_WALLET, INSERT_TRANSACTION
from shared.models import TransactionType, User, Wallet

FLOOR_DEPOSIT_PATH = "/_bench/floor/deposit"

blp = Blueprint("bench_floor", __name__)

# The ledger's own prebuilt statements, so the floor runs exactly the deposit's SQL and cannot drift from it.
_CREDIT = CREDIT_WALLET
_RECORD = INSERT_TRANSACTION
_FIND = select(User.id, Wallet.id).join(Wallet, Wallet.user_id == User.id).where(User.firebase_uid == bindparam("uid"))

# firebase uid -> (user id, wallet id), filled on first sight: the floor's steady state is the deposit SQL alone.
_accounts: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
_limit_items: dict[str, RateLimitItem] = {}


class _RateLimited(APIError):
    status = 429
    code = "rate_limited"


def _rate_limit_hit(wallet_id: uuid.UUID) -> None:
    """The deposit limiter's own Redis call: one moving-window hit through the same limiter and storage."""
    limits = current_app.extensions[EXTENSION]
    spec = limits.limits[DEPOSITS]
    item = _limit_items.get(spec) or _limit_items.setdefault(spec, parse(spec))
    if not limits.limiter.limiter.hit(item, f"wallet:{wallet_id}", FLOOR_DEPOSIT_PATH):
        raise _RateLimited("too many requests for this wallet")


def _account(uid: str) -> tuple[uuid.UUID, uuid.UUID]:
    account = _accounts.get(uid)
    if account is None:
        with get_database().engine.connect() as conn:
            row = conn.execute(_FIND, {"uid": uid}).first()
        if row is None:
            raise Unauthenticated("the floor only serves users that already have a wallet")
        account = _accounts[uid] = (row[0], row[1])
    return account


@blp.post(FLOOR_DEPOSIT_PATH)
def floor_deposit() -> tuple[Response, int]:
    config = get_config()
    email = request.headers.get(BYPASS_HEADER)
    if not config.auth_dev_bypass or not email:
        raise Unauthenticated(f"the floor endpoint needs AUTH_DEV_BYPASS and {BYPASS_HEADER}")
    body = request.get_json()
    rates = config.material_rates()
    material = body.get("material") if isinstance(body, dict) else None
    units = body.get("units") if isinstance(body, dict) else None
    if material not in rates or type(units) is not int or units < 1:
        raise ValidationFailed("the floor takes {'material': 'plastic'|'aluminum', 'units': int >= 1}")
    uid = BYPASS_UID_PREFIX + email.strip().lower()
    amount_cents = rates[material] * units
    user_id, wallet_id = _account(uid)
    _rate_limit_hit(wallet_id)  # before the transaction, as the deposit's limit is checked before its view runs
    with get_database().engine.begin() as conn:
        now = utcnow()
        balance = conn.execute(_CREDIT, {"wallet_id": wallet_id, "amount_cents": amount_cents, "now": now}).scalar_one()
        transaction_id = uuid.uuid4()
        conn.execute(
            _RECORD,
            {
                "id": transaction_id,
                "user_id": user_id,
                "wallet_id": wallet_id,
                "transaction_type": TransactionType.DEPOSIT.value,
                "material": material,
                "units": units,
                "amount_cents": amount_cents,
                "withdrawal_id": None,
                "created_at": now,
            },
        )
    return jsonify(transaction_id=str(transaction_id), new_balance_cents=balance), 201


def register(app: Flask) -> None:
    app.register_blueprint(blp)
