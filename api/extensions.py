"""Per-app objects (config, database) and the per-request session, reached through small accessors."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from shared.config import Config
from shared.db import Database


def init_database(app: Flask, config: Config) -> Database:
    database = Database.from_config(config)
    app.extensions["wallet_db"] = database
    app.extensions["wallet_replica_db"] = Database.replica_from_config(config)
    app.teardown_appcontext(close_db_session)
    return database


def get_config() -> Config:
    config: Config = current_app.extensions["wallet_config"]
    return config


def get_database() -> Database:
    database: Database = current_app.extensions["wallet_db"]
    return database


def db_session() -> Session:
    """The request's session; the ledger commits it, teardown closes it (rolling back anything left)."""
    if "db_session" not in g:
        g.db_session = get_database().session()
    session: Session = g.db_session
    return session


def get_replica() -> Database | None:
    replica: Database | None = current_app.extensions.get("wallet_replica_db")
    return replica


def read_session() -> Session:
    """A session for history reads that may lag the primary by the replication delay.

    The read replica when DATABASE_REPLICA_URL is set, else the request's primary session. Never use it for
    writes (the replica refuses them) nor for reads that must see the caller's own just-made writes (the
    wallet balance, a withdrawal's status while it is polled): those use :func:`db_session`.
    """
    replica = get_replica()
    if replica is None:
        return db_session()
    if "replica_session" not in g:
        g.replica_session = replica.session()
    session: Session = g.replica_session
    return session


def close_db_session(_exc: BaseException | None = None) -> None:
    for key in ("db_session", "replica_session"):
        session = g.pop(key, None)
        if session is not None:
            session.close()
