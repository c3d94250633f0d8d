"""Secrets never reach the logs: ID tokens, bank tokens, Stripe keys and webhook secrets are masked.

:func:`install_log_redaction` wraps the process's log record factory, so every record from every logger
(the app, Flask, gunicorn's error and access logs, the worker, libraries) is cleaned once, when it is
created, before any handler formats it; exception tracebacks included.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from shared.config import Config

REDACTED = "[REDACTED]"
# Shorter configured values are too likely to occur by chance to be masked literally.
MIN_SECRET_LENGTH = 8

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # JSON Web Tokens (Firebase ID tokens): three base64url parts, the first starting with '{"' encoded.
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1" + REDACTED),
    # Stripe secret and restricted keys, webhook signing secrets.
    (re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9]+"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), REDACTED),
    # Stripe bank and card tokens and bank account ids.
    (re.compile(r"\b(?:btok|tok|ba)_[A-Za-z0-9_]+"), REDACTED),
    # Any value given for a bank_token field, whatever it looks like: quoted (JSON, repr) or not (forms).
    (re.compile(r"""(?i)(["']?bank_token["']?\s*[:=]\s*)(["'])(?:\\.|(?!\2).)*\2"""), r"\1\2" + REDACTED + r"\2"),
    (re.compile(r"""(?i)(["']?bank_token["']?\s*[:=]\s*)(?!["'])[^\s,&}]+"""), r"\1" + REDACTED),
)

_secrets: tuple[str, ...] = ()
_installed = False


def redact(text: str) -> str:
    """``text`` with every known kind of secret, and every configured secret value, masked."""
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def configured_secrets(config: Config) -> list[str | None]:
    """The configured values that must never be logged verbatim, whatever their format."""
    return [config.secret_key, config.stripe_secret_key, config.stripe_webhook_secret, config.flower_basic_auth]


def install_log_redaction(secrets: Iterable[str | None] = ()) -> None:
    """Clean every log record of this process from now on; ``secrets`` are configured values to mask too.

    Safe to call more than once (the last call's secrets apply).
    """
    global _secrets, _installed
    values = {value for value in secrets if value and len(value) >= MIN_SECRET_LENGTH}
    _secrets = tuple(sorted(values, key=len, reverse=True))  # longest first: no partial masks
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _clean(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def _clean(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed format string: leave it for logging to report as it always does
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters reuse exc_text when it is set, so the traceback they print is this cleaned one.
        record.exc_text = redact(_format_exception(record))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def _format_exception(record: logging.LogRecord) -> str:
    exc_info: Any = record.exc_info
    return logging.Formatter().formatException(exc_info)
