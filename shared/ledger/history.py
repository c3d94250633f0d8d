"""Newest-first history with keyset (cursor) pagination: stable while new rows arrive."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from shared.ledger.accounts import Account
from shared.ledger.errors import InvalidCursor
from shared.models import Transaction, Withdrawal

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_cursor: str | None


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.astimezone(UTC).isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, row_id = raw.split("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError("cursor timestamp has no timezone")
        # In UTC here, where a stamp at the edge of datetime's range overflows (it would on the way to the database).
        return created_at.astimezone(UTC), uuid.UUID(row_id)
    except (ValueError, OverflowError, UnicodeDecodeError, binascii.Error):
        raise InvalidCursor("cursor is not one this API issued", cursor=["Not a cursor this API issued."]) from None


def _page(session: Session, model: Any, query: Select[Any], limit: int, cursor: str | None) -> Page[Any]:
    if cursor:
        created_at, row_id = decode_cursor(cursor)
        # A row-value comparison is one range condition on the (owner, created_at, id) index, so a page deep in a
        # long history costs what the first page costs. The equivalent "a < x OR (a = x AND b < y)" is only a
        # filter there: PostgreSQL walked every newer row first (500k rows, 300 ms, at the middle of 1M).
        query = query.where(tuple_(model.created_at, model.id) < (created_at, row_id))  # binds take the column types
    rows = session.execute(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)).scalars().all()
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit else None
    return Page(items, next_cursor)


def list_transactions(session: Session, account: Account, limit: int, cursor: str | None = None) -> Page[Transaction]:
    query = select(Transaction).where(Transaction.wallet_id == account.wallet_id)
    return _page(session, Transaction, query, limit, cursor)


def list_withdrawals(session: Session, account: Account, limit: int, cursor: str | None = None) -> Page[Withdrawal]:
    query = select(Withdrawal).where(Withdrawal.user_id == account.user_id)
    return _page(session, Withdrawal, query, limit, cursor)
