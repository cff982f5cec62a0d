"""The OpenAPI document declares what the API answers: every error status in the one error shape,
bounded ids, and links between operations (apps/core/openapi.py). tests/test_api_fuzz.py holds
the live API to it; these checks read the document only, so they run in every pass in a second."""

from __future__ import annotations

import pytest

from apps.core.openapi import MAX_ID
from huntaze.api import ID_PRODUCERS, api

ERROR_REF = {"$ref": "#/components/schemas/ErrorOut"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return api.get_openapi_schema()


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_every_error_status_uses_the_one_error_shape(schema):
    assert schema["components"]["schemas"]["ErrorOut"]["required"] == ["error"]
    for method, path, operation in _operations(schema):
        for status, response in operation["responses"].items():
            # 5xx answers carry their operation's own body (503: the health report; 502: the failed generation)
            if status.startswith("4"):
                assert response["content"]["application/json"]["schema"] == ERROR_REF, (method, path, status)


def test_statuses_follow_from_each_operations_shape(schema):
    for method, path, operation in _operations(schema):
        statuses = set(operation["responses"])
        if path.endswith("/health"):
            assert not statuses & {"401", "403"}, "health needs no login"
            continue
        assert {"401", "403"} <= statuses, (method, path)
        if "{" in path:
            assert {"404", "422"} <= statuses, (method, path)
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= statuses, (method, path)


def test_conflicts_are_declared_where_a_name_or_address_can_be_taken(schema):
    paths = schema["paths"]
    assert "409" in paths["/api/v1/creators"]["post"]["responses"]
    assert "409" in paths["/api/v1/creators/{creator_id}"]["patch"]["responses"]
    assert "409" in paths["/api/v1/invitations"]["post"]["responses"]


def test_every_id_an_operation_takes_is_bounded(schema):
    for method, path, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"].endswith("_id"):
                bounds = [parameter["schema"], *parameter["schema"].get("anyOf", [])]
                assert any(b.get("minimum") == 1 and b.get("maximum") == MAX_ID for b in bounds), (
                    method,
                    path,
                    parameter["name"],
                )


def test_creating_or_listing_an_object_links_to_every_operation_taking_its_id(schema):
    paths = schema["paths"]
    links = paths["/api/v1/creators"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    assert {
        "apps_accounts_api_creator_detail",
        "apps_accounts_api_creator_update",
        "apps_studio_api_trends",  # a path parameter under another prefix
        "apps_studio_api_generation_list",  # a query parameter
        "apps_studio_api_generation_create",  # a body field
    } <= targets
    body_link = links["creator_id_to_apps_studio_api_generation_create"]
    assert body_link["requestBody"] == {"creator_id": "$response.body#/id"}
    for name, producers in ID_PRODUCERS.items():
        for producer in producers:
            response = paths["/api/v1" + producer.path][producer.method.lower()]["responses"][str(producer.status)]
            assert response.get("links"), f"{producer.method} {producer.path} links no operation taking {name}"


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_no_two_schemas_share_a_component_name(schema):
    """The document names each schema by its class name, and a second class of the same name
    silently replaces the first one's component: an answer then "violates" a schema that is not
    its own (two apps' ``PersonalizationOut`` did). Every schema class of the apps has its own name."""
    from ninja import Schema

    by_name: dict[str, list[str]] = {}
    for cls in _subclasses(Schema):
        if cls.__module__.startswith("apps."):
            by_name.setdefault(cls.__name__, []).append(f"{cls.__module__}.{cls.__qualname__}")
    shared = {name: places for name, places in by_name.items() if len(places) > 1}
    assert not shared, shared
