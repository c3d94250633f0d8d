"""Plain SQLAlchemy 2: engines, sessions and the declarative base, with no Flask in sight.

The worker imports this directly; the API opens one session per request and closes it on teardown.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator, Uuid

from shared.config import VAR_DIR

# Stable constraint names so Alembic autogenerate and downgrades are deterministic on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

log = logging.getLogger(__name__)

# SQLite waits this long for a competing writer instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 30_000


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware in UTC, on PostgreSQL and on SQLite alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        # SQLite stores text; dropping the offset keeps lexical order equal to time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {int: BigInteger, datetime: UTCDateTime, uuid.UUID: Uuid}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave for concurrent writers: WAL, FKs, and write locks taken at BEGIN.

    pysqlite's own transaction handling starts transactions lazily and in DEFERRED mode, which lets two
    writers deadlock on upgrade; we take over BEGIN and make it IMMEDIATE (SQLAlchemy's documented recipe).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, options: dict[str, Any] | None = None) -> Engine:
    options = dict(options or {})
    if url.startswith("sqlite"):
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        options.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **options)
        _configure_sqlite(engine)
        return engine
    options.setdefault("pool_pre_ping", True)
    return create_engine(url, **options)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: views dump objects after the ledger has committed them.
    return sessionmaker(bind=engine, expire_on_commit=False)


# session.info flag: an enclosing unit_of_work() owns the transaction and will commit it.
_UNIT_OF_WORK = "wallet.unit_of_work"


@contextmanager
def atomic(session: Session) -> Iterator[Session]:
    """One unit of work: commit if the block succeeds, roll back if it raises.

    Inside :func:`unit_of_work` the block runs in a SAVEPOINT instead and the enclosing unit commits.
    """
    if session.info.get(_UNIT_OF_WORK):
        with session.begin_nested():
            yield session
        return
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


def owns_no_transaction(session: Session) -> bool:
    """True when nothing has begun on ``session`` and no :func:`unit_of_work` encloses it.

    Only then may one self-contained statement run in autocommit (its own transaction, no BEGIN and COMMIT round
    trips): inside a unit of work, or after the session has begun, it must join the open transaction instead.
    """
    return not session.info.get(_UNIT_OF_WORK) and not session.in_transaction()


@contextmanager
def autocommit(conn: Connection) -> Iterator[Connection]:
    """Run ONE self-contained statement on ``conn`` (PostgreSQL, psycopg2) as its own transaction.

    psycopg2 sends BEGIN as a round trip of its own before the first statement of a transaction, and COMMIT is
    another; a single statement in autocommit is just as atomic with neither. SQLAlchemy's
    ``isolation_level="AUTOCOMMIT"`` would also do it, but it sets and resets the isolation level around every
    checkout (two ``SET default_transaction_isolation`` round trips); flipping the driver's ``autocommit`` flag,
    as SQLAlchemy's own pre-ping does, sends nothing. The caller then commits or closes ``conn`` as usual (a
    no-op: nothing is open). Only for a statement that must not share a transaction with anything else.
    """
    dbapi_conn: Any = conn.connection.dbapi_connection
    dbapi_conn.autocommit = True
    try:
        yield conn
    finally:
        if not dbapi_conn.closed:  # a connection lost mid-statement is invalidated by SQLAlchemy anyway
            dbapi_conn.autocommit = False


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """One transaction around several :func:`atomic` blocks: all of them commit together, or none does.

    Lets a caller write its own rows in the same database transaction as the ledger's (the idempotency
    record of a request beside the money the request moved).
    """
    if session.info.get(_UNIT_OF_WORK):
        raise RuntimeError("units of work do not nest")
    session.info[_UNIT_OF_WORK] = True
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info.pop(_UNIT_OF_WORK, None)


def _make_read_only(engine: Engine) -> None:
    """Every transaction on this engine is READ ONLY: a write routed here fails instead of diverging."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.close()
        dbapi_conn.commit()


class Database:
    """The engine and session factory one process uses, built from the config.

    ``read_only`` is for a replica: on PostgreSQL its sessions refuse writes on our side too.
    """

    def __init__(self, url: str, engine_options: dict[str, Any] | None = None, *, read_only: bool = False) -> None:
        self.engine = make_engine(url, engine_options)
        if read_only and self.engine.dialect.name == "postgresql":
            _make_read_only(self.engine)
        self.sessions = make_sessionmaker(self.engine)

    @classmethod
    def from_config(cls, config: Any) -> Database:
        return cls(config.database_url, config.sqlalchemy_engine_options)

    @classmethod
    def replica_from_config(cls, config: Any) -> Database | None:
        """The read replica named by DATABASE_REPLICA_URL, or None when there is none."""
        if not config.database_replica_url:
            return None
        return cls(config.database_replica_url, config.sqlalchemy_engine_options, read_only=True)

    def session(self) -> Session:
        return self.sessions()

    def dispose(self) -> None:
        self.engine.dispose()


_ON_COMMIT = "wallet.on_commit"


def on_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the ledger's writes are really committed; forget it if they roll back.

    For follow-up work that must not run before the rows it needs are visible (enqueueing a payout task).
    Outside a :func:`unit_of_work` the ledger function has already committed when it returns, so the callback
    runs at once; inside one, it runs after the unit commits. Register it after the work it follows has
    succeeded (a SAVEPOINT rolled back does not drop it). A callback that raises is logged and does not undo
    or hide the commit.
    """
    if session.info.get(_UNIT_OF_WORK):
        session.info.setdefault(_ON_COMMIT, []).append(callback)
    else:
        _run_callbacks([callback])


def _run_callbacks(callbacks: list[Callable[[], None]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("a callback registered with on_commit() failed after the commit")


@event.listens_for(Session, "after_commit")
def _run_on_commit(session: Session) -> None:
    _run_callbacks(session.info.pop(_ON_COMMIT, []))


@event.listens_for(Session, "after_soft_rollback")
def _forget_on_commit(session: Session, previous_transaction: Any) -> None:
    # A SAVEPOINT rolled back (a refusal inside a unit of work) leaves the outer transaction and its callbacks.
    if previous_transaction.parent is None:
        session.info.pop(_ON_COMMIT, None)
