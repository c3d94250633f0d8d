"""Real RS256 signature checks: firebase-admin against certificates from a local server, no emulator.

A token is accepted only when signed by a published key (by kid) with RS256, for our project (aud), from
Firebase (iss), unexpired, with a sensible subject. Everything else is 401 and creates no user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import firebase_admin._token_gen
import jwt
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from shared.config import Config
from shared.db import Database
from shared.models import User
from tests.api.conftest import assert_error
from tests.conftest import EMULATOR_HOST_VARIABLE
from tests.firebase_tokens import CertServer, SigningKey, claims, make_signing_key, sign, unsigned
from tests.snapshots import take_snapshot

KID = "test-key-1"
CUSTOM_TOKEN_AUDIENCE = "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"


@pytest.fixture(scope="module")
def published_key() -> SigningKey:
    return make_signing_key(KID)


@pytest.fixture(scope="module")
def unpublished_key() -> SigningKey:
    return make_signing_key(KID)  # same kid, different key: a forged signature


@pytest.fixture(scope="module")
def cert_server(published_key: SigningKey) -> Iterator[CertServer]:
    server = CertServer([published_key])
    yield server
    server.close()


@pytest.fixture
def token_app(
    config: Config, database: Database, cert_server: CertServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Flask]:
    assert EMULATOR_HOST_VARIABLE not in os.environ, "the emulator would skip signature checks"
    # Read when the app's auth client is built (lazily, on the first verify), so patch before any request.
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", cert_server.url)
    application = create_app(config.replace(auth_dev_bypass=False))
    yield application
    application.extensions["wallet_db"].dispose()


@pytest.fixture
def token_client(token_app: Flask) -> FlaskClient:
    return token_app.test_client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_is_accepted_and_keys_the_user_by_uid(
    token_client: FlaskClient, db_session: Any, published_key: SigningKey
) -> None:
    token = sign(claims("firebase-uid-1", "ada@example.com"), published_key)

    response = token_client.post("/deposit", json={"material": "plastic", "units": 2}, headers=_bearer(token))

    assert response.status_code == 201, response.json
    user = db_session.execute(sa.select(User)).scalar_one()
    assert (user.firebase_uid, user.email) == ("firebase-uid-1", "ada@example.com")


def test_the_email_is_kept_current_for_the_same_uid(
    token_client: FlaskClient, db_session: Any, published_key: SigningKey
) -> None:
    first = token_client.get("/wallet", headers=_bearer(sign(claims("uid-2", "old@example.com"), published_key)))
    second = token_client.get("/wallet", headers=_bearer(sign(claims("uid-2", "new@example.com"), published_key)))

    assert first.status_code == second.status_code == 200
    assert first.json["id"] == second.json["id"]
    assert db_session.execute(sa.select(User.firebase_uid, User.email)).all() == [("uid-2", "new@example.com")]


def test_a_valid_token_wins_over_a_bypass_header(
    config: Config,
    database: Database,
    cert_server: CertServer,
    published_key: SigningKey,
    db_session: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", cert_server.url)
    app = create_app(config)  # bypass on
    try:
        headers = {**_bearer(sign(claims("uid-3", "real@example.com"), published_key)), "X-Test-User-Email": "x@y.z"}
        assert app.test_client().get("/wallet", headers=headers).status_code == 200
    finally:
        app.extensions["wallet_db"].dispose()
    assert db_session.execute(sa.select(User.firebase_uid)).scalars().all() == ["uid-3"]


def _without_kid(payload: dict[str, Any], key: SigningKey) -> str:
    return jwt.encode(payload, key.private_pem, algorithm="RS256")  # properly signed, but no kid header


def _tampered(token: str, forged: SigningKey) -> str:
    """A published signature over someone else's claims."""
    header, _, signature = token.split(".")
    other_claims = sign(claims("uid-admin", "admin@example.com"), forged).split(".")[1]
    return f"{header}.{other_claims}.{signature}"


def _hs256_confusion(payload: dict[str, Any], key: SigningKey) -> str:
    """The classic RS256/HS256 confusion: an HMAC keyed with the (public) certificate."""

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    signing_input = f"{part({'alg': 'HS256', 'kid': KID, 'typ': 'JWT'})}.{part(payload)}"
    mac = hmac.new(key.certificate_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


@pytest.fixture(scope="module")
def bad_tokens(published_key: SigningKey, unpublished_key: SigningKey) -> dict[str, tuple[str, str]]:
    """name -> (token, expected details.reason)."""
    now = int(time.time())
    good = claims("uid-bad", "mallory@example.com")
    published, forged = published_key, unpublished_key
    expired = claims("uid-bad", iat=now - 7200, auth_time=now - 7200, exp=now - 3600)
    return {
        "expired": (sign(expired, published), "expired"),
        "wrong-audience": (sign(claims("uid-bad", aud="someone-elses-project"), published), "invalid"),
        "wrong-issuer": (sign(claims("uid-bad", iss="https://securetoken.google.com/other"), published), "invalid"),
        "issuer-of-another-service": (sign(claims("uid-bad", iss="https://accounts.google.com"), published), "invalid"),
        "bad-signature": (sign(good, forged), "invalid"),
        "tampered-payload": (_tampered(sign(good, published), forged), "invalid"),
        "missing-kid": (_without_kid(good, published), "invalid"),
        "unknown-kid": (sign(good, published, headers={"kid": "not-published"}), "invalid"),
        "alg-none": (unsigned(good, {"alg": "none", "kid": KID, "typ": "JWT"}), "invalid"),
        "alg-none-no-kid": (unsigned(good, {"alg": "none", "typ": "JWT"}), "invalid"),
        "alg-hs256-with-public-cert-as-secret": (_hs256_confusion(good, published), "invalid"),
        "issued-in-the-future": (sign(claims("uid-bad", iat=now + 600), published), "invalid"),
        "empty-subject": (sign(claims("uid-bad", sub=""), published), "invalid"),
        "subject-over-128": (sign(claims("u" * 129), published), "invalid"),
        "custom-token-audience": (sign(claims("uid-bad", aud=CUSTOM_TOKEN_AUDIENCE), published), "invalid"),
    }  # fmt: skip


BAD_TOKEN_NAMES = [
    "expired",
    "wrong-audience",
    "wrong-issuer",
    "issuer-of-another-service",
    "bad-signature",
    "tampered-payload",
    "missing-kid",
    "unknown-kid",
    "alg-none",
    "alg-none-no-kid",
    "alg-hs256-with-public-cert-as-secret",
    "issued-in-the-future",
    "empty-subject",
    "subject-over-128",
    "custom-token-audience",
]


@pytest.mark.parametrize("name", BAD_TOKEN_NAMES)
def test_a_bad_token_is_401_and_creates_nobody(
    token_client: FlaskClient, database: Database, bad_tokens: dict[str, tuple[str, str]], name: str
) -> None:
    token, reason = bad_tokens[name]
    before = take_snapshot(database)

    for method, path, body in (("GET", "/wallet", None), ("POST", "/deposit", {"material": "plastic", "units": 1})):
        response = token_client.open(path, method=method, json=body, headers=_bearer(token))
        assert assert_error(response, 401, "unauthenticated") == {"reason": reason}

    assert take_snapshot(database) == before


def test_unreachable_public_keys_are_503_with_retry_after_not_500(
    config: Config, database: Database, published_key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", "http://127.0.0.1:9/nothing-listens-here")
    app = create_app(config)
    try:
        response = app.test_client().get("/wallet", headers=_bearer(sign(claims("uid-4"), published_key)))
    finally:
        app.extensions["wallet_db"].dispose()
    assert_error(response, 503, "auth_unavailable")  # our dependency is down, not the caller's token
    assert "retry" in response.json["error"]["message"] and response.headers["Retry-After"] == "5"
