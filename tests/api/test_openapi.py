"""/openapi.json is a valid OpenAPI 3 document listing every endpoint, and real responses match it; /docs is HTML."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from tests.api.conftest import Seeded
from tests.factories import bypass_headers

# The wallet API of issue 2: (path, method) -> (success status, request schema or None, response schema)
ENDPOINTS = {
    ("/health", "get"): ("200", None, "Health"),
    ("/wallet", "get"): ("200", None, "Wallet"),
    ("/deposit", "post"): ("201", "DepositRequest", "DepositResponse"),
    ("/transactions", "get"): ("200", None, "TransactionPage"),
    ("/withdraw", "post"): ("202", "WithdrawRequest", "WithdrawResponse"),
    ("/withdrawals", "get"): ("200", None, "WithdrawalPage"),
    ("/withdrawals/{withdrawal_id}", "get"): ("200", None, "Withdrawal"),
}


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json
    return document


def _ref(schema_name: str) -> str:
    return f"#/components/schemas/{schema_name}"


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate(spec)
    assert spec["openapi"].startswith("3.")


def test_every_endpoint_is_listed_with_its_schemas(spec: dict[str, Any]) -> None:
    listed = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert set(ENDPOINTS) <= listed  # plus the operators' /admin and Stripe's /webhooks endpoints
    for (path, method), (status, request_schema, response_schema) in ENDPOINTS.items():
        operation = spec["paths"][path][method]
        content = operation["responses"][status]["content"]["application/json"]
        assert content["schema"] == {"$ref": _ref(response_schema)}, (path, method)
        if request_schema:
            body = operation["requestBody"]
            assert body["required"] is True
            assert body["content"]["application/json"]["schema"] == {"$ref": _ref(request_schema)}
        # Every error, documented or not, has the one error shape.
        default = operation["responses"]["default"]["$ref"].rsplit("/", 1)[-1]
        assert spec["components"]["responses"][default]["content"]["application/json"]["schema"] == {
            "$ref": _ref("Error")
        }


def test_security_is_documented(spec: dict[str, Any]) -> None:
    assert spec["components"]["securitySchemes"]["firebase"]["scheme"] == "bearer"
    assert spec["paths"]["/health"]["get"]["security"] == []
    for path, method in ENDPOINTS:
        if path != "/health":
            assert "401" in spec["paths"][path][method]["responses"], path
    assert "422" in spec["paths"]["/withdraw"]["post"]["responses"]
    assert "Location" in spec["paths"]["/withdraw"]["post"]["responses"]["202"]["headers"]
    assert "404" in spec["paths"]["/withdrawals/{withdrawal_id}"]["get"]["responses"]


def test_request_schemas_carry_the_rules(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    deposit = schemas["DepositRequest"]
    assert deposit["required"] == ["material", "units"]
    assert deposit["additionalProperties"] is False
    assert deposit["properties"]["material"]["enum"] == ["plastic", "aluminum"]
    assert (deposit["properties"]["units"]["minimum"], deposit["properties"]["units"]["maximum"]) == (1, 10_000)
    assert schemas["WithdrawRequest"]["properties"]["bank_token"]["maxLength"] == 255
    limits = {p["name"]: p for p in spec["paths"]["/transactions"]["get"]["parameters"]}
    assert limits["limit"]["schema"] == {"type": "integer", "default": 50, "minimum": 1, "maximum": 200}
    limits = {p["name"]: p for p in spec["paths"]["/withdrawals"]["get"]["parameters"]}
    assert limits["limit"]["schema"]["default"] == 20
    assert schemas["Wallet"]["properties"]["updated_at"] == {"type": "string", "format": "date-time"}


def _check(spec: dict[str, Any], schema_name: str, body: Any) -> None:
    """Validate ``body`` against a component schema; documented properties must all be present."""
    OAS30Validator({"$ref": _ref(schema_name), "components": spec["components"]}).validate(body)
    assert set(body) == set(spec["components"]["schemas"][schema_name]["properties"]), schema_name


def test_real_responses_match_the_document(client: FlaskClient, spec: dict[str, Any], seeded: Seeded) -> None:
    h = bypass_headers()
    _check(spec, "Health", client.get("/health").json)
    _check(spec, "Wallet", client.get("/wallet", headers=h).json)
    _check(spec, "DepositResponse", client.post("/deposit", json={"material": "plastic", "units": 1}, headers=h).json)
    _check(spec, "TransactionPage", client.get("/transactions?limit=1", headers=h).json)
    withdrawn = client.post("/withdraw", json={"amount_cents": 100, "bank_token": "tok"}, headers=h).json
    _check(spec, "WithdrawResponse", withdrawn)
    _check(spec, "WithdrawalPage", client.get("/withdrawals", headers=h).json)
    _check(spec, "Withdrawal", client.get(f"/withdrawals/{seeded.own_withdrawal_id}", headers=h).json)
    for response in (
        client.get("/wallet"),
        client.post("/deposit", json={}, headers=h),
        client.post("/withdraw", json={"amount_cents": 10**6, "bank_token": "t"}, headers=h),
        client.get("/nowhere"),
    ):
        _check(spec, "Error", response.json)


def test_docs_serve_swagger_ui(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page and "/openapi.json" in page
