"""Who is calling: Firebase ID tokens verified server-side, or the development bypass header."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import firebase_admin
from firebase_admin import auth as firebase_auth
from flask import current_app, g, request
from google.auth.credentials import AnonymousCredentials

from api.errors import AuthUnavailable, Unauthenticated
from api.extensions import db_session, get_config
from api.firebase_certs import CachedCertificates
from shared import ledger
from shared.config import Config

log = logging.getLogger(__name__)

BYPASS_HEADER = "X-Test-User-Email"
EMULATOR_HOST_VARIABLE = "FIREBASE_AUTH_EMULATOR_HOST"  # the name firebase-admin reads
# Bypass users get a uid of their own namespace so they can never collide with a real Firebase uid.
BYPASS_UID_PREFIX = "dev-bypass:"
# users.firebase_uid holds 128 characters (Firebase's own uid limit); the prefixed email must fit.
MAX_UID_LENGTH = 128
MAX_BYPASS_EMAIL_LENGTH = MAX_UID_LENGTH - len(BYPASS_UID_PREFIX)
MAX_EMAIL_LENGTH = 320
# Firebase tokens are ~1 KB; anything far larger is not one and is not worth parsing.
MAX_TOKEN_LENGTH = 8192
# Google's key endpoint unreachable: a short wait, since keys come back cached for hours once fetched.
KEYS_UNAVAILABLE_RETRY_AFTER_S = 5

_app_names = itertools.count()

F = TypeVar("F", bound=Callable[..., Any])
# View attribute set by @resolves_own_account (functools.wraps carries it to every wrapper around the view).
_DEFERS_ACCOUNT = "wallet_resolves_own_account"


@dataclass(frozen=True, slots=True)
class Identity:
    uid: str
    email: str | None
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return self.claims.get("admin") is True


class _AnonymousCredential(firebase_admin.credentials.Base):
    """Verifying ID tokens needs only the project id and Google's public keys, not a service account."""

    def get_credential(self) -> AnonymousCredentials:
        return AnonymousCredentials()


class FirebaseTokenVerifier:
    """Verifies Firebase ID tokens with firebase-admin (signature, audience, issuer, expiry, revocation)."""

    def __init__(self, config: Config) -> None:
        config.check_safe_for_production()  # also here: the verifier may be built without create_app()
        _use_configured_emulator(config)
        options = {"projectId": config.firebase_project_id} if config.firebase_project_id else {}
        # Revocation checks call Firebase, which needs real credentials (GOOGLE_APPLICATION_CREDENTIALS).
        credential = None if config.firebase_check_revoked else _AnonymousCredential()
        self._app = firebase_admin.initialize_app(credential, options, name=f"wallet-api-{next(_app_names)}")
        self._check_revoked = config.firebase_check_revoked
        self.certificates = _cache_certificates(self._app)

    def verify(self, token: str) -> Identity:
        try:
            claims = firebase_auth.verify_id_token(token, app=self._app, check_revoked=self._check_revoked)
        except (ValueError, firebase_auth.InvalidIdTokenError, firebase_auth.UserDisabledError) as exc:
            raise Unauthenticated("the ID token is not valid", details={"reason": _reason(exc)}) from None
        except firebase_auth.CertificateFetchError:
            # Our dependency is down, not the caller's token: 503, so clients and load balancers retry.
            log.warning("could not fetch Firebase public keys")
            raise AuthUnavailable(
                "the ID token could not be verified right now; retry shortly",
                headers={"Retry-After": str(KEYS_UNAVAILABLE_RETRY_AFTER_S)},
            ) from None
        return Identity(uid=claims["uid"], email=claims.get("email"), claims=claims)


def _cache_certificates(app: firebase_admin.App) -> CachedCertificates | None:
    """Serve Google's public keys from memory while fresh (see :mod:`api.firebase_certs`).

    firebase-admin (pinned) has no option for this: its token verifier's transport is replaced. If an upgrade
    moves it, verification still works, only slower; tests/api/test_firebase_certs.py fails to say so.
    """
    try:
        client = firebase_auth._get_client(app)
    except ValueError:  # no project id (a development setup on the bypass header): no token can verify anyway
        return None
    verifier = getattr(client, "_token_verifier", None)
    if verifier is None or not callable(getattr(verifier, "request", None)):
        log.warning("firebase-admin's token verifier has moved: public keys are not cached in memory")
        return None
    verifier.request = CachedCertificates(verifier.request)
    return cast(CachedCertificates, verifier.request)


def _use_configured_emulator(config: Config) -> None:
    """Point firebase-admin at the emulator named in the config (never in production).

    firebase-admin reads FIREBASE_AUTH_EMULATOR_HOST from the process environment only, so a config built
    with an explicit emulator host (tests, a .env) must be copied there. Emulator ID tokens are unsigned: the
    variable makes firebase-admin skip signature checks for the whole process.
    """
    if config.firebase_auth_emulator_host and not config.is_production:
        os.environ[EMULATOR_HOST_VARIABLE] = config.firebase_auth_emulator_host


def _reason(exc: Exception) -> str:
    if isinstance(exc, firebase_auth.ExpiredIdTokenError):
        return "expired"
    if isinstance(exc, firebase_auth.RevokedIdTokenError):
        return "revoked"
    if isinstance(exc, firebase_auth.UserDisabledError):
        return "user_disabled"
    return "invalid"


def _bypass_identity(email: str) -> Identity:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or len(email) > MAX_BYPASS_EMAIL_LENGTH or any(c.isspace() for c in email):
        raise Unauthenticated(
            f"{BYPASS_HEADER} must be an email address of {MAX_BYPASS_EMAIL_LENGTH} characters at most"
        )
    return Identity(uid=BYPASS_UID_PREFIX + email, email=email)


def identify_caller() -> Identity:
    config = get_config()
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("Authorization must be 'Bearer <Firebase ID token>'")
        verifier: FirebaseTokenVerifier = current_app.extensions["wallet_token_verifier"]
        return verifier.verify(token)
    bypass_email = request.headers.get(BYPASS_HEADER)
    if bypass_email is not None and config.auth_dev_bypass:
        return _bypass_identity(bypass_email)
    raise Unauthenticated("sign in with Firebase and send 'Authorization: Bearer <ID token>'")


def resolves_own_account(view: F) -> F:
    """Mark a protected view that resolves the caller's account itself, inside its own statement.

    ``authenticate`` then only identifies the caller (no database work): POST /deposit finds the wallet by the
    Firebase uid within its one money statement instead of a SELECT of its own first. Anything in the request
    that calls :func:`current_account` before the view does (an Idempotency-Key's claim) still gets the account
    then. Place it directly under ``@blp.route``.
    """
    setattr(view, _DEFERS_ACCOUNT, True)
    return view


def authenticate() -> None:
    """before_request hook for protected blueprints: sets g.identity and g.account (the latter, with
    :func:`resolves_own_account`, only when first needed)."""
    if request.method == "OPTIONS":
        return
    identity = identify_caller()
    g.identity = identity
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if not getattr(view, _DEFERS_ACCOUNT, False):
        g.account = ledger.get_or_create_account(db_session(), identity.uid, identity.email)


def current_identity() -> Identity:
    identity: Identity = g.identity
    return identity


def current_account() -> ledger.Account:
    """The caller's account, created on their first request (looked up now if authenticate deferred it)."""
    account: ledger.Account | None = g.get("account")
    if account is None:
        identity = current_identity()
        account = g.account = ledger.get_or_create_account(db_session(), identity.uid, identity.email)
    return account
