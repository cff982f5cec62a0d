"""The REST API: authentication, the one error shape, roles, creators, members, invitations."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.accounts import services
from apps.accounts.models import Creator, Invitation, Membership
from tests.accounts.factories import CreatorFactory, MembershipFactory


def token_client(membership) -> Client:
    _, secret = services.api_token_create(membership=membership, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_unauthenticated_requests_get_401_in_the_error_shape(db):
    response = Client().get("/api/v1/creators")
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "not_authenticated" and error["message"] and error["request_id"]
    assert Client(HTTP_AUTHORIZATION="Bearer hz_nope").get("/api/v1/me").status_code == 401


def test_session_auth_requires_csrf_on_writes(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner.user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/api/v1/me").status_code == 200
    response = client.post("/api/v1/creators", {"display_name": "Sneaky"}, content_type="application/json")
    assert response.status_code in (401, 403)
    assert not Creator.objects.filter(display_name="Sneaky").exists()
    client.get("/")  # any page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/v1/creators", {"display_name": "Legit"}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 201


def test_token_auth_needs_no_csrf_and_reports_identity(world):
    client = token_client(world.manager)
    me = client.get("/api/v1/me").json()
    assert me["role"] == "manager" and me["via_token"] is True and "manage_billing" not in me["permissions"]
    response = client.post("/api/v1/creators", {"display_name": "Via Token"}, content_type="application/json")
    assert response.status_code == 201


def test_creator_crud_and_pagination(world):
    CreatorFactory.create_batch(30, agency=world.agency)
    client = token_client(world.owner)
    page = client.get("/api/v1/creators?page=2&page_size=25").json()
    assert page["count"] == 32 and len(page["items"]) == 7
    created = client.post(
        "/api/v1/creators",
        {
            "display_name": "Rae",
            "handles": {"onlyfans": "@rae"},
            "language": "fr",
            "timezone": "Europe/Paris",
            "ppv_price_min": "9.50",
            "ppv_price_max": "30",
        },
        content_type="application/json",
    ).json()
    assert created["handles"] == {"onlyfans": "rae"} and created["ppv_price_min"] == "9.50"
    patched = client.patch(
        f"/api/v1/creators/{created['id']}", {"niche": "art"}, content_type="application/json"
    ).json()
    assert patched["niche"] == "art" and patched["display_name"] == "Rae"
    archived = client.post(
        f"/api/v1/creators/{created['id']}/archive", {"archived": True}, content_type="application/json"
    )
    assert archived.json()["is_archived"] is True
    assert created["id"] not in [c["id"] for c in client.get("/api/v1/creators?page_size=100").json()["items"]]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"display_name": ""}, "display_name"),
        ({"display_name": "A", "timezone": "Mars/Base"}, "timezone"),
        ({"display_name": "A", "language": "xx"}, "language"),
        ({"display_name": "A", "ppv_price_min": "-1"}, "ppv_price_min"),
        ({"display_name": "A", "handles": {"myspace": "tom"}}, "handles"),
        ({"display_name": "A", "ppv_price_min": "20", "ppv_price_max": "10"}, "ppv_price_max"),
    ],
)
def test_invalid_creator_input_gets_field_errors(world, body, field):
    response = token_client(world.owner).post("/api/v1/creators", body, content_type="application/json")
    assert response.status_code in (400, 422)
    error = response.json()["error"]
    assert field in error["fields"], error
    assert not Creator.objects.filter(display_name="A").exists()


def test_a_null_display_name_is_refused_with_its_reason_not_as_a_duplicate(world):
    response = token_client(world.owner).patch(
        f"/api/v1/creators/{world.creator.pk}", {"display_name": None}, content_type="application/json"
    )
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["message"] == "A creator needs a display name." and "display_name" in error["fields"]
    world.creator.refresh_from_db()
    assert world.creator.display_name == "Velvet Star"


def test_malformed_json_is_a_4xx(world):
    response = token_client(world.owner).post("/api/v1/creators", "{not json", content_type="application/json")
    assert 400 <= response.status_code < 500
    assert "error" in response.json()


def test_duplicate_name_is_409(world):
    response = token_client(world.owner).post(
        "/api/v1/creators", {"display_name": world.creator.display_name}, content_type="application/json"
    )
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_read_only_roles_cannot_write(world, role):
    client = token_client(world.member(role))
    assert client.get("/api/v1/creators").status_code == 200
    response = client.post("/api/v1/creators", {"display_name": "Nope"}, content_type="application/json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert client.post("/api/v1/invitations", {"email": "a@b.co"}, content_type="application/json").status_code == 403


def test_members_and_invitations(world, django_capture_on_commit_callbacks):
    client = token_client(world.owner)
    members = client.get("/api/v1/members").json()["items"]
    assert {m["role"] for m in members} == {"owner", "manager", "chatter", "viewer"}
    chatter = next(m for m in members if m["role"] == "chatter")
    assert chatter["creator_ids"] == [world.creator.pk]
    response = client.put(
        f"/api/v1/members/{world.chatter.pk}/assignments",
        {"creator_ids": [world.other_creator.pk]},
        content_type="application/json",
    )
    assert response.json()["creator_ids"] == [world.other_creator.pk]
    assert (
        client.patch(f"/api/v1/members/{world.viewer.pk}", {"role": "manager"}, content_type="application/json").json()[
            "role"
        ]
        == "manager"
    )
    assert (
        client.patch(f"/api/v1/members/{world.viewer.pk}", {"role": "god"}, content_type="application/json").status_code
        == 422
    )
    with django_capture_on_commit_callbacks():
        created = client.post(
            "/api/v1/invitations", {"email": "pal@example.com", "role": "viewer"}, content_type="application/json"
        )
    assert created.status_code == 201
    assert (
        client.post("/api/v1/invitations", {"email": "pal@example.com"}, content_type="application/json").status_code
        == 409
    )
    assert client.post("/api/v1/invitations", {"email": "nope"}, content_type="application/json").status_code == 422
    assert client.delete(f"/api/v1/invitations/{created.json()['id']}").status_code == 204
    assert Invitation.objects.get(pk=created.json()["id"]).revoked_at is not None
    assert client.delete(f"/api/v1/members/{world.chatter.pk}").status_code == 204
    assert not Membership.objects.filter(pk=world.chatter.pk).exists()


def test_a_chatter_sees_only_their_own_creators_in_members_assignments(world):
    other_chatter = MembershipFactory(agency=world.agency, role="chatter")
    other_chatter.assignments.create(agency=world.agency, creator=world.other_creator)
    other_chatter.assignments.create(agency=world.agency, creator=world.creator)
    members = {m["id"]: m for m in token_client(world.chatter).get("/api/v1/members").json()["items"]}
    assert members[other_chatter.pk]["creator_ids"] == [world.creator.pk]
    assert members[world.chatter.pk]["creator_ids"] == [world.creator.pk]
    members = {m["id"]: m for m in token_client(world.owner).get("/api/v1/members").json()["items"]}
    assert sorted(members[other_chatter.pk]["creator_ids"]) == sorted([world.creator.pk, world.other_creator.pk])


def test_api_token_list_never_shows_secrets(world):
    client = token_client(world.owner)
    items = client.get("/api/v1/api-tokens").json()["items"]
    assert items and set(items[0]) == {
        "id", "name", "prefix", "scope", "member_email", "created_at", "expires_at", "expired", "last_used_at",
        "revoked_at",
    }  # fmt: skip
    assert items[0]["last_used_at"] is not None


def test_openapi_docs_are_served(db):
    assert Client().get("/api/v1/docs").status_code == 200
    schema = Client().get("/api/v1/openapi.json").json()
    assert "/api/v1/creators" in schema["paths"] and "/api/v1/health" in schema["paths"]


def test_put_agency_without_a_timezone_keeps_the_agencys_own(world):
    """A rename left the time zone out and moved the agency to UTC (the schema's default)."""
    world.agency.timezone = "Europe/Paris"
    world.agency.save(update_fields=["timezone"])
    client = token_client(world.owner)

    def put(body: dict):
        return client.put("/api/v1/agency", body, content_type="application/json")

    response = put({"name": "Renamed"})
    assert response.status_code == 200 and response.json()["timezone"] == "Europe/Paris"
    world.agency.refresh_from_db()
    assert (world.agency.name, world.agency.timezone) == ("Renamed", "Europe/Paris")
    response = put({"name": "Renamed", "timezone": "Asia/Tokyo"})
    assert response.status_code == 200 and response.json()["timezone"] == "Asia/Tokyo"
    assert put({"name": "Again", "timezone": None}).json()["timezone"] == "Asia/Tokyo"
    response = put({"name": "Renamed", "timezone": "Mars/Olympus"})
    assert response.status_code == 422 and "timezone" in response.json()["error"]["fields"]
    schema = client.get("/api/v1/openapi.json").json()["components"]["schemas"]["AgencyIn"]
    assert schema["required"] == ["name"] and schema["properties"]["timezone"].get("default") is None  # docs say so
