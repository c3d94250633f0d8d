"""Sentry error reporting for the API and the worker, on only when ``SENTRY_DSN`` is set."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def init_sentry(config: Any, component: str) -> bool:
    """Initialise sentry-sdk with the Flask and Celery integrations; return False (doing nothing) without a DSN.

    Request bodies are never sent (``bank_token`` lives in them) and neither is PII: Sentry strips
    ``Authorization`` and cookies when ``send_default_pii`` is off.
    """
    if not config.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=config.sentry_dsn,
        environment=str(config.app_env),
        traces_sample_rate=config.sentry_traces_sample_rate,
        send_default_pii=False,
        max_request_body_size="never",
        integrations=[FlaskIntegration(), CeleryIntegration()],
    )
    sentry_sdk.set_tag("component", component)
    log.info("Sentry enabled for %s", component)
    return True
