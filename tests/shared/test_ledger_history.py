"""History: newest first, keyset cursors that never repeat or skip a row, even with ties and new rows."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared import ledger
from shared.ledger.history import decode_cursor, encode_cursor
from shared.models import Transaction
from tests.factories import fund, make_account, make_withdrawal


def _walk(session: Session, account: ledger.Account, limit: int) -> list[uuid.UUID]:
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        page = ledger.list_transactions(session, account, limit, cursor)
        seen.extend(t.id for t in page.items)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_newest_first(any_session: Session) -> None:
    account = make_account(any_session)
    for cents in (10, 20, 30):
        fund(any_session, account, cents)

    page = ledger.list_transactions(any_session, account, 10)

    assert [t.amount_cents for t in page.items] == [30, 20, 10]
    assert page.next_cursor is None


def test_only_the_callers_rows(any_session: Session) -> None:
    mine, theirs = make_account(any_session), make_account(any_session)
    fund(any_session, mine, 10)
    fund(any_session, theirs, 1000)
    make_withdrawal(any_session, theirs, 500)

    assert [t.amount_cents for t in ledger.list_transactions(any_session, mine, 50).items] == [10]
    assert ledger.list_withdrawals(any_session, mine, 50).items == []
    assert len(ledger.list_withdrawals(any_session, theirs, 50).items) == 1


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 8])
def test_rows_with_identical_timestamps_are_each_returned_once(any_session: Session, limit: int) -> None:
    account = make_account(any_session)
    for _ in range(7):
        fund(any_session, account, 10)
    # Ties on created_at are real (one clock tick, many pods): the id breaks them.
    any_session.execute(sa.update(Transaction).values(created_at=datetime(2024, 1, 15, 10, 30, tzinfo=UTC)))
    any_session.commit()

    walked = _walk(any_session, account, limit)

    all_ids = any_session.execute(sa.select(Transaction.id)).scalars().all()
    assert sorted(walked) == sorted(all_ids)
    assert len(walked) == len(set(walked)) == 7


def test_rows_inserted_between_pages_cause_no_duplicates_or_gaps(any_session: Session) -> None:
    account = make_account(any_session)
    for _ in range(10):
        fund(any_session, account, 10)
    original = [t.id for t in ledger.list_transactions(any_session, account, 50).items]

    walked: list[uuid.UUID] = []
    page = ledger.list_transactions(any_session, account, 3)
    while True:
        walked.extend(t.id for t in page.items)
        fund(any_session, account, 20)  # a new deposit arrives while the client pages
        if page.next_cursor is None:
            break
        page = ledger.list_transactions(any_session, account, 3, page.next_cursor)

    assert walked == original


def test_cursor_round_trip() -> None:
    stamp, row_id = datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(stamp, row_id)) == (stamp, row_id)


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


ROW_ID = "0b9f6a52-3f4e-4d6c-9a51-7c2d8e1f0a11"


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not-a-cursor", id="not-base64-content"),
        pytest.param("!!!!", id="not-base64"),
        pytest.param("é", id="not-ascii"),
        pytest.param(_cursor("2024-01-15T10:30:00+00:00"), id="no-id"),
        pytest.param(_cursor(f"2024-01-15T10:30:00|{ROW_ID}"), id="no-timezone"),
        pytest.param(_cursor("2024-01-15T10:30:00+00:00|not-a-uuid"), id="bad-uuid"),
        pytest.param(_cursor(f"yesterday|{ROW_ID}"), id="bad-timestamp"),
        pytest.param(_cursor(f"2024-01-15T10:30:00+00:00|{ROW_ID}|extra"), id="extra-part"),
        # Valid ISO 8601, but outside what a UTC datetime can hold once the offset is applied.
        pytest.param(_cursor(f"0001-01-01T00:00:00+01:00|{ROW_ID}"), id="underflows-utc"),
        pytest.param(_cursor(f"9999-12-31T23:59:59-05:00|{ROW_ID}"), id="overflows-utc"),
    ],
)
def test_a_cursor_we_did_not_issue_is_invalid(any_session: Session, cursor: str) -> None:
    account = make_account(any_session)
    with pytest.raises(ledger.InvalidCursor):
        ledger.list_transactions(any_session, account, 10, cursor)
    with pytest.raises(ledger.InvalidCursor):
        ledger.list_withdrawals(any_session, account, 10, cursor)
