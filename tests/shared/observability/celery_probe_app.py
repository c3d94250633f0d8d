"""A minimal Celery app wired like the payout worker, for test_celery.py to run in a real worker process."""

from __future__ import annotations

import logging
import os

from celery import Celery

from shared.config import Config
from shared.observability import celery as observability
from shared.observability import metrics

config = Config.from_env()
app = Celery("probe", broker=config.broker_url)
app.conf.update(task_default_queue=os.environ.get("PROBE_QUEUE", "probe"), broker_connection_retry_on_startup=True)
observability.install(app, config)

log = logging.getLogger("probe.payouts")


@app.task(name="probe.payout_attempt")
def payout_attempt(withdrawal_id: str) -> str:
    log.info("payout attempt", extra={"withdrawal_id": withdrawal_id, "outcome": "paid"})
    metrics.record_payout_attempt("paid", 0.02)
    metrics.record_payout_attempt("failed", 0.01, failure_code="account_closed")
    return withdrawal_id
