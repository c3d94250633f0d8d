"""401 unauthenticated for every missing or malformed credential, on every protected endpoint; nothing moves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from shared.config import Config
from shared.db import Database
from tests.api.conftest import Seeded, assert_error
from tests.snapshots import take_snapshot

PROTECTED: dict[str, tuple[str, str, Any]] = {
    "get-wallet": ("GET", "/wallet", None),
    "post-deposit": ("POST", "/deposit", {"material": "aluminum", "units": 10}),
    "get-transactions": ("GET", "/transactions", None),
    "post-withdraw": ("POST", "/withdraw", {"amount_cents": 100, "bank_token": "tok"}),
    "get-withdrawals": ("GET", "/withdrawals", None),
    "get-withdrawal": ("GET", "/withdrawals/{own}", None),
}

BAD_CREDENTIALS: dict[str, dict[str, str]] = {
    "none": {},
    "basic-scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "bearer-no-token": {"Authorization": "Bearer"},
    "bearer-blank-token": {"Authorization": "Bearer    "},
    "bearer-huge-token": {"Authorization": "Bearer " + "a" * 9000},
    "bearer-garbage": {"Authorization": "Bearer not.a.jwt"},
    "bearer-empty-jwt": {"Authorization": "Bearer e30.e30.e30"},
    "bearer-json-array-parts": {"Authorization": "Bearer WzFd.WzFd.WzFd"},
    "token-scheme": {"Authorization": "Token abc"},
    # A bad token is refused even when a (valid) bypass header comes with it: the token decides.
    "bad-token-with-bypass": {"Authorization": "Bearer not.a.jwt", "X-Test-User-Email": "user@example.com"},
    "bypass-not-an-email": {"X-Test-User-Email": "not-an-email"},
    "bypass-empty": {"X-Test-User-Email": ""},
    "bypass-no-local-part": {"X-Test-User-Email": "@example.com"},
    "bypass-space": {"X-Test-User-Email": "a b@example.com"},
    "bypass-control-char": {"X-Test-User-Email": "a\tb@example.com"},
    # The bypass uid (dev-bypass:<email>) must fit users.firebase_uid (128): a longer one was a 500.
    "bypass-too-long": {"X-Test-User-Email": "a@" + "b" * 200 + ".com"},
}


def _call(client: FlaskClient, endpoint: str, headers: dict[str, str], seeded: Seeded) -> Any:
    method, path, body = PROTECTED[endpoint]
    return client.open(path.format(own=seeded.own_withdrawal_id), method=method, json=body, headers=headers)


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize("endpoint", ["get-wallet", "post-deposit", "post-withdraw"])
def test_bad_credentials_are_401(
    client: FlaskClient, database: Database, seeded: Seeded, endpoint: str, credentials: dict[str, str]
) -> None:
    before = take_snapshot(database)
    assert_error(_call(client, endpoint, credentials, seeded), 401, "unauthenticated")
    assert take_snapshot(database) == before


@pytest.mark.parametrize("endpoint", PROTECTED)
def test_every_protected_endpoint_needs_credentials(
    client: FlaskClient, database: Database, seeded: Seeded, endpoint: str
) -> None:
    before = take_snapshot(database)
    assert_error(_call(client, endpoint, {}, seeded), 401, "unauthenticated")
    assert take_snapshot(database) == before


def test_health_needs_no_credentials(client: FlaskClient) -> None:
    assert client.get("/health").json == {"status": "ok"}


@pytest.fixture
def app_without_bypass(config: Config, database: Database) -> Iterator[Flask]:
    application = create_app(config.replace(auth_dev_bypass=False))
    yield application
    application.extensions["wallet_db"].dispose()


@pytest.mark.parametrize("endpoint", PROTECTED)
def test_bypass_header_is_ignored_when_the_bypass_is_off(
    app_without_bypass: Flask, database: Database, seeded: Seeded, endpoint: str
) -> None:
    before = take_snapshot(database)
    client = app_without_bypass.test_client()
    for email in ("user@example.com", "new-user@example.com"):  # an existing user and one never seen
        response = _call(client, endpoint, {"X-Test-User-Email": email}, seeded)
        assert_error(response, 401, "unauthenticated")
    assert take_snapshot(database) == before
