"""The Flask application factory."""

from __future__ import annotations

from flask import Flask, request
from flask_smorest import Api

from api import admin, cli, deposits, health, payouts_cli, wallet, webhooks, withdrawals
from api.auth import FirebaseTokenVerifier
from api.errors import UnsupportedMediaType, register_error_handlers
from api.extensions import init_database
from api.observability import init_dependencies, init_observability
from api.payouts import init_payout_queue
from api.ratelimit import init_rate_limiter
from api.schemas import ErrorSchema
from api.security import init_security
from shared.config import Config

OPENAPI_SETTINGS = {
    "API_TITLE": "Recycling Wallet API",
    "API_VERSION": "1.0.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "/docs",
    "OPENAPI_SWAGGER_UI_URL": "https://cdn.jsdelivr.net/npm/swagger-ui-dist/",
}


class _Api(Api):
    # Document our one error shape, not flask-smorest's default {code, status, message, errors}.
    ERROR_SCHEMA = ErrorSchema


def create_app(config: Config | None = None) -> Flask:
    """Build the API. ``config`` defaults to :meth:`Config.from_env`."""
    config = config or Config.from_env()
    config.check_safe_for_production()

    app = Flask(__name__)
    init_observability(app, config)  # first: its hooks time and log everything that follows
    app.config.update(
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=config.max_content_length,
        TESTING=config.app_env == "test",
        **OPENAPI_SETTINGS,
    )
    app.extensions["wallet_config"] = config
    app.extensions["wallet_token_verifier"] = FirebaseTokenVerifier(config)
    database = init_database(app, config)
    init_dependencies(app, config, database)
    init_payout_queue(app, config)

    api = _Api(app, spec_kwargs={"components": {"securitySchemes": _SECURITY_SCHEMES}, "security": [{"firebase": []}]})
    for module in (health, wallet, deposits, withdrawals, webhooks, admin):
        api.register_blueprint(module.blp)
    register_error_handlers(app)  # after Api(), whose own HTTPException handler this replaces
    init_rate_limiter(app, config)
    init_security(app, config)
    app.before_request(_require_json_body)
    cli.register(app)
    payouts_cli.register(app)
    if config.bench_floor:  # benchmark-only endpoint; refused in production by check_safe_for_production
        from api import bench_floor

        bench_floor.register(app)
    return app


_SECURITY_SCHEMES = {
    "firebase": {"type": "http", "scheme": "bearer", "bearerFormat": "Firebase ID token"},
}


def _require_json_body() -> None:
    if request.routing_exception is not None:
        return  # 404/405 say more than 415 would
    if request.method in {"POST", "PUT", "PATCH"} and request.mimetype != "application/json":
        raise UnsupportedMediaType(
            "send the request body as JSON with 'Content-Type: application/json'",
            details={"content_type": request.mimetype or None},
        )
