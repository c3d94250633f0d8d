"""Real Firebase sign-ins (email/password and google.com) through the Auth emulator, verified by firebase-admin.

The app is given the emulator through its Config (firebase_auth_emulator_host), as a .env would; it must copy
that into the environment variable firebase-admin reads, and the variable is removed after each test so every
other test verifies real signatures.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import firebase_admin
import firebase_admin._token_gen
import pytest
import requests
import sqlalchemy as sa
from firebase_admin import auth as firebase_auth
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from api import create_app
from shared.config import Config
from shared.db import Database
from shared.models import User, Wallet
from tests.api.conftest import assert_error
from tests.conftest import EMULATOR_HOST_VARIABLE, truncate_all
from tests.firebase_emulator import PROJECT_ID, AuthEmulator
from tests.live_server import start_live_server
from tests.server_env import server_env


@pytest.fixture
def emulator_app(config: Config, database: Database, auth_emulator: AuthEmulator) -> Iterator[Flask]:
    assert EMULATOR_HOST_VARIABLE not in os.environ
    application = create_app(config.replace(firebase_auth_emulator_host=auth_emulator.host, auth_dev_bypass=False))
    try:
        yield application
    finally:
        os.environ.pop(EMULATOR_HOST_VARIABLE, None)
        application.extensions["wallet_db"].dispose()
        truncate_all(database)


@pytest.fixture
def emulator_client(emulator_app: Flask) -> FlaskClient:
    return emulator_app.test_client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sign_up(emulator: AuthEmulator, email: str, password: str = "correct horse") -> dict[str, Any]:
    return emulator.call("accounts:signUp", {"email": email, "password": password, "returnSecureToken": True})


def _google_sign_in(emulator: AuthEmulator, google_sub: str, email: str) -> dict[str, Any]:
    # The emulator accepts a fake Google id_token given as JSON claims (no Google round trip).
    id_token = json.dumps({"sub": google_sub, "email": email, "email_verified": True, "name": "Test User"})
    post_body = urllib.parse.urlencode({"id_token": id_token, "providerId": "google.com"})
    return emulator.call(
        "accounts:signInWithIdp",
        {
            "postBody": post_body,
            "requestUri": "http://localhost",
            "returnIdpCredential": True,
            "returnSecureToken": True,
        },
    )


def _users(session: Session) -> list[tuple[str, str | None]]:
    return [tuple(row) for row in session.execute(sa.select(User.firebase_uid, User.email).order_by(User.email))]


def test_the_app_honours_the_configured_emulator(emulator_app: Flask, auth_emulator: AuthEmulator) -> None:
    assert os.environ[EMULATOR_HOST_VARIABLE] == auth_emulator.host


def test_email_password_sign_up_and_sign_in(
    emulator_client: FlaskClient, auth_emulator: AuthEmulator, db_session: Session
) -> None:
    signed_up = _sign_up(auth_emulator, "ada@example.com")

    deposit = emulator_client.post(
        "/deposit", json={"material": "aluminum", "units": 3}, headers=_bearer(signed_up["idToken"])
    )
    assert deposit.status_code == 201, deposit.json

    signed_in = auth_emulator.call(
        "accounts:signInWithPassword",
        {"email": "ada@example.com", "password": "correct horse", "returnSecureToken": True},
    )
    assert signed_in["localId"] == signed_up["localId"]
    wallet = emulator_client.get("/wallet", headers=_bearer(signed_in["idToken"]))
    assert (wallet.status_code, wallet.json["balance_cents"]) == (200, 30)
    assert _users(db_session) == [(signed_up["localId"], "ada@example.com")]


def test_google_sign_in(emulator_client: FlaskClient, auth_emulator: AuthEmulator, db_session: Session) -> None:
    signed_in = _google_sign_in(auth_emulator, "google-sub-1", "grace@example.com")
    assert signed_in["providerId"] == "google.com"

    response = emulator_client.get("/wallet", headers=_bearer(signed_in["idToken"]))

    assert response.status_code == 200, response.json
    # Keyed by the Firebase uid (localId), not by the Google subject or the email.
    assert _users(db_session) == [(signed_in["localId"], "grace@example.com")]


def test_email_change_is_kept_current_on_the_same_user(
    emulator_client: FlaskClient, auth_emulator: AuthEmulator, db_session: Session
) -> None:
    first = _sign_up(auth_emulator, "before@example.com")
    wallet_id = emulator_client.get("/wallet", headers=_bearer(first["idToken"])).json["id"]

    updated = auth_emulator.call(
        "accounts:update", {"idToken": first["idToken"], "email": "after@example.com", "returnSecureToken": True}
    )
    response = emulator_client.get("/wallet", headers=_bearer(updated["idToken"]))

    assert response.json["id"] == wallet_id
    assert _users(db_session) == [(first["localId"], "after@example.com")]
    assert db_session.execute(sa.select(sa.func.count()).select_from(Wallet)).scalar_one() == 1


def test_emulator_tokens_are_unsigned_and_refused_without_the_emulator(
    config: Config, database: Database, auth_emulator: AuthEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _sign_up(auth_emulator, "unsigned@example.com")["idToken"]
    header = json.loads(_b64decode(token.split(".")[0]))
    assert header["alg"] == "none"
    assert EMULATOR_HOST_VARIABLE not in os.environ
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", "http://127.0.0.1:9/unused")

    app = create_app(config.replace(auth_dev_bypass=False))
    try:
        response = app.test_client().get("/wallet", headers=_bearer(token))
    finally:
        app.extensions["wallet_db"].dispose()

    assert assert_error(response, 401, "unauthenticated") == {"reason": "invalid"}


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_emulator_tokens_over_real_http(
    database_url: str, database: Database, auth_emulator: AuthEmulator, db_session: Session
) -> None:
    env = server_env(database_url, AUTH_DEV_BYPASS="false", **{EMULATOR_HOST_VARIABLE: auth_emulator.host})
    server = start_live_server(env, workers=2)
    try:
        signed_in = _google_sign_in(auth_emulator, "google-sub-http", "http@example.com")
        ok = requests.post(
            f"{server.url}/deposit",
            json={"material": "plastic", "units": 4},
            headers=_bearer(signed_in["idToken"]),
            timeout=10,
        )
        refused = requests.get(f"{server.url}/wallet", headers={"X-Test-User-Email": "x@example.com"}, timeout=10)
    finally:
        server.stop()
        truncate_all(database)
    assert ok.status_code == 201, ok.text
    assert ok.json()["new_balance_cents"] == 20
    assert refused.status_code == 401


@pytest.fixture
def revocation_checking_client(
    config: Config, database: Database, auth_emulator: AuthEmulator
) -> Iterator[FlaskClient]:
    application = create_app(
        config.replace(
            firebase_auth_emulator_host=auth_emulator.host, auth_dev_bypass=False, firebase_check_revoked=True
        )
    )
    try:
        yield application.test_client()
    finally:
        os.environ.pop(EMULATOR_HOST_VARIABLE, None)
        application.extensions["wallet_db"].dispose()
        truncate_all(database)


def test_revocation_check_refuses_revoked_tokens_and_disabled_users(
    revocation_checking_client: FlaskClient, auth_emulator: AuthEmulator
) -> None:
    client = revocation_checking_client
    revoked = _sign_up(auth_emulator, "revoked@example.com")
    disabled = _sign_up(auth_emulator, "disabled@example.com")
    assert client.get("/wallet", headers=_bearer(revoked["idToken"])).status_code == 200

    time.sleep(1.1)  # revocation is to the second: tokens issued before it are refused
    admin = firebase_admin.get_app(_admin_app_name(auth_emulator))
    firebase_auth.revoke_refresh_tokens(revoked["localId"], app=admin)
    firebase_auth.update_user(disabled["localId"], disabled=True, app=admin)

    refused = client.get("/wallet", headers=_bearer(revoked["idToken"]))
    assert assert_error(refused, 401, "unauthenticated") == {"reason": "revoked"}
    refused = client.get("/wallet", headers=_bearer(disabled["idToken"]))
    assert assert_error(refused, 401, "unauthenticated") == {"reason": "user_disabled"}


def _admin_app_name(emulator: AuthEmulator) -> str:
    """A firebase-admin app for managing emulator users (the env variable is set by the client fixture)."""
    name = f"emulator-admin-{emulator.host}"
    if name not in firebase_admin._apps:
        firebase_admin.initialize_app(options={"projectId": PROJECT_ID}, name=name)
    return name
