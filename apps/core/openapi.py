"""What the API's OpenAPI document says beyond what each operation declares: its error answers
and the links between operations.

Every error leaves through one exception handler as ``{"error": {"code", "message", "fields"?,
"request_id"}}`` (``ErrorOut``), so the statuses an operation can answer follow from its shape
rather than being copied onto each one (``declare_errors``):

- 401 and 403 when it needs authentication (a missing or bad token, a role or token scope that
  does not allow it, a missing CSRF token on a session write);
- 400 and 422 when it takes any input (an ``ApplicationError`` from a service, an unreadable
  body; a value outside its declared type or bounds);
- 413 when it takes a body;
- 404 when it names an object by id (a path parameter, or a ``…_id`` query parameter or body field):
  a missing id and another agency's id answer alike.

Statuses only some operations have (409 for a name or address already taken, 502 for a provider
failure) are declared in that operation's ``response={…}`` with ``ErrorOut``.

``declare_links`` adds OpenAPI links (``links`` on a 2xx response) from the operations that create
or list an object to every operation taking that object's id, so clients, and schemathesis's
stateful phase, can follow them. ninja emits neither.

``Id`` is the type of every id an operation takes: bounded to the database's 64-bit range, so a
number beyond it is a 422 naming the field rather than an overflow in the database driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from ninja import Field, Schema

MAX_ID = 2**63 - 1

Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class ErrorBody(Schema):
    code: str = Field(description="Machine-readable: not_authenticated, permission_denied, not_found, invalid, …")
    message: str
    fields: dict[str, list[str]] | None = Field(None, description="Messages per input field, when there are any.")
    upgrade_url: str | None = Field(
        None, description="Where to upgrade the plan, on plan_limit and plan_feature errors (docs/billing.md)."
    )
    request_id: str


class ErrorOut(Schema):
    error: ErrorBody


ERROR_DESCRIPTIONS = {
    400: "The request was refused or could not be read",
    401: "No valid API token or session",
    403: "The role, the token's scope or the agency's plan does not allow this",
    404: "No such object in your agency",
    413: "The request body is too large",
    422: "A parameter or body field is not valid",
}

_METHODS = ("get", "put", "post", "patch", "delete")


def _operations(schema: Mapping[str, Any]) -> Iterable[tuple[str, str, dict]]:
    for path, item in schema.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _json_body_schema(schema: Mapping[str, Any], operation: Mapping[str, Any]) -> dict:
    content = operation.get("requestBody", {}).get("content", {})
    body = content.get("application/json", {}).get("schema", {})
    ref = body.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        body = schema.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
    return body


def _input_names(schema: Mapping[str, Any], operation: Mapping[str, Any]) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {"path": set(), "query": set(), "body": set()}
    for parameter in operation.get("parameters", []):
        names.setdefault(parameter["in"], set()).add(parameter["name"])
    names["body"] = set(_json_body_schema(schema, operation).get("properties", {}))
    return names


def declare_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add ``ErrorOut`` and the error statuses every operation can answer (see the module doc)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, ErrorOut):
        json_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        json_schema.pop("$defs", None)
        components[model.__name__] = json_schema
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for _path, _method, operation in _operations(schema):
        names = _input_names(schema, operation)
        has_input = bool(names["path"] or names["query"] or operation.get("requestBody"))
        statuses: set[int] = set()
        if operation.get("security"):
            statuses |= {401, 403}
        if has_input:
            statuses |= {400, 422}
        if operation.get("requestBody"):
            statuses.add(413)
        if names["path"] or any(name.endswith("_id") for name in names["query"] | names["body"]):
            statuses.add(404)
        # ninja keys responses by int; JSON has string keys, and links look them up as strings.
        responses = operation["responses"] = {str(key): value for key, value in operation.get("responses", {}).items()}
        for status in sorted(statuses):
            responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status], "content": error_content})
    return schema


@dataclass(frozen=True)
class Producer:
    """An operation whose answer carries ids of one kind: ``pointer`` is a JSON pointer into the
    body of its ``status`` answer (``/id`` for the created object, ``/items/0/id`` for a list)."""

    method: str
    path: str
    status: int
    pointer: str


def declare_links(
    schema: dict[str, Any], producers: Mapping[str, Iterable[Producer]], *, prefix: str = ""
) -> dict[str, Any]:
    """Link each producer of an id (keyed by the parameter name that takes it, e.g. ``creator_id``)
    to every operation taking that id as a path or query parameter or a body field. Producer paths
    are relative to the API root, ``prefix``."""
    operations = {(method, path): operation for path, method, operation in _operations(schema)}
    for name, sources in producers.items():
        for source in sources:
            producer = operations.get((source.method.lower(), prefix + source.path))
            if producer is None:
                raise LookupError(f"No operation {source.method} {source.path} in the schema (links for {name}).")
            response = producer["responses"][str(source.status)]
            expression = f"$response.body#{source.pointer}"
            for operation in operations.values():
                if operation is producer:
                    continue
                names = _input_names(schema, operation)
                link: dict[str, Any] = {"operationId": operation["operationId"]}
                if name in names["path"]:
                    link["parameters"] = {f"path.{name}": expression}
                elif name in names["query"]:
                    link["parameters"] = {f"query.{name}": expression}
                elif name in names["body"]:
                    link["requestBody"] = {name: expression}
                else:
                    continue
                links = response.setdefault("links", {})
                link_name = f"{name}_to_{operation['operationId']}"
                if link_name in links:  # a second pointer into the same answer (another list item)
                    link_name += "_from_" + source.pointer.strip("/").replace("/", "_")
                links[link_name] = link
    return schema
