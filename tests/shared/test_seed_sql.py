"""The seed README's three "Database Operations" queries, copied verbatim, run unchanged against the schema."""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared import ledger
from shared.models import Material
from tests.factories import DEFAULT_RATES, make_withdrawal

# Verbatim from /work/shared/seed/000_824a3aba2e71470d.txt ("Database Operations"). Do not edit.
CHECK_WALLET_BALANCE = """SELECT u.email, w.balance_cents, w.balance_cents/100.0 as balance_dollars
FROM users u
JOIN wallets w ON u.id = w.user_id;"""

VIEW_RECENT_TRANSACTIONS = """SELECT u.email, t.transaction_type, t.material, t.units, t.amount_cents, t.created_at
FROM users u
JOIN transactions t ON u.id = t.user_id
ORDER BY t.created_at DESC
LIMIT 10;"""

VIEW_WITHDRAWALS = """SELECT u.email, w.amount_cents, w.status, w.created_at
FROM users u
JOIN withdrawals w ON u.id = w.user_id
ORDER BY w.created_at DESC;"""


def _seed(session: Session) -> None:
    account = ledger.get_or_create_account(session, "uid-seed", "test@example.com")
    ledger.deposit(session, account, Material.PLASTIC, 10, DEFAULT_RATES)
    ledger.deposit(session, account, Material.ALUMINUM, 125, DEFAULT_RATES)
    make_withdrawal(session, account, 1000)


def test_check_wallet_balance(any_session: Session) -> None:
    _seed(any_session)
    rows = any_session.execute(sa.text(CHECK_WALLET_BALANCE)).all()
    assert [(email, cents) for email, cents, _ in rows] == [("test@example.com", 300)]
    assert Decimal(str(rows[0].balance_dollars)) == Decimal("3.00")


def test_view_recent_transactions(any_session: Session) -> None:
    _seed(any_session)
    rows = any_session.execute(sa.text(VIEW_RECENT_TRANSACTIONS)).all()
    assert [tuple(row)[:5] for row in rows] == [
        ("test@example.com", "withdrawal", None, None, -1000),
        ("test@example.com", "deposit", "aluminum", 125, 1250),
        ("test@example.com", "deposit", "plastic", 10, 50),
    ]
    assert all(row.created_at is not None for row in rows)


def test_view_withdrawals(any_session: Session) -> None:
    _seed(any_session)
    rows = any_session.execute(sa.text(VIEW_WITHDRAWALS)).all()
    assert [tuple(row)[:3] for row in rows] == [("test@example.com", 1000, "pending")]
