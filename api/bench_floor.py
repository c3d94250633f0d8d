"""The benchmark floor: the least work a deposit can do in this server. Registered only with BENCH_FLOOR=true.

`make bench` measures ``POST /deposit`` against ``POST /_bench/floor/deposit`` in the same server and the same
run. The floor does what a deposit cannot avoid and nothing else: the caller from the development bypass header,
the same Redis call as the deposit rate limit (keyed the same way, by the caller's uid), and the ledger's own
deposit statement (find the wallet by the uid, credit it, insert the transaction row: one autocommitted
PostgreSQL statement, run the ledger's way) through the same engine and pool - no flask-smorest, no marshmallow,
no ORM session. It validates almost nothing, so it must never face real users:
``Config.check_safe_for_production`` refuses BENCH_FLOOR when APP_ENV=production.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from limits import RateLimitItem, parse

from api.auth import BYPASS_HEADER, BYPASS_UID_PREFIX
from api.errors import APIError, Unauthenticated, ValidationFailed
from api.extensions import get_config, get_database
from api.ratelimit import DEPOSITS, EXTENSION
from shared.db import autocommit
from shared.ledger.deposits import DEPOSIT_BY_FIREBASE_UID, deposit_params
from shared.models import Material

FLOOR_DEPOSIT_PATH = "/_bench/floor/deposit"

blp = Blueprint("bench_floor", __name__)

# The ledger's own prebuilt statement and parameters, so the floor runs exactly the deposit's SQL.
_DEPOSIT = DEPOSIT_BY_FIREBASE_UID
_limit_items: dict[str, RateLimitItem] = {}


class _RateLimited(APIError):
    status = 429
    code = "rate_limited"


def _rate_limit_hit(uid: str) -> None:
    """The deposit limiter's own Redis call: one moving-window hit through the same limiter, storage and key."""
    limits = current_app.extensions[EXTENSION]
    spec = limits.limits[DEPOSITS]
    item = _limit_items.get(spec) or _limit_items.setdefault(spec, parse(spec))
    if not limits.limiter.limiter.hit(item, f"uid:{uid}", FLOOR_DEPOSIT_PATH):
        raise _RateLimited("too many requests for this wallet")


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
    email = email.strip().lower()
    uid = BYPASS_UID_PREFIX + email
    _rate_limit_hit(uid)  # before the statement, as the deposit's limit is checked before its view runs
    params = deposit_params(uid, email, Material(material), units, rates[material] * units)
    with get_database().engine.connect() as conn, autocommit(conn):
        row = conn.execute(_DEPOSIT, params).first()
    if row is None:
        raise Unauthenticated("the floor only serves users that already have a wallet")
    return jsonify(transaction_id=str(params["transaction_id"]), new_balance_cents=row.balance_cents), 201


def register(app: Flask) -> None:
    app.register_blueprint(blp)
