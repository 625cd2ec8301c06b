"""hub/openapi.yaml documents exactly the routes the app serves, and is valid YAML."""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from hub.app import create_app
from hub.services.access import OPERATOR_ROLES
from hub.services.evidence import EVIDENCE_KINDS
from hub.web import PAGE_ROUTE_PREFIX
from tests.hub.conftest import Client

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def document() -> dict[str, Any]:
    text = importlib.resources.files("hub").joinpath("openapi.yaml").read_text(encoding="utf-8")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


def served_operations(app: web.Application) -> set[tuple[str, str]]:
    """The JSON routes the app serves.

    The HTML pages (``hub.web``, every route named ``page:…``) are left out: they are
    pages for people, not an API, and answer HTML; ``hub/web/pages.py`` documents them.
    """
    return {
        (route.resource.canonical, route.method)
        for route in app.router.routes()
        if route.resource is not None
        and not (route.resource.name or "").startswith(PAGE_ROUTE_PREFIX)
    }


def test_the_document_parses_as_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    assert doc["info"]["title"]
    assert doc["paths"]


def test_every_served_route_is_documented_and_every_documented_one_is_served(
    hub_home: Path,
) -> None:
    served = served_operations(create_app(hub_home, schedule=False))
    documented = documented_operations(document())
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_every_path_parameter_is_declared(hub_home: Path) -> None:
    doc = document()
    parameters = doc["components"]["parameters"]

    def names(entries: list[dict[str, Any]]) -> set[str]:
        out = set()
        for entry in entries:
            if "$ref" in entry:
                entry = parameters[entry["$ref"].rsplit("/", 1)[1]]
            if entry["in"] == "path":
                out.add(entry["name"])
        return out

    for path, item in doc["paths"].items():
        wanted = set(re.findall(r"\{(\w+)\}", path))
        for method in METHODS & set(item):
            declared = names(item.get("parameters", [])) | names(item[method].get("parameters", []))
            assert declared == wanted, (path, method)


def test_every_operation_documents_its_answers_and_refs_resolve() -> None:
    doc = document()

    def resolve(ref: str) -> object:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return node

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    for path, item in doc["paths"].items():
        for method in METHODS & set(item):
            operation = item[method]
            assert operation.get("summary"), (path, method)
            assert operation.get("responses"), (path, method)


async def test_the_app_serves_the_document_as_written(client: Client) -> None:
    response = await client.get("/openapi.yaml")
    assert response.status == 200
    assert response.content_type == "application/yaml"
    served = await response.read()
    assert served == importlib.resources.files("hub").joinpath("openapi.yaml").read_bytes()


def _enum_at(doc: dict[str, Any], *path: str) -> list[str]:
    node: Any = doc
    for key in path:
        node = node[key]
    assert isinstance(node, dict), path
    assert "enum" in node, path
    return list(node["enum"])


def test_the_status_enums_are_the_codes() -> None:
    """Every closed set the document names is the one the code checks, in its order."""
    doc = document()
    schemas = doc["components"]["schemas"]
    assert _enum_at(schemas, "Evidence", "properties", "kind") == list(EVIDENCE_KINDS)
    token = doc["paths"]["/v1/admin/tokens"]["post"]["requestBody"]["content"]
    role = token["application/json"]["schema"]["properties"]["role"]
    assert role["enum"] == list(OPERATOR_ROLES)
