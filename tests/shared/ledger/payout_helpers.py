"""Seed withdrawals in any state of the payout pipeline, through the ledger."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import utcnow
from shared.models import Wallet, Withdrawal
from tests.factories import fund, make_account

POLICY = ledger.PayoutPolicy(lease_seconds=60, max_attempts=3)


def make_withdrawal(session: Session, amount: int = 300, balance: int = 1000, token: str = "tok_ok") -> Withdrawal:
    account = make_account(session)
    fund(session, account, balance)
    return ledger.request_withdrawal(session, account, amount, token, ledger.WithdrawalPolicy(min_cents=1)).withdrawal


def claimed(session: Session, withdrawal: Withdrawal, now: datetime | None = None) -> ledger.Claim:
    return ledger.claim_withdrawal(session, withdrawal.id, POLICY, now)


def failed(session: Session, code: str = "account_closed", transfer: str | None = None) -> Withdrawal:
    withdrawal = make_withdrawal(session)
    claim = claimed(session, withdrawal)
    progress = {"account_id": "acct_1", "transfer_id": transfer} if transfer else {}
    ledger.mark_failed(session, claim, code, "refused", **progress)
    return reload(session, withdrawal)


def reload(session: Session, withdrawal: Withdrawal) -> Withdrawal:
    session.expire_all()
    return session.execute(select(Withdrawal).where(Withdrawal.id == withdrawal.id)).scalar_one()


def balance(session: Session, withdrawal: Withdrawal) -> int:
    session.expire_all()
    return session.execute(select(Wallet.balance_cents).where(Wallet.id == withdrawal.wallet_id)).scalar_one()


def age(session: Session, withdrawal: Withdrawal, seconds: int) -> None:
    """Pretend the withdrawal was last touched ``seconds`` ago."""
    session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == withdrawal.id)
        .values(updated_at=utcnow() - timedelta(seconds=seconds))
    )
    session.commit()
