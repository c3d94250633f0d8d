"""Domain errors raised by the ledger. The API maps them to HTTP; the worker and CLI print them."""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """A request the ledger refused. Nothing was written."""

    code = "ledger_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(LedgerError):
    code = "not_found"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"


class AmountBelowMinimum(LedgerError):
    code = "amount_below_minimum"


class DailyLimitExceeded(LedgerError):
    code = "daily_limit_exceeded"


class TooManyPendingWithdrawals(LedgerError):
    code = "too_many_pending_withdrawals"


class InvalidTransition(LedgerError):
    """A withdrawal was asked to move to a status its current status does not lead to."""

    code = "invalid_transition"


class InvalidCursor(LedgerError):
    code = "invalid_cursor"
