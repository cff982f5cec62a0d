"""Malformed API input answers 4xx in the one error shape, for every endpoint at once.

Regressions from a schemathesis run against /api/v1/openapi.json: a page number beyond the
database's integer range and a multipart body without a boundary each answered 500. The causes
are fixed where they live (the one pagination class, the API's exception handlers), and the schema
test below holds every paginated list, present and future, to the same bounds.
"""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts import services
from apps.core.pagination import MAX_PAGE, MAX_PAGE_SIZE
from apps.studio.models import Post

HUGE_PAGE = 698323643016116864


def token_client(membership) -> Client:
    _, secret = services.api_token_create(membership=membership, name="input test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _paginated_operations(schema: dict) -> list[tuple[str, dict]]:
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            if method == "get" and "page" in names:
                found.append((path, operation))
    return found


def test_every_paginated_list_declares_bounded_page_and_page_size(world):
    schema = token_client(world.owner).get("/api/v1/openapi.json").json()
    operations = _paginated_operations(schema)
    assert len(operations) >= 6, "the API's lists (creators, members, invitations, tokens, studio …) are paginated"
    for path, operation in operations:
        parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
        assert parameters["page"].get("maximum") == MAX_PAGE, path
        page_size = parameters["page_size"]
        bounds = [page_size, *page_size.get("anyOf", [])]
        assert any(b.get("maximum") == MAX_PAGE_SIZE for b in bounds), path


@pytest.mark.parametrize(
    "url",
    [
        f"/api/v1/creators?archived=true&page={HUGE_PAGE}",
        f"/api/v1/invitations?page={HUGE_PAGE}",
        f"/api/v1/studio/generations?page={HUGE_PAGE}&page_size=271",
    ],
)
def test_a_page_number_beyond_the_database_range_is_a_422_naming_the_field(world, url):
    response = token_client(world.owner).get(url)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "page" in error["fields"]


def test_a_page_past_the_last_is_empty_not_an_error(world):
    response = token_client(world.owner).get(f"/api/v1/creators?page={MAX_PAGE}")
    assert response.status_code == 200
    assert response.json()["items"] == [] and response.json()["count"] == 2


def test_a_page_size_above_the_limit_is_refused_and_a_valid_one_is_honoured(world):
    client = token_client(world.owner)
    assert client.get(f"/api/v1/creators?page_size={MAX_PAGE_SIZE + 1}").status_code == 422
    assert len(client.get("/api/v1/creators?page_size=1").json()["items"]) == 1


def test_multipart_upload_without_a_boundary_is_a_400_and_imports_nothing(world):
    client = token_client(world.owner)
    response = client.generic(
        "POST",
        f"/api/v1/studio/creators/{world.creator.pk}/posts/import",
        data=b'--x\r\nContent-Disposition: form-data; name="file"\r\n\r\nposted_at,caption\r\n--x--\r\n',
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request" and "boundary" in error["message"]
    assert not Post.objects.filter(creator=world.creator).exists()


def test_under_daphne_a_multipart_body_without_parts_reaches_django_and_answers_json(transactional_db):
    """Twisted used to parse multipart bodies itself and answer an unparsable one with an empty
    400 before Django saw it (found by schemathesis; fixed in huntaze/asgi.py)."""
    import json
    import urllib.error
    import urllib.request

    from tests.accounts.factories import MembershipFactory
    from tests.processes import daphne_args, free_port, running, wait_for_http

    owner = MembershipFactory(role="owner")
    _, secret = services.api_token_create(membership=owner, name="daphne")
    port = free_port()
    with running(daphne_args(port)):
        base = f"http://127.0.0.1:{port}"
        wait_for_http(base + "/api/v1/health")
        request = urllib.request.Request(
            f"{base}/api/v1/studio/creators/1/posts/import",
            data=b"--x--\r\n",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "multipart/form-data; boundary=x"},
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 404  # the creator is not the caller's: Django answered, in the error shape
    assert json.loads(answer.value.read())["error"]["code"] == "not_found"


def test_a_write_with_a_revoked_unknown_or_no_token_is_a_401_not_a_csrf_failure(world):
    """ninja's session auth answered such writes 403 "CSRF check Failed" (found by the fuzz gate
    once a run had revoked its own token); a logged-in browser session still needs its CSRF token."""
    token, secret = services.api_token_create(membership=world.owner, name="soon revoked")
    services.api_token_revoke(membership=world.owner, token=token)
    for header in ({"HTTP_AUTHORIZATION": f"Bearer {secret}"}, {"HTTP_AUTHORIZATION": "Bearer hz_unknown"}, {}):
        client = Client(enforce_csrf_checks=True, **header)
        response = client.post("/api/v1/creators", {"display_name": "X"}, content_type="application/json")
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "not_authenticated"


def _creator_filtered_lists(schema: dict) -> list[str]:
    """Every list that takes a ``creator_id`` filter and nothing else by path."""
    found = []
    for path, operations in schema["paths"].items():
        operation = operations.get("get")
        if operation is None or "{" in path:
            continue
        names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        if "creator_id" in names:
            found.append(path)
    return found


def test_every_list_filtered_by_another_agencys_creator_answers_404_as_fans_does(world, other_world):
    """A filter naming a creator the caller cannot see is "No such creator.", not an empty page:
    an empty page reads as "this creator has nothing", and differs from a missing id."""
    client = token_client(world.owner)
    paths = _creator_filtered_lists(client.get("/api/v1/openapi.json").json())
    studio = {"/api/v1/studio/generations", "/api/v1/studio/ideas", "/api/v1/studio/posts"}
    assert studio | {"/api/v1/integrations/posts", "/api/v1/fans"} <= set(paths)
    answers = {path: client.get(f"{path}?creator_id={other_world.creator.pk}") for path in paths}
    wrong = {path: answer.status_code for path, answer in answers.items() if answer.status_code != 404}
    assert not wrong, "these lists answer another agency's creator_id without a 404"
    for path, answer in answers.items():
        error = answer.json()["error"]
        assert (error["code"], error["message"]) == ("not_found", "No such creator."), path
    own = client.get(f"/api/v1/studio/ideas?creator_id={world.creator.pk}")
    assert own.status_code == 200
    chatter = token_client(world.chatter).get(f"/api/v1/studio/generations?creator_id={world.other_creator.pk}")
    assert chatter.status_code == 404  # a chatter sees only their assigned creators


def test_a_body_above_the_upload_limit_is_the_apis_declared_json_413(world, client_for):
    """The NUL check reads the body before django-ninja does, and Django's refusal of a body above
    DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) became the HTML 400 page, not the 413 the schema declares."""
    client = token_client(world.owner)
    body = b'{"name": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = client.generic("PUT", "/api/v1/agency", body, content_type="application/json")
    assert response.status_code == 413 and response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "too_large" and error["request_id"] == response["X-Request-ID"]
    world.agency.refresh_from_db()
    assert world.agency.name == "Velvet"
    schema = client.get("/api/v1/openapi.json").json()
    assert "413" in schema["paths"]["/api/v1/agency"]["put"]["responses"]
    page = client_for(world.owner).post("/settings/agency/", body, content_type="application/x-www-form-urlencoded")
    assert page.status_code == 400  # pages keep Django's own answer
