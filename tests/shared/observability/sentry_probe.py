"""Run in a subprocess by test_sentry.py: a real app, a failing request, Sentry flushed. Prints JSON."""

from __future__ import annotations

import json
import os
import sys

import sentry_sdk

from api import create_app
from shared.config import AppEnv, Config


def main(dsn: str) -> None:
    # The secrets come from the environment: in this file's source (which Sentry quotes as context) or in
    # argv (which it reports) they would show up through the probe itself rather than through the service.
    bank_token, id_token = os.environ["PROBE_BANK_TOKEN"], os.environ["PROBE_ID_TOKEN"]
    config = Config.from_env({}, app_env=AppEnv.TEST, database_url="sqlite://", auth_dev_bypass=True, sentry_dsn=dsn)
    app = create_app(config)

    @app.post("/boom")
    def boom() -> None:
        raise RuntimeError("payout exploded")

    response = app.test_client().post(
        "/boom",
        json={"amount_cents": 500, "bank_token": bank_token},
        headers={"Authorization": f"Bearer {id_token}", "X-Request-ID": "sentry-req-1"},
    )
    sentry_sdk.flush(timeout=5)
    print(json.dumps({"status": response.status_code, "initialized": sentry_sdk.is_initialized()}))


if __name__ == "__main__":
    main(sys.argv[1])
