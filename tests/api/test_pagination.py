"""GET /transactions and GET /withdrawals: newest first, default and bounded limits, stable cursors."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from shared import ledger
from tests.factories import bypass_headers, bypass_uid, fund, make_withdrawal

EMAIL = "pager@example.com"
H = bypass_headers(EMAIL)


def _account(session: Session) -> ledger.Account:
    return ledger.get_or_create_account(session, bypass_uid(EMAIL), EMAIL)


def _walk(client: FlaskClient, path: str, key: str, limit: int, between_pages: Any = None) -> list[str]:
    ids: list[str] = []
    url = f"{path}?limit={limit}"
    while True:
        page = client.get(url, headers=H).json
        assert len(page[key]) <= limit
        ids.extend(item["id"] for item in page[key])
        if between_pages:
            between_pages()
        if page["next_cursor"] is None:
            return ids
        url = f"{path}?limit={limit}&cursor={page['next_cursor']}"


def test_transactions_default_to_50_newest_first(client: FlaskClient, db_session: Session) -> None:
    account = _account(db_session)
    for i in range(1, 56):
        fund(db_session, account, 10 * i)

    first = client.get("/transactions", headers=H).json
    assert len(first["transactions"]) == 50
    amounts = [t["amount_cents"] for t in first["transactions"]]
    assert amounts == sorted(amounts, reverse=True) and amounts[0] == 550  # newest (largest) first
    rest = client.get(f"/transactions?cursor={first['next_cursor']}", headers=H).json
    assert [t["amount_cents"] for t in rest["transactions"]] == [50, 40, 30, 20, 10]
    assert rest["next_cursor"] is None


def test_withdrawals_default_to_20(client: FlaskClient, db_session: Session) -> None:
    account = _account(db_session)
    fund(db_session, account, 3000)
    for cents in range(100, 125):
        make_withdrawal(db_session, account, cents)

    first = client.get("/withdrawals", headers=H).json
    assert [w["amount_cents"] for w in first["withdrawals"]] == list(range(124, 104, -1))
    rest = client.get(f"/withdrawals?cursor={first['next_cursor']}", headers=H).json
    assert [w["amount_cents"] for w in rest["withdrawals"]] == [104, 103, 102, 101, 100]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("path", ["/transactions", "/withdrawals"])
@pytest.mark.parametrize("limit", [1, 200])
def test_limit_bounds_are_inclusive(client: FlaskClient, db_session: Session, path: str, limit: int) -> None:
    account = _account(db_session)
    fund(db_session, account, 1000)
    make_withdrawal(db_session, account, 100)
    make_withdrawal(db_session, account, 100)

    response = client.get(f"{path}?limit={limit}", headers=H)

    assert response.status_code == 200
    key = path.strip("/")
    assert len(response.json[key]) == min(limit, 2 if key == "withdrawals" else 3)
    assert (response.json["next_cursor"] is None) == (limit == 200)


def test_transaction_walk_sees_every_row_once_while_deposits_arrive(client: FlaskClient, db_session: Session) -> None:
    account = _account(db_session)
    for _ in range(11):
        fund(db_session, account, 10)
    original = [t["id"] for t in client.get("/transactions", headers=H).json["transactions"]]

    def new_deposit() -> None:
        client.post("/deposit", json={"material": "plastic", "units": 1}, headers=H)

    walked = _walk(client, "/transactions", "transactions", 4, between_pages=new_deposit)

    assert walked == original  # same rows, same order: no duplicates, no gaps, no newcomers mid-walk
    assert len(set(walked)) == 11


def test_withdrawal_walk_sees_every_row_once_while_withdrawals_arrive(client: FlaskClient, db_session: Session) -> None:
    account = _account(db_session)
    fund(db_session, account, 5000)
    for _ in range(7):
        make_withdrawal(db_session, account, 100)
    original = [w["id"] for w in client.get("/withdrawals", headers=H).json["withdrawals"]]

    def new_withdrawal() -> None:
        client.post("/withdraw", json={"amount_cents": 100, "bank_token": "tok"}, headers=H)

    assert _walk(client, "/withdrawals", "withdrawals", 3, between_pages=new_withdrawal) == original
