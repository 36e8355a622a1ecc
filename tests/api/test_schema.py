"""The OpenAPI 3 schema (valid, behind authentication) and the docs page (no CDN)."""

from __future__ import annotations

import re

import yaml
from django.test import Client
from drf_spectacular.validation import validate_schema

from tests.api.conftest import KeyClient
from tests.conftest import Tenancy


def test_schema_is_valid_openapi_3_and_lists_the_api(api_a: KeyClient) -> None:
    response = api_a.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)  # raises on an invalid document
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/projects/", "/api/v1/projects/{project_id}/"} <= set(schema["paths"])
    json_response = api_a.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert json_response.status_code == 200 and json_response.json()["info"]["title"] == "Concord API"


def test_every_operation_documents_the_errors_it_can_answer(api_a: KeyClient) -> None:
    """Outage (503), throttle (429) and credentials (401/403) everywhere; a too-large body (413) where one is sent;
    404 where the path names an object."""
    schema = yaml.safe_load(api_a.get("/api/schema/").content)
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in methods.items()
        if method != "parameters"
    ]
    assert len(operations) >= 15
    for path, method, operation in operations:
        codes = set(operation["responses"])
        assert {"400", "401", "403", "429", "503"} <= codes, (method, path)
        assert ("413" in codes) == (method in ("post", "put", "patch")), (method, path)
        assert ("404" in codes) == ("{" in path), (method, path)


def test_schema_and_docs_need_a_credential(tenancy: Tenancy) -> None:
    assert Client().get("/api/schema/").status_code == 401
    assert Client().get("/api/docs/").status_code == 401


def test_docs_page_loads_its_assets_from_this_server(client: Client, tenancy: Tenancy) -> None:
    client.force_login(tenancy.admin_a)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(source.startswith("/") for source in sources), sources
    assert "cdn" not in page.text.lower()
