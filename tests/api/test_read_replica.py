"""DATABASE_REPLICA_URL: history reads go to the replica; writes and read-your-writes reads stay on the primary.

The "replica" is a copy of the primary taken at one moment (CREATE DATABASE ... TEMPLATE), so anything
written afterwards exists on the primary only, exactly like replication lag; it is reached through a role
whose sessions are read-only (default_transaction_read_only=on), so any write sent there would fail.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from api import create_app
from shared import ledger
from shared.config import AppEnv, Config
from shared.db import Database
from shared.migrations import alembic_config
from shared.models import Material
from tests.conftest import ADMIN_DATABASE_URL

EMAIL = "replica-reader@example.com"
RATES = {"plastic": 5, "aluminum": 10}


@dataclass(frozen=True)
class Databases:
    primary_url: str
    replica_url: str
    replica_admin_url: str


def _url(database: str, user: str | None = None) -> str:
    url = make_url(ADMIN_DATABASE_URL).set(database=database)
    if user:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def databases() -> Iterator[Databases]:
    from alembic import command

    suffix = uuid.uuid4().hex[:8]
    primary, replica, role = f"wallet_primary_{suffix}", f"wallet_replica_{suffix}", f"wallet_ro_{suffix}"
    admin = sa.create_engine(ADMIN_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{primary}"'))
    try:
        command.upgrade(alembic_config(_url(primary)), "head")
        seed = Database(_url(primary))
        with seed.session() as session:  # what the replica will have: one deposit and one withdrawal
            account = ledger.get_or_create_account(session, f"dev-bypass:{EMAIL}", EMAIL)
            ledger.deposit(session, account, Material.ALUMINUM, 100, RATES)
            ledger.request_withdrawal(session, account, 200, "tok_seeded", ledger.WithdrawalPolicy(min_cents=100))
        seed.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{replica}" TEMPLATE "{primary}"'))
            conn.execute(sa.text(f'CREATE ROLE "{role}" LOGIN'))
            conn.execute(sa.text(f'ALTER ROLE "{role}" SET default_transaction_read_only = on'))
            conn.execute(sa.text(f'GRANT CONNECT ON DATABASE "{replica}" TO "{role}"'))
        replica_admin = sa.create_engine(_url(replica), isolation_level="AUTOCOMMIT")
        with replica_admin.connect() as conn:
            conn.execute(sa.text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
            conn.execute(sa.text(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"'))
        replica_admin.dispose()
        # The role may write by its grants: only its read-only sessions stop it. That is what we rely on.
        yield Databases(_url(primary), _url(replica, user=role), _url(replica))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{replica}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{primary}" WITH (FORCE)'))
            conn.execute(sa.text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@pytest.fixture
def app(databases: Databases) -> Iterator[Flask]:
    config = Config.from_env(
        {},
        app_env=AppEnv.TEST,
        database_url=databases.primary_url,
        database_replica_url=databases.replica_url,
        auth_dev_bypass=True,
    )
    application = create_app(config)
    yield application
    application.extensions["wallet_db"].dispose()
    application.extensions["wallet_replica_db"].dispose()


def _replica_row_counts(databases: Databases) -> dict[str, int]:
    engine = sa.create_engine(databases.replica_admin_url)
    with engine.connect() as conn:
        counts = {
            table: conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("users", "wallets", "transactions", "withdrawals")
        }
    engine.dispose()
    return counts


def test_the_replica_role_cannot_write(databases: Databases) -> None:
    """The premise: the role's own sessions refuse writes, whatever our engine settings are."""
    engine = sa.create_engine(databases.replica_url)
    with engine.connect() as conn, pytest.raises(sa.exc.InternalError, match="read-only transaction"):
        conn.execute(sa.text("UPDATE wallets SET balance_cents = balance_cents"))
    engine.dispose()


def test_history_from_the_replica_writes_and_own_reads_from_the_primary(app: Flask, databases: Databases) -> None:
    client: FlaskClient = app.test_client()
    headers = {"X-Test-User-Email": EMAIL}
    before = _replica_row_counts(databases)

    # Writes succeed: none of them went to the read-only replica.
    deposit = client.post("/deposit", json={"material": "plastic", "units": 10}, headers=headers)
    assert deposit.status_code == 201, deposit.json
    withdraw = client.post("/withdraw", json={"amount_cents": 150, "bank_token": "tok_new"}, headers=headers)
    assert withdraw.status_code == 202, withdraw.json
    new_id = withdraw.json["withdrawal"]["id"]

    # Read-your-writes from the primary: the balance after the deposit and the new withdrawal's status.
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 1000 - 200 + 50 - 150
    polled = client.get(f"/withdrawals/{new_id}", headers=headers)
    assert polled.status_code == 200 and polled.json["status"] == "pending"

    # History from the replica: it still shows the moment it was copied, not the writes above.
    transactions = client.get("/transactions", headers=headers).json["transactions"]
    assert [(t["transaction_type"], t["amount_cents"]) for t in transactions] == [
        ("withdrawal", -200),
        ("deposit", 1000),
    ]
    withdrawals = client.get("/withdrawals", headers=headers).json["withdrawals"]
    assert [w["amount_cents"] for w in withdrawals] == [200]
    assert new_id not in {w["id"] for w in withdrawals}

    assert _replica_row_counts(databases) == before, "something was written to the replica"


def test_a_user_the_replica_has_not_seen_gets_empty_history(app: Flask, databases: Databases) -> None:
    client = app.test_client()
    headers = {"X-Test-User-Email": f"new-{uuid.uuid4().hex[:6]}@example.com"}
    assert client.get("/transactions", headers=headers).json == {"transactions": [], "next_cursor": None}
    assert client.get("/withdrawals", headers=headers).json == {"withdrawals": [], "next_cursor": None}
    assert client.get("/wallet", headers=headers).json["balance_cents"] == 0


def test_without_a_replica_everything_reads_the_primary(databases: Databases) -> None:
    config = Config.from_env({}, app_env=AppEnv.TEST, database_url=databases.primary_url, auth_dev_bypass=True)
    app = create_app(config)
    try:
        assert app.extensions["wallet_replica_db"] is None
        client = app.test_client()
        headers = {"X-Test-User-Email": EMAIL}
        client.post("/deposit", json={"material": "aluminum", "units": 1}, headers=headers)
        newest = client.get("/transactions?limit=1", headers=headers).json["transactions"][0]
        assert (newest["material"], newest["amount_cents"]) == ("aluminum", 10)
    finally:
        app.extensions["wallet_db"].dispose()
