"""The ledger: the only code that moves money. Every function here owns (and commits) its transaction."""

from shared.ledger.accounts import Account, get_or_create_account, get_wallet
from shared.ledger.deposits import DepositResult, deposit
from shared.ledger.errors import (
    AmountBelowMinimum,
    InsufficientFunds,
    InvalidCursor,
    InvalidTransition,
    LedgerError,
    NotFound,
)
from shared.ledger.history import Page, list_transactions, list_withdrawals
from shared.ledger.verify import Mismatch, verify
from shared.ledger.withdrawals import WithdrawalPolicy, WithdrawalResult, get_withdrawal, request_withdrawal

__all__ = [
    "Account",
    "AmountBelowMinimum",
    "DepositResult",
    "InsufficientFunds",
    "InvalidCursor",
    "InvalidTransition",
    "LedgerError",
    "Mismatch",
    "NotFound",
    "Page",
    "WithdrawalPolicy",
    "WithdrawalResult",
    "deposit",
    "get_or_create_account",
    "get_wallet",
    "get_withdrawal",
    "list_transactions",
    "list_withdrawals",
    "request_withdrawal",
    "verify",
]
