"""gunicorn.conf.py: SIGTERM drains in-flight requests before the server exits."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import requests
import sqlalchemy as sa

from shared.db import Database
from tests.conftest import truncate_all
from tests.factories import fund
from tests.live_server import start_live_server

pytestmark = pytest.mark.slow


def test_sigterm_lets_the_request_in_flight_finish(database_url: str, database: Database) -> None:
    from shared import ledger

    email = "drain@example.com"
    with database.session() as session:
        account = ledger.get_or_create_account(session, f"dev-bypass:{email}", email)
        fund(session, account, 1000)
    server = start_live_server({"APP_ENV": "test", "DATABASE_URL": database_url, "AUTH_DEV_BYPASS": "true"}, workers=2)
    blocker = sa.create_engine(database_url)
    replies: list[requests.Response] = []
    try:
        with blocker.connect() as conn:
            # Hold the wallet row: the withdrawal's UPDATE waits on it, so the request is in flight.
            conn.execute(sa.text("SELECT 1 FROM wallets WHERE id = :id FOR UPDATE"), {"id": account.wallet_id})
            thread = threading.Thread(
                target=lambda: replies.append(
                    requests.post(
                        f"{server.url}/withdraw",
                        json={"amount_cents": 300, "bank_token": "tok_drain"},
                        headers={"X-Test-User-Email": email},
                        timeout=30,
                    )
                )
            )
            thread.start()
            time.sleep(1.0)
            server.process.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert thread.is_alive() and server.process.poll() is None, "gunicorn quit before the request finished"
            conn.rollback()  # release the row
        thread.join(timeout=15)
        assert replies and replies[0].status_code == 202
        assert server.process.wait(timeout=15) == 0
    finally:
        server.stop()
        blocker.dispose()
        truncate_all(database)
