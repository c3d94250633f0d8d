"""A Postman collection (v2.1) generated from the OpenAPI document: ``flask --app api postman``.

Requests are grouped by tag; the collection authenticates with ``Bearer {{idToken}}``, and every protected
request carries a disabled ``X-Test-User-Email: {{testUserEmail}}`` header to switch on for the development
bypass. Bodies are the specification's own examples where it has them, else built from the schemas.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

COLLECTION_PATH = (
    Path(__file__).resolve().parent.parent / "deploy" / "postman" / "recycling-wallet.postman_collection.json"
)
SCHEMA_URL = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
# A fixed namespace makes the ids, and so the file, the same on every run: a drift test compares them.
_ID_NAMESPACE = uuid.UUID("5d2f8a36-7a51-4c1e-9c3a-3c6e2f1d9b10")
# The seed README's Postman examples.
EXAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/deposit"): {"material": "plastic", "units": 10},
    ("POST", "/withdraw"): {"amount_cents": 1000, "bank_token": "tok_test_bank_account"},
}
_TYPE_EXAMPLES = {"integer": 1, "number": 1.0, "boolean": True, "string": "string"}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = spec["components"]["schemas"][name]
    return schema


def _example(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    schema = _resolve(spec, schema)
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("type") == "object" or "properties" in schema:
        return {name: _example(spec, prop) for name, prop in schema.get("properties", {}).items()}
    if schema.get("type") == "array":
        return [_example(spec, schema.get("items", {}))]
    if "minimum" in schema and schema.get("type") in {"integer", "number"}:
        return schema["minimum"]
    return _TYPE_EXAMPLES.get(schema.get("type", "string"), "string")


def _is_public(spec: dict[str, Any], operation: dict[str, Any]) -> bool:
    return operation.get("security", spec.get("security", [])) == []


def _request(spec: dict[str, Any], path: str, method: str, operation: dict[str, Any]) -> dict[str, Any]:
    segments = [re.sub(r"^\{(.+)\}$", r":\1", part) for part in path.strip("/").split("/")]
    url: dict[str, Any] = {
        "raw": "{{baseUrl}}/" + "/".join(segments),
        "host": ["{{baseUrl}}"],
        "path": segments,
    }
    path_params = re.findall(r"\{(.+?)\}", path)
    if path_params:
        url["variable"] = [{"key": name, "value": ""} for name in path_params]
    query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
    if query:
        url["query"] = [
            {
                "key": p["name"],
                "value": str(p.get("schema", {}).get("default", "")),
                "disabled": "default" not in p.get("schema", {}),
            }
            for p in query
        ]
    headers: list[dict[str, Any]] = []
    request: dict[str, Any] = {"method": method.upper(), "header": headers, "url": url}
    if _is_public(spec, operation):
        request["auth"] = {"type": "noauth"}
    else:
        headers.append({"key": "X-Test-User-Email", "value": "{{testUserEmail}}", "disabled": True})
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body_schema is not None:
        headers.insert(0, {"key": "Content-Type", "value": "application/json"})
        body = EXAMPLE_BODIES.get((method.upper(), path)) or _example(spec, body_schema)
        request["body"] = {"mode": "raw", "raw": json.dumps(body, indent=2), "options": {"raw": {"language": "json"}}}
    return {
        "name": operation.get("summary") or f"{method.upper()} {path}",
        "request": request,
        "_postman_id": str(uuid.uuid5(_ID_NAMESPACE, f"{method.upper()} {path}")),
    }


def build_collection(spec: dict[str, Any]) -> dict[str, Any]:
    folders: dict[str, list[dict[str, Any]]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            tag = (operation.get("tags") or ["other"])[0]
            folders.setdefault(tag, []).append(_request(spec, path, method, operation))
    return {
        "info": {
            "_postman_id": str(uuid.uuid5(_ID_NAMESPACE, spec["info"]["title"])),
            "name": spec["info"]["title"],
            "description": "Generated from /openapi.json by `flask --app api postman`. Set `idToken` to a Firebase "
            "ID token, or enable the X-Test-User-Email header when the server runs with AUTH_DEV_BYPASS=true.",
            "schema": SCHEMA_URL,
        },
        "auth": {"type": "bearer", "bearer": [{"key": "token", "value": "{{idToken}}", "type": "string"}]},
        "variable": [
            {"key": "baseUrl", "value": "http://localhost:8000"},
            {"key": "idToken", "value": ""},
            {"key": "testUserEmail", "value": "test@example.com"},
        ],
        "item": [{"name": tag, "item": items} for tag, items in folders.items()],
    }


def render(spec: dict[str, Any]) -> str:
    return json.dumps(build_collection(spec), indent=2, sort_keys=False) + "\n"


@click.command("postman")
@click.option("--output", type=click.Path(path_type=Path), default=COLLECTION_PATH, show_default=True)
@with_appcontext
def postman_command(output: Path) -> None:
    """Write the Postman collection generated from the OpenAPI document."""
    spec = current_app.test_client().get("/openapi.json").get_json()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(spec))
    click.echo(f"wrote {output}")
