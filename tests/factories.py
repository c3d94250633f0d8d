"""Factories for test data, built through the ledger so every row is one the service could have made."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from shared import ledger
from shared.models import Material, Withdrawal

DEFAULT_RATES = {"plastic": 5, "aluminum": 10}
DEFAULT_POLICY = ledger.WithdrawalPolicy(min_cents=100)


def make_account(session: Session, email: str | None = None) -> ledger.Account:
    uid = f"test-{uuid.uuid4().hex[:12]}"
    return ledger.get_or_create_account(session, uid, email or f"{uid}@example.com")


def fund(session: Session, account: ledger.Account, cents: int) -> int:
    """Deposit aluminum worth exactly ``cents`` (a multiple of 10); returns the new balance."""
    assert cents % DEFAULT_RATES["aluminum"] == 0, "fund() deposits aluminum: use a multiple of 10 cents"
    result = ledger.deposit(session, account, Material.ALUMINUM, cents // 10, DEFAULT_RATES)
    return result.new_balance_cents


def make_withdrawal(session: Session, account: ledger.Account, cents: int, bank_token: str = "tok_test") -> Withdrawal:
    return ledger.request_withdrawal(session, account, cents, bank_token, DEFAULT_POLICY).withdrawal


def bypass_headers(email: str = "user@example.com") -> dict[str, str]:
    return {"X-Test-User-Email": email}


def bypass_uid(email: str) -> str:
    """The Firebase-uid stand-in the development bypass gives ``email`` (see api.auth)."""
    return f"dev-bypass:{email.strip().lower()}"
