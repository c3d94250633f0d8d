"""GET /health: a cheap liveness check (no database, no auth)."""

from __future__ import annotations

from typing import Any

from api.blueprint import Blueprint
from api.schemas import HealthSchema

blp = Blueprint("health", __name__, description="Liveness")


@blp.route("/health")
@blp.response(200, HealthSchema)
def health() -> dict[str, Any]:
    return {"status": "ok"}
