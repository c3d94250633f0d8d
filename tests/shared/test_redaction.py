"""Log redaction: every kind of secret is masked, in messages, arguments and tracebacks."""

from __future__ import annotations

import logging

import pytest

from shared.redaction import REDACTED, install_log_redaction, redact

ID_TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9.eyJzdWIiOiJ1c2VyLTEiLCJhdWQiOiJwcm9qIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"Authorization: Bearer {ID_TOKEN}", ID_TOKEN),
        ("Authorization: Bearer opaque-token-value", "opaque-token-value"),
        (f"GET /wallet?id_token={ID_TOKEN} HTTP/1.1", ID_TOKEN),
        ("stripe.api_key = sk_live_51HxYzAbCdEf", "sk_live_51HxYzAbCdEf"),
        ("restricted rk_test_51HxYzAbCdEf", "rk_test_51HxYzAbCdEf"),
        ("signing secret whsec_4eC39HqLyjWDarjtT1zdp7dc", "whsec_4eC39HqLyjWDarjtT1zdp7dc"),
        ("external account btok_1NAbcDEF attached", "btok_1NAbcDEF"),
        ("token tok_visa_debit", "tok_visa_debit"),
        ("bank account ba_1Mx9ZzQ", "ba_1Mx9ZzQ"),
        ('{"amount_cents": 100, "bank_token": "my savings 0042"}', "my savings 0042"),
        ("{'bank_token': 'plain-value', 'x': 1}", "plain-value"),
        ("bank_token=plain-value&amount_cents=100", "plain-value"),
    ],
)
def test_secrets_are_masked(text: str, secret: str) -> None:
    cleaned = redact(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_ordinary_text_is_left_alone() -> None:
    text = "deposit of 50 cents to wallet 7f0c3c1e-7d43-4ed2-9b3c-6a1f0f6b3f55 (pk_test_public is not secret)"
    assert redact(text) == text


def test_log_records_are_cleaned_when_created(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction(["configured-webhook-secret-value"])
    log = logging.getLogger("tests.redaction")
    with caplog.at_level(logging.INFO, logger="tests.redaction"):
        log.info("verifying %s with %s", ID_TOKEN, "configured-webhook-secret-value")
        try:
            raise ValueError(f"Stripe said no to sk_test_abcdefgh for tok_chk_{'9' * 6}")
        except ValueError:
            log.exception("payout failed")
        log.info("plain %s", "message")

    first, failure, plain = caplog.records
    assert ID_TOKEN not in first.getMessage()
    assert "configured-webhook-secret-value" not in first.getMessage()
    formatted = logging.Formatter().format(failure)
    assert "sk_test_abcdefgh" not in formatted and "tok_chk_999999" not in formatted
    assert "ValueError" in formatted  # the traceback itself survives
    assert plain.getMessage() == "plain message"
    assert plain.args == ("message",)  # untouched records keep their arguments
