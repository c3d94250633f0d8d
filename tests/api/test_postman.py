"""The Postman collection in deploy/postman is generated from /openapi.json and its requests are valid."""

from __future__ import annotations

import json
import re
from typing import Any

from flask.testing import FlaskClient

from api.postman import COLLECTION_PATH, render
from tests.factories import bypass_headers


def _requests(collection: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for folder in collection["item"] for item in folder["item"]]


def test_committed_collection_matches_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    assert COLLECTION_PATH.read_text() == render(spec), "stale: run `flask --app api postman` and commit the file"


def test_every_operation_appears_once(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m != "parameters"}
    collection = json.loads(COLLECTION_PATH.read_text())
    seen = []
    for item in _requests(collection):
        path = "/" + "/".join(re.sub(r"^:(.+)$", r"{\1}", s) for s in item["request"]["url"]["path"])
        seen.append((item["request"]["method"], path))
    assert sorted(seen) == sorted(operations)
    assert collection["info"]["schema"].endswith("/v2.1.0/collection.json")


def test_every_request_of_the_collection_is_accepted(client: FlaskClient) -> None:
    """Send each request as Postman would (bypass header on) and expect no 400 and no 5xx."""
    headers = bypass_headers("postman@example.com")
    client.post("/deposit", json={"material": "aluminum", "units": 500}, headers=headers)  # funds the withdrawal
    collection = json.loads(COLLECTION_PATH.read_text())
    withdrawal_id = None
    # Requests with a path variable last: by then POST /withdraw has made a withdrawal to look at.
    has_variable = lambda item: any(part.startswith(":") for part in item["request"]["url"]["path"])  # noqa: E731
    for item in sorted(_requests(collection), key=has_variable):
        request = item["request"]
        path = "/" + "/".join(request["url"]["path"])
        if ":withdrawal_id" in path:
            assert withdrawal_id is not None
            path = path.replace(":withdrawal_id", withdrawal_id)
        sent = {h["key"]: h["value"].replace("{{testUserEmail}}", "postman@example.com") for h in request["header"]}
        response = client.open(path, method=request["method"], headers=sent, data=request.get("body", {}).get("raw"))
        assert response.status_code < 500 and response.status_code != 400, (item["name"], response.json)
        if request["method"] == "POST" and path == "/withdraw":
            assert response.status_code == 202
            withdrawal_id = response.json["withdrawal"]["id"]
