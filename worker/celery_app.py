"""The Celery application: ``celery -A worker.celery_app worker|beat|flower``.

Built from :class:`shared.config.Config` alone (no Flask app); settings in :mod:`shared.payouts.celery_settings`.
"""

from __future__ import annotations

from celery import Celery

from shared.config import VAR_DIR, Config
from shared.observability import celery as observability
from shared.payouts.celery_settings import celery_settings
from shared.redaction import configured_secrets, install_log_redaction


def create_celery(config: Config | None = None) -> Celery:
    config = config or Config.from_env()
    config.check_payout_gateway_for_production()
    install_log_redaction(configured_secrets(config))  # bank tokens and Stripe keys never reach the logs
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # beat's schedule file, the embedded broker
    celery = Celery("recycling_wallet", include=["worker.tasks"])
    celery.conf.update(celery_settings(config))
    observability.install(celery, config)  # JSON logs, request ids from the API, metrics endpoint, Sentry
    return celery


app = create_celery()
