"""Per-app objects (config, database) and the per-request session, reached through small accessors."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from shared.config import Config
from shared.db import Database


def init_database(app: Flask, config: Config) -> Database:
    database = Database.from_config(config)
    app.extensions["wallet_db"] = database
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


def close_db_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
