"""worker/telemetry.py: one log line and the metrics of each payout attempt."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY

from worker.processor import Outcome, Result
from worker.telemetry import observe_payout_attempt


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("result", "failure_code", "status"),
    [
        (Result(Outcome.PAID, detail="po_123"), None, "paid"),
        (Result(Outcome.FAILED, detail="account_closed"), "account_closed", "failed"),
        (Result(Outcome.RETRY, retry_in=2.5, detail="rate_limited"), "rate_limited", None),
    ],
)
def test_attempts_are_logged_and_counted(
    result: Result, failure_code: str | None, status: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wallet.payouts")
    before = {
        "attempts": _value("wallet_payout_attempts_total", outcome=str(result.outcome)),
        "failures": _value("wallet_payout_failures_total", code=failure_code or "-"),
        "status": _value("wallet_withdrawals_total", status=status or "-"),
    }
    observe_payout_attempt("w-1", result, 0.25)
    (record,) = [r for r in caplog.records if r.name == "wallet.payouts"]
    assert (record.withdrawal_id, record.outcome, record.failure_code) == ("w-1", str(result.outcome), failure_code)
    assert record.latency_ms == 250.0
    assert _value("wallet_payout_attempts_total", outcome=str(result.outcome)) == before["attempts"] + 1
    if failure_code:
        assert _value("wallet_payout_failures_total", code=failure_code) == before["failures"] + 1
    if status:
        assert _value("wallet_withdrawals_total", status=status) == before["status"] + 1


def test_a_skip_is_logged_but_is_not_an_attempt(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wallet.payouts")
    before = _value("wallet_payout_attempts_total", outcome="skipped")
    observe_payout_attempt("w-2", Result(Outcome.SKIPPED, detail="another worker holds it"), 0.01)
    assert [r.outcome for r in caplog.records if r.name == "wallet.payouts"] == ["skipped"]
    assert _value("wallet_payout_attempts_total", outcome="skipped") == before
