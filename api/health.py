"""GET /health: a cheap liveness check (no database, no auth). GET /health/ready: can this pod serve?"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from api.blueprint import Blueprint
from api.dependencies import Dependencies
from api.errors import error_response
from api.schemas import HealthSchema, ReadinessErrorSchema, ReadinessSchema

blp = Blueprint("health", __name__, description="Liveness and readiness")


@blp.route("/health")
@blp.doc(security=[])  # no auth: load balancers and kubelets call it
@blp.response(200, HealthSchema)
def health() -> dict[str, Any]:
    return {"status": "ok"}


@blp.route("/health/ready")
@blp.doc(security=[])
@blp.response(200, ReadinessSchema)
@blp.alt_response(
    503, schema=ReadinessErrorSchema, description="A required dependency failed; `details.failing` names it"
)
def ready() -> Any:
    """PostgreSQL (and the replica), Redis and the broker, each within HEALTH_CHECK_TIMEOUT_SECONDS."""
    dependencies: Dependencies = current_app.extensions["wallet_dependencies"]
    results = dependencies.check_all()
    checks = {r.name: {"status": r.detail, "latency_ms": r.latency_ms} for r in results}
    failing = [r.name for r in results if not r.ok and r.name not in dependencies.optional]
    if failing:
        response: Response = error_response(
            503, "not_ready", f"not ready: {', '.join(failing)}", {"failing": failing, "checks": checks}
        )
        response.headers["Cache-Control"] = "no-store"
        return response
    degraded = [r.name for r in results if not r.ok]
    return {"status": "degraded" if degraded else "ready", "checks": checks}, 200, {"Cache-Control": "no-store"}
