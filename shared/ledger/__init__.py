"""The ledger: the only code that moves money. Every function here owns (and commits) its transaction."""

from shared.ledger.accounts import Account, get_or_create_account, get_wallet
from shared.ledger.deposits import DepositResult, deposit, deposit_as
from shared.ledger.errors import (
    AmountBelowMinimum,
    DailyLimitExceeded,
    InsufficientFunds,
    InvalidCursor,
    InvalidTransition,
    LedgerError,
    NotFound,
    TooManyPendingWithdrawals,
)
from shared.ledger.history import Page, list_transactions, list_withdrawals
from shared.ledger.operations import cancel, list_for_operator, operator_actions, requeue
from shared.ledger.payout_batch import (
    AttemptOutcome,
    ClaimedBatch,
    claim_due,
    mark_failed,
    mark_paid,
    record_accounts,
    record_outcomes,
    release_for_retry,
)
from shared.ledger.payouts import (
    OUTCOME_UNKNOWN_CODES,
    RETRIES_EXHAUSTED,
    Claim,
    PayoutPolicy,
    RetriesExhausted,
    claim_withdrawal,
    take_stranded,
)
from shared.ledger.verify import Mismatch, verify
from shared.ledger.webhooks import EventOutcome, PayoutEvent, apply_payout_event
from shared.ledger.withdrawals import WithdrawalPolicy, WithdrawalResult, get_withdrawal, request_withdrawal

__all__ = [
    "OUTCOME_UNKNOWN_CODES",
    "RETRIES_EXHAUSTED",
    "Account",
    "AmountBelowMinimum",
    "AttemptOutcome",
    "Claim",
    "ClaimedBatch",
    "DailyLimitExceeded",
    "DepositResult",
    "EventOutcome",
    "InsufficientFunds",
    "InvalidCursor",
    "InvalidTransition",
    "LedgerError",
    "Mismatch",
    "NotFound",
    "Page",
    "PayoutEvent",
    "PayoutPolicy",
    "RetriesExhausted",
    "TooManyPendingWithdrawals",
    "WithdrawalPolicy",
    "WithdrawalResult",
    "apply_payout_event",
    "cancel",
    "claim_due",
    "claim_withdrawal",
    "deposit",
    "deposit_as",
    "get_or_create_account",
    "get_wallet",
    "get_withdrawal",
    "list_for_operator",
    "list_transactions",
    "list_withdrawals",
    "mark_failed",
    "mark_paid",
    "operator_actions",
    "record_accounts",
    "record_outcomes",
    "release_for_retry",
    "request_withdrawal",
    "requeue",
    "take_stranded",
    "verify",
]
