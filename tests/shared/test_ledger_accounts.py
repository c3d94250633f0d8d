"""Accounts: a user and a wallet appear on first sight of an identity, exactly once, with the email kept current."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared import ledger
from shared.db import Database
from shared.models import User, Wallet


def _count(session: Session, model: type) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_first_sight_creates_user_and_empty_wallet(any_session: Session) -> None:
    account = ledger.get_or_create_account(any_session, "uid-1", "one@example.com")

    user = any_session.get(User, account.user_id)
    assert user is not None
    assert (user.firebase_uid, user.email) == ("uid-1", "one@example.com")
    assert ledger.get_wallet(any_session, account).balance_cents == 0
    assert (account.firebase_uid, account.email) == ("uid-1", "one@example.com")


def test_same_uid_is_the_same_account_and_email_is_kept_current(any_session: Session) -> None:
    first = ledger.get_or_create_account(any_session, "uid-1", "old@example.com")
    again = ledger.get_or_create_account(any_session, "uid-1", "new@example.com")
    unchanged = ledger.get_or_create_account(any_session, "uid-1", None)  # a token without an email claim

    assert first.user_id == again.user_id == unchanged.user_id
    assert first.wallet_id == again.wallet_id == unchanged.wallet_id
    assert again.email == unchanged.email == "new@example.com"
    assert any_session.execute(sa.select(User.email)).scalar_one() == "new@example.com"
    assert (_count(any_session, User), _count(any_session, Wallet)) == (1, 1)


def test_users_are_keyed_by_uid_not_email(any_session: Session) -> None:
    a = ledger.get_or_create_account(any_session, "uid-a", "shared@example.com")
    b = ledger.get_or_create_account(any_session, "uid-b", "shared@example.com")
    assert a.user_id != b.user_id
    assert a.wallet_id != b.wallet_id


def test_concurrent_first_sights_create_exactly_one_user_and_wallet(any_database: Database) -> None:
    callers = 8
    barrier = threading.Barrier(callers)
    accounts: list[ledger.Account] = []
    errors: list[BaseException] = []

    def first_request() -> None:
        with any_database.session() as session:
            barrier.wait()
            try:
                accounts.append(ledger.get_or_create_account(session, "uid-race", "race@example.com"))
            except BaseException as exc:  # surfaced by the assertion below
                errors.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len({(a.user_id, a.wallet_id) for a in accounts}) == 1
    with any_database.session() as session:
        assert (_count(session, User), _count(session, Wallet)) == (1, 1)
