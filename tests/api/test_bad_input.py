"""Every bad input gets its 4xx in the one error shape, and moves nothing: no balance, no row, anywhere.

Each case is sent by the funded caller (unless it is about authentication) against a database that already
holds two users, their deposits and a withdrawal each; a snapshot of every balance and every table's row
count is taken before and compared after.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.db import Database
from tests.api.conftest import Seeded, assert_error
from tests.factories import bypass_headers
from tests.snapshots import take_snapshot

JSON = "application/json"
GOOD_DEPOSIT = {"material": "plastic", "units": 10}
GOOD_WITHDRAWAL = {"amount_cents": 100, "bank_token": "tok_test_bank_account"}
UNKNOWN_UUID = "5d0c2f8e-9a63-4b7e-8c1d-0f2e3a4b5c6d"


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    status: int
    code: str
    json_body: Any = None
    data: str | bytes | None = None
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=bypass_headers)
    fields: tuple[str, ...] = ()  # fields that details must name


def deposit(body: Any, *fields: str) -> Case:
    return Case("POST", "/deposit", 400, "validation_error", json_body=body, fields=fields)


def withdraw(body: Any, *fields: str) -> Case:
    return Case("POST", "/withdraw", 400, "validation_error", json_body=body, fields=fields)


def raw(path: str, data: str | bytes, *fields: str) -> Case:
    return Case("POST", path, 400, "validation_error", data=data, fields=fields)


def query(path: str, *fields: str) -> Case:
    return Case("GET", path, 400, "validation_error", content_type=None, fields=fields)


VALIDATION_CASES = {
    # -- POST /deposit: types (a bool, a float or a string is not an int) --------------------------------
    "units-true": deposit({"material": "plastic", "units": True}, "units"),
    "units-false": deposit({"material": "plastic", "units": False}, "units"),
    "units-float": deposit({"material": "plastic", "units": 1.5}, "units"),
    "units-integral-float": deposit({"material": "plastic", "units": 10.0}, "units"),
    "units-string": deposit({"material": "plastic", "units": "10"}, "units"),
    "units-null": deposit({"material": "plastic", "units": None}, "units"),
    "units-list": deposit({"material": "plastic", "units": [10]}, "units"),
    "units-object": deposit({"material": "plastic", "units": {"n": 10}}, "units"),
    # -- range ------------------------------------------------------------------------------------------
    "units-zero": deposit({"material": "plastic", "units": 0}, "units"),
    "units-negative": deposit({"material": "plastic", "units": -5}, "units"),
    "units-over-max": deposit({"material": "aluminum", "units": 10_001}, "units"),
    "units-huge": deposit({"material": "aluminum", "units": 10**30}, "units"),
    # -- material ---------------------------------------------------------------------------------------
    "material-unknown": deposit({"material": "glass", "units": 1}, "material"),
    "material-wrong-case": deposit({"material": "Plastic", "units": 1}, "material"),
    "material-empty": deposit({"material": "", "units": 1}, "material"),
    "material-number": deposit({"material": 5, "units": 1}, "material"),
    "material-null": deposit({"material": None, "units": 1}, "material"),
    # -- missing and unknown fields ---------------------------------------------------------------------
    "missing-units": deposit({"material": "plastic"}, "units"),
    "missing-material": deposit({"units": 1}, "material"),
    "empty-object": deposit({}, "material", "units"),
    "unknown-field": deposit({**GOOD_DEPOSIT, "amount_cents": 1_000_000}, "amount_cents"),
    "unknown-field-user": deposit({**GOOD_DEPOSIT, "user_id": UNKNOWN_UUID}, "user_id"),
    # -- not a JSON object ------------------------------------------------------------------------------
    "body-array": deposit([GOOD_DEPOSIT], "body"),
    "body-string": deposit("plastic", "body"),
    "body-number": deposit(10, "body"),
    "body-true": deposit(True, "body"),
    "body-null": raw("/deposit", "null", "body"),
    "body-empty": raw("/deposit", "", "material", "units"),
    # -- malformed JSON ---------------------------------------------------------------------------------
    "json-truncated": raw("/deposit", '{"material": "plastic", "units": 1', "body"),
    "json-single-quotes": raw("/deposit", "{'material': 'plastic', 'units': 1}", "body"),
    "json-trailing-garbage": raw("/deposit", '{"material": "plastic", "units": 1} x', "body"),
    "json-not-utf8": raw("/deposit", b'{"material": "\xff\xfe", "units": 1}', "body"),
    "json-nan": raw("/deposit", '{"material": "plastic", "units": NaN}', "units"),
    "json-infinity": raw("/deposit", '{"material": "plastic", "units": 1e400}', "units"),
    "json-deeply-nested": raw("/deposit", "[" * 20_000 + "]" * 20_000, "body"),
    "json-5000-digit-int": raw("/deposit", '{"material": "plastic", "units": 1' + "0" * 5000 + "}", "body"),
    # -- POST /withdraw -----------------------------------------------------------------------------------
    "amount-true": withdraw({**GOOD_WITHDRAWAL, "amount_cents": True}, "amount_cents"),
    "amount-float": withdraw({**GOOD_WITHDRAWAL, "amount_cents": 150.0}, "amount_cents"),
    "amount-string": withdraw({**GOOD_WITHDRAWAL, "amount_cents": "150"}, "amount_cents"),
    "amount-null": withdraw({**GOOD_WITHDRAWAL, "amount_cents": None}, "amount_cents"),
    "amount-zero": withdraw({**GOOD_WITHDRAWAL, "amount_cents": 0}, "amount_cents"),
    "amount-negative": withdraw({**GOOD_WITHDRAWAL, "amount_cents": -100}, "amount_cents"),
    "amount-over-max": withdraw({**GOOD_WITHDRAWAL, "amount_cents": 1_000_000_001}, "amount_cents"),
    "amount-missing": withdraw({"bank_token": "tok"}, "amount_cents"),
    "token-missing": withdraw({"amount_cents": 100}, "bank_token"),
    "token-empty": withdraw({**GOOD_WITHDRAWAL, "bank_token": ""}, "bank_token"),
    "token-blank": withdraw({**GOOD_WITHDRAWAL, "bank_token": "   "}, "bank_token"),
    "token-too-long": withdraw({**GOOD_WITHDRAWAL, "bank_token": "t" * 256}, "bank_token"),
    "token-number": withdraw({**GOOD_WITHDRAWAL, "bank_token": 4242}, "bank_token"),
    "token-null": withdraw({**GOOD_WITHDRAWAL, "bank_token": None}, "bank_token"),
    "token-nul-byte": withdraw({**GOOD_WITHDRAWAL, "bank_token": "tok\x00x"}, "bank_token"),
    "withdraw-unknown-field": withdraw({**GOOD_WITHDRAWAL, "status": "paid"}, "status"),
    "withdraw-body-array": withdraw([GOOD_WITHDRAWAL], "body"),
    "withdraw-malformed": raw("/withdraw", '{"amount_cents": 100,', "body"),
    # -- GET /transactions and /withdrawals: limit and cursor --------------------------------------------
    "tx-limit-zero": query("/transactions?limit=0", "limit"),
    "tx-limit-over": query("/transactions?limit=201", "limit"),
    "tx-limit-negative": query("/transactions?limit=-1", "limit"),
    "tx-limit-word": query("/transactions?limit=ten", "limit"),
    "tx-limit-float": query("/transactions?limit=1.5", "limit"),
    "tx-limit-empty": query("/transactions?limit=", "limit"),
    "tx-limit-bool": query("/transactions?limit=true", "limit"),
    "tx-limit-huge": query("/transactions?limit=" + "9" * 50, "limit"),
    "tx-cursor-garbage": query("/transactions?cursor=garbage", "cursor"),
    "tx-cursor-empty": query("/transactions?cursor=", "cursor"),
    "tx-cursor-too-long": query("/transactions?cursor=" + "A" * 201, "cursor"),
    "tx-cursor-out-of-range": query("/transactions?cursor=MDAwMS0wMS0wMVQwMDowMDowMCswMTowMHx4", "cursor"),
    "wd-limit-zero": query("/withdrawals?limit=0", "limit"),
    "wd-limit-over": query("/withdrawals?limit=201", "limit"),
    "wd-limit-float": query("/withdrawals?limit=2.0", "limit"),
    "wd-cursor-garbage": query("/withdrawals?cursor=%E2%9C%93", "cursor"),
}

OTHER_4XX_CASES = {
    # -- 404 --------------------------------------------------------------------------------------------
    "withdrawal-of-another-user": Case("GET", "/withdrawals/{theirs}", 404, "not_found", content_type=None),
    "withdrawal-unknown": Case("GET", f"/withdrawals/{UNKNOWN_UUID}", 404, "not_found", content_type=None),
    "withdrawal-not-uuid": Case("GET", "/withdrawals/abc", 404, "not_found", content_type=None),
    "withdrawal-number": Case("GET", "/withdrawals/1", 404, "not_found", content_type=None),
    "withdrawal-uuid-plus": Case("GET", "/withdrawals/{own}x", 404, "not_found", content_type=None),
    "unknown-route": Case("GET", "/wallets", 404, "not_found", content_type=None),
    "unknown-post-route": Case("POST", "/deposits", 404, "not_found", json_body=GOOD_DEPOSIT),
    # -- 405 --------------------------------------------------------------------------------------------
    "delete-wallet": Case("DELETE", "/wallet", 405, "method_not_allowed", content_type=None),
    "post-wallet": Case("POST", "/wallet", 405, "method_not_allowed", json_body={"balance_cents": 10**6}),
    "get-deposit": Case("GET", "/deposit", 405, "method_not_allowed", content_type=None),
    "put-withdraw": Case("PUT", "/withdraw", 405, "method_not_allowed", json_body=GOOD_WITHDRAWAL),
    "post-transactions": Case("POST", "/transactions", 405, "method_not_allowed", json_body=GOOD_DEPOSIT),
    "post-withdrawals": Case("POST", "/withdrawals", 405, "method_not_allowed", json_body=GOOD_WITHDRAWAL),
    "patch-withdrawal": Case("PATCH", "/withdrawals/{own}", 405, "method_not_allowed", json_body={"status": "paid"}),
    "delete-withdrawal": Case("DELETE", "/withdrawals/{own}", 405, "method_not_allowed", content_type=None),
    "post-health": Case("POST", "/health", 405, "method_not_allowed", json_body={}),
    # -- 413: a body over 64 KiB, even a well-formed one ------------------------------------------------
    "deposit-over-64k": Case(
        "POST", "/deposit", 413, "payload_too_large", json_body={**GOOD_DEPOSIT, "pad": "x" * 65_536}
    ),
    "withdraw-over-64k": Case(
        "POST", "/withdraw", 413, "payload_too_large", json_body={**GOOD_WITHDRAWAL, "bank_token": "t" * 70_000}
    ),
    # -- 415: a POST whose body is not JSON -------------------------------------------------------------
    "deposit-text-plain": Case(
        "POST", "/deposit", 415, "unsupported_media_type", data=json.dumps(GOOD_DEPOSIT), content_type="text/plain"
    ),
    "deposit-form": Case(
        "POST",
        "/deposit",
        415,
        "unsupported_media_type",
        data="material=plastic&units=10",
        content_type="application/x-www-form-urlencoded",
    ),
    "deposit-no-content-type": Case(
        "POST", "/deposit", 415, "unsupported_media_type", data=json.dumps(GOOD_DEPOSIT), content_type=None
    ),
    "withdraw-xml": Case("POST", "/withdraw", 415, "unsupported_media_type", data="<w/>", content_type="text/xml"),
    # -- 422: a business rule, not a malformed request -------------------------------------------------
    "withdraw-more-than-balance": Case(
        "POST", "/withdraw", 422, "insufficient_funds", json_body={"amount_cents": 801, "bank_token": "tok"}
    ),
    # The minimum is a configured withdrawal policy, refused like the other policy limits (the guards' design).
    "withdraw-below-minimum": Case(
        "POST", "/withdraw", 422, "amount_below_minimum", json_body={"amount_cents": 99, "bank_token": "tok"}
    ),
}


def _send(client: FlaskClient, case: Case, seeded: Seeded) -> Any:
    path = case.path.format(own=seeded.own_withdrawal_id, theirs=seeded.strangers_withdrawal_id)
    kwargs: dict[str, Any] = {"headers": case.headers}
    if case.json_body is not None:
        kwargs["data"] = json.dumps(case.json_body)
    elif case.data is not None:
        kwargs["data"] = case.data
    if case.content_type is not None:
        kwargs["content_type"] = case.content_type
    return client.open(path, method=case.method, **kwargs)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=name) for name, c in {**VALIDATION_CASES, **OTHER_4XX_CASES}.items()]
)
def test_bad_input_gets_its_4xx_and_moves_nothing(
    client: FlaskClient, database: Database, seeded: Seeded, case: Case
) -> None:
    before = take_snapshot(database)

    response = _send(client, case, seeded)

    details = assert_error(response, case.status, case.code)
    for name in case.fields:
        assert name in details, details
        assert isinstance(details[name], list) and all(isinstance(m, str) for m in details[name]), details
    assert take_snapshot(database) == before


def test_405_names_the_allowed_methods(client: FlaskClient) -> None:
    response = client.delete("/withdraw")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_insufficient_funds_details_say_why(client: FlaskClient, seeded: Seeded) -> None:
    response = client.post("/withdraw", json={"amount_cents": 5000, "bank_token": "tok"}, headers=bypass_headers())
    assert assert_error(response, 422, "insufficient_funds") == {"balance_cents": 800, "amount_cents": 5000}


def test_minimum_withdrawal_comes_from_config(client: FlaskClient, seeded: Seeded) -> None:
    response = client.post("/withdraw", json={"amount_cents": 99, "bank_token": "tok"}, headers=bypass_headers())
    assert assert_error(response, 422, "amount_below_minimum") == {"min_cents": 100, "amount_cents": 99}
    accepted = client.post("/withdraw", json={"amount_cents": 100, "bank_token": "tok"}, headers=bypass_headers())
    assert accepted.status_code == 202


def test_a_chunked_body_over_64k_is_413_not_a_truncated_400(
    client: FlaskClient, database: Database, seeded: Seeded
) -> None:
    """No Content-Length (Transfer-Encoding: chunked): Werkzeug stops at the limit instead of refusing."""
    before = take_snapshot(database)
    body = json.dumps({**GOOD_DEPOSIT, "pad": "x" * 70_000}).encode()
    response = client.post(
        "/deposit",
        input_stream=io.BytesIO(body),
        content_type=JSON,
        headers=bypass_headers(),
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},  # as gunicorn sends chunked
    )
    assert_error(response, 413, "payload_too_large")
    assert take_snapshot(database) == before
