"""Idempotency keys in shared/: every phase and recovery point, seeded directly, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared import idempotency, ledger
from shared.db import Database, unit_of_work, utcnow
from shared.idempotency import cleanup
from shared.models import IdempotencyKey, Material, Transaction
from tests.factories import DEFAULT_RATES, make_account

pytest_plugins = ["tests.backends"]  # the `backend` fixture: PostgreSQL and SQLite

FINGERPRINT = idempotency.fingerprint("POST", "/deposit", b'{"material":"plastic","units":2}')
OK = idempotency.StoredResponse(201, '{"success": true}', {"Location": "/somewhere"})


def _claim(session: Session, account: ledger.Account, key: str = "key-1", fingerprint: str = FINGERPRINT) -> object:
    return idempotency.claim(session, account.user_id, key, fingerprint, method="POST", path="/deposit")


def _deposit_work(session: Session, account: ledger.Account) -> idempotency.StoredResponse:
    ledger.deposit(session, account, Material.PLASTIC, 2, DEFAULT_RATES)
    return OK


def _deposits(session: Session, account: ledger.Account) -> int:
    session.rollback()
    count: int = session.execute(
        select(func.count()).select_from(Transaction).where(Transaction.wallet_id == account.wallet_id)
    ).scalar_one()
    return count


def _age(session: Session, **columns: timedelta) -> None:
    values = {name: utcnow() - age for name, age in columns.items()}
    session.execute(update(IdempotencyKey).values(**values).execution_options(synchronize_session=False))
    session.commit()


def test_fingerprint_covers_method_path_and_body() -> None:
    base = idempotency.fingerprint("POST", "/deposit", b"{}")
    assert base == idempotency.fingerprint("post", "/deposit", b"{}")
    assert base != idempotency.fingerprint("POST", "/withdraw", b"{}")
    assert base != idempotency.fingerprint("PUT", "/deposit", b"{}")
    assert base != idempotency.fingerprint("POST", "/deposit", b'{"a":1}')
    # Length-prefixed parts: moving bytes between path and body gives another digest.
    assert idempotency.fingerprint("POST", "/a", b"b") != idempotency.fingerprint("POST", "/ab", b"")


def test_first_request_claims_and_completes_once(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        held = _claim(session, account)
        assert isinstance(held, idempotency.Claim)
        stored = idempotency.complete(session, held, lambda: _deposit_work(session, account))
        assert stored == OK

        replay = _claim(session, account)
        assert replay == OK  # status, body and headers as first sent
        assert _deposits(session, account) == 1
        assert ledger.get_wallet(session, account).balance_cents == 10


def test_same_key_while_in_flight_is_refused(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        assert isinstance(_claim(session, account), idempotency.Claim)
        with pytest.raises(idempotency.IdempotentRequestInProgress) as refused:
            _claim(session, account)
        assert refused.value.code == "idempotency_request_in_progress"


def test_same_key_for_another_request_is_refused(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        held = _claim(session, account)
        assert isinstance(held, idempotency.Claim)
        other = idempotency.fingerprint("POST", "/deposit", b'{"material":"plastic","units":3}')
        with pytest.raises(idempotency.IdempotencyKeyReused) as refused:
            _claim(session, account, fingerprint=other)
        assert refused.value.code == "idempotency_key_reused"
        idempotency.complete(session, held, lambda: OK)
        with pytest.raises(idempotency.IdempotencyKeyReused):
            _claim(session, account, fingerprint=other)  # after completion too


def test_keys_are_scoped_per_user(backend: Database) -> None:
    with backend.session() as session:
        first, second = make_account(session), make_account(session)
        held = _claim(session, first)
        assert isinstance(held, idempotency.Claim)
        assert isinstance(_claim(session, second), idempotency.Claim)  # same key, another user: no conflict


def test_work_that_fails_moves_nothing_and_release_allows_a_retry(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        held = _claim(session, account)
        assert isinstance(held, idempotency.Claim)

        def deposit_then_crash() -> idempotency.StoredResponse:
            _deposit_work(session, account)
            raise RuntimeError("the server failed after the ledger call")

        with pytest.raises(RuntimeError):
            idempotency.complete(session, held, deposit_then_crash)
        assert _deposits(session, account) == 0  # the deposit rolled back with the missing response
        with pytest.raises(idempotency.IdempotentRequestInProgress):
            _claim(session, account)  # still locked until released

        idempotency.release(session, held)
        retry = _claim(session, account)
        assert isinstance(retry, idempotency.Claim)
        idempotency.complete(session, retry, lambda: _deposit_work(session, account))
        assert _deposits(session, account) == 1


def test_a_recorded_refusal_is_replayed(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        held = _claim(session, account)
        assert isinstance(held, idempotency.Claim)
        refusal = idempotency.StoredResponse(422, '{"error": {"code": "insufficient_funds"}}')
        idempotency.record(session, held, refusal)
        assert _claim(session, account) == refusal


def test_a_lock_left_by_a_dead_process_expires_and_the_key_is_taken_over(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        dead = _claim(session, account)
        assert isinstance(dead, idempotency.Claim)
        _age(session, locked_at=idempotency.LOCK_TIMEOUT - timedelta(seconds=5))
        with pytest.raises(idempotency.IdempotentRequestInProgress):
            _claim(session, account)  # not yet expired
        _age(session, locked_at=idempotency.LOCK_TIMEOUT + timedelta(seconds=1))

        retry = _claim(session, account)
        assert isinstance(retry, idempotency.Claim) and retry.lock_id != dead.lock_id
        idempotency.complete(session, retry, lambda: _deposit_work(session, account))

        # The "dead" request was only slow and now tries to finish: it moves nothing.
        with pytest.raises(idempotency.IdempotentRequestInProgress):
            idempotency.complete(session, dead, lambda: _deposit_work(session, account))
        assert _deposits(session, account) == 1
        assert _claim(session, account) == OK


def test_an_expired_key_is_a_new_request(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        held = _claim(session, account)
        assert isinstance(held, idempotency.Claim)
        idempotency.complete(session, held, lambda: _deposit_work(session, account))
        _age(session, created_at=idempotency.KEY_TTL + timedelta(minutes=1))

        other = idempotency.fingerprint("POST", "/withdraw", b"{}")
        again = _claim(session, account, fingerprint=other)  # neither replayed nor refused as reused
        assert isinstance(again, idempotency.Claim)
        idempotency.complete(session, again, lambda: _deposit_work(session, account))
        assert _deposits(session, account) == 2


def test_cleanup_deletes_only_expired_keys(backend: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cleanup, "BATCH_SIZE", 2)  # several batches
    with backend.session() as session:
        account = make_account(session)
        for number in range(5):
            _claim(session, account, key=f"old-{number}")
        _age(session, created_at=idempotency.KEY_TTL + timedelta(seconds=1))
        _claim(session, account, key="fresh")
        almost = _claim(session, account, key="almost")
        assert isinstance(almost, idempotency.Claim)
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "almost")
            .values(created_at=utcnow() - idempotency.KEY_TTL + timedelta(minutes=1))
        )
        session.commit()

        assert cleanup.run_once(session) == 5
        remaining = session.execute(select(IdempotencyKey.key).order_by(IdempotencyKey.key)).scalars().all()
        assert remaining == ["almost", "fresh"]
        assert cleanup.run_once(session) == 0


def test_ledger_calls_inside_a_unit_of_work_commit_together(backend: Database) -> None:
    with backend.session() as session:
        account = make_account(session)
        with pytest.raises(RuntimeError), unit_of_work(session):
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
            raise RuntimeError("something after the money failed")
        assert _deposits(session, account) == 0

        with unit_of_work(session):
            ledger.deposit(session, account, Material.PLASTIC, 1, DEFAULT_RATES)
            with pytest.raises(ledger.InsufficientFunds):  # a refusal inside rolls back to its savepoint only
                ledger.request_withdrawal(session, account, 10_000, "tok", ledger.WithdrawalPolicy(min_cents=1))
        assert _deposits(session, account) == 1
        assert ledger.verify(session) == []


def test_units_of_work_do_not_nest(database: Database) -> None:
    with database.session() as session, unit_of_work(session):
        nested = unit_of_work(session)
        with pytest.raises(RuntimeError, match="nest"):
            nested.__enter__()
