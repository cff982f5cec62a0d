"""API tokens: expiry, scopes (read, write, admin) within the member's current role, and who may
see and revoke which tokens, on the page and in the API."""

from __future__ import annotations

import re
import zoneinfo
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiToken, Creator, Membership, Role
from apps.core.errors import ApplicationError


def bearer(secret: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def test_tokens_expire_after_90_days_by_default_and_then_answer_401(world):
    token, secret = services.api_token_create(membership=world.owner, name="CRM")
    assert timedelta(days=89) < token.expires_at - timezone.now() <= timedelta(days=90)
    assert bearer(secret).get("/api/v1/me").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(secret).get("/api/v1/me")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"


def test_expiry_must_be_in_the_future_and_within_a_year(world):
    with pytest.raises(ApplicationError, match="future"):
        services.api_token_create(membership=world.owner, name="x", expires_at=timezone.now())
    with pytest.raises(ApplicationError, match="at most"):
        services.api_token_create(membership=world.owner, name="x", expires_at=timezone.now() + timedelta(days=400))


def test_revoked_token_answers_401(world):
    token, secret = services.api_token_create(membership=world.owner, name="CRM")
    services.api_token_revoke(membership=world.owner, token=token)
    assert bearer(secret).get("/api/v1/creators").status_code == 401


def test_read_scope_can_only_use_safe_methods(world):
    _, secret = services.api_token_create(membership=world.owner, name="r", scope="read")
    client = bearer(secret)
    assert client.get("/api/v1/creators").status_code == 200
    response = client.post("/api/v1/creators", {"display_name": "Nope"}, content_type="application/json")
    assert response.status_code == 403 and "read scope" in response.json()["error"]["message"]
    assert (
        client.patch(
            f"/api/v1/creators/{world.creator.pk}", {"niche": "x"}, content_type="application/json"
        ).status_code
        == 403
    )
    assert not Creator.objects.filter(display_name="Nope").exists()


def test_me_shows_the_tokens_scope_expiry_and_effective_permissions(world):
    _, secret = services.api_token_create(membership=world.owner, name="r", scope="read")
    me = bearer(secret).get("/api/v1/me").json()
    assert me["token_scope"] == "read" and me["token_expires_at"] and me["permissions"] == ["view"]
    _, secret = services.api_token_create(membership=world.chatter, name="w", scope="write")
    assert bearer(secret).get("/api/v1/me").json()["permissions"] == ["view", "send_messages"]


def test_write_scope_writes_but_cannot_administer(world):
    _, secret = services.api_token_create(membership=world.owner, name="w", scope="write")
    client = bearer(secret)
    created = client.post("/api/v1/creators", {"display_name": "Fine"}, content_type="application/json")
    assert created.status_code == 201
    invite = client.post("/api/v1/invitations", {"email": "new@example.com"}, content_type="application/json")
    assert invite.status_code == 403
    role = client.patch(f"/api/v1/members/{world.viewer.pk}", {"role": "manager"}, content_type="application/json")
    assert role.status_code == 403
    assert client.put("/api/v1/agency", {"name": "Renamed"}, content_type="application/json").status_code == 403
    assert client.get("/api/v1/api-tokens").status_code == 403
    assert Membership.objects.get(pk=world.viewer.pk).role == Role.VIEWER


def test_admin_scope_administers(world):
    _, secret = services.api_token_create(membership=world.owner, name="a", scope="admin")
    client = bearer(secret)
    assert (
        client.post("/api/v1/invitations", {"email": "new@example.com"}, content_type="application/json").status_code
        == 201
    )
    assert client.put("/api/v1/agency", {"name": "Renamed"}, content_type="application/json").status_code == 200
    assert client.get("/api/v1/api-tokens").status_code == 200


@pytest.mark.parametrize(("role", "allowed"), [("viewer", ["read"]), ("chatter", ["read", "write"])])
def test_a_token_cannot_exceed_its_members_role_at_creation(world, role, allowed):
    member = world.member(role)
    for scope in ("read", "write", "admin"):
        if scope in allowed:
            assert services.api_token_create(membership=member, name=scope, scope=scope)[0].scope == scope
        else:
            with pytest.raises(ApplicationError, match="at most"):
                services.api_token_create(membership=member, name=scope, scope=scope)


def test_a_demoted_members_token_loses_power_at_once(world):
    _, secret = services.api_token_create(membership=world.manager, name="m", scope="admin")
    client = bearer(secret)
    assert (
        client.post("/api/v1/creators", {"display_name": "Before"}, content_type="application/json").status_code == 201
    )
    Membership.objects.filter(pk=world.manager.pk).update(role=Role.VIEWER)
    response = client.post("/api/v1/creators", {"display_name": "After"}, content_type="application/json")
    assert response.status_code == 403
    assert (
        client.post("/api/v1/invitations", {"email": "late@example.com"}, content_type="application/json").status_code
        == 403
    )
    assert not Creator.objects.filter(display_name="After").exists()


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_chatters_and_viewers_see_and_revoke_only_their_own_tokens(world, client_for, role):
    member = world.member(role)
    mine, _ = services.api_token_create(membership=member, name="My own token", scope="read")
    owners, _ = services.api_token_create(membership=world.owner, name="Owner's token")
    page = client_for(member).get(reverse("accounts:api-token-list")).content.decode()
    assert "My own token" in page and "Owner&#x27;s token" not in page and "Owner's token" not in page
    assert client_for(member).post(reverse("accounts:api-token-revoke", args=[owners.pk])).status_code == 404
    assert ApiToken.objects.get(pk=owners.pk).revoked_at is None
    client_for(member).post(reverse("accounts:api-token-revoke", args=[mine.pk]))
    assert ApiToken.objects.get(pk=mine.pk).revoked_at is not None


def test_chatter_token_lists_only_its_own_tokens_through_the_api(world):
    services.api_token_create(membership=world.owner, name="Owner's token")
    # A chatter's highest scope is write, which cannot manage tokens through the API at all.
    _, secret = services.api_token_create(membership=world.chatter, name="c")
    assert bearer(secret).get("/api/v1/api-tokens").status_code == 403
    # Through the browser session the chatter sees their own tokens only.
    from tests.conftest import login_client

    items = login_client(world.chatter).get("/api/v1/api-tokens").json()["items"]
    assert [item["name"] for item in items] == ["c"]


def test_manager_cannot_revoke_an_owners_token(world, client_for):
    owners, _ = services.api_token_create(membership=world.owner, name="Owner's token")
    viewers, _ = services.api_token_create(membership=world.viewer, name="Viewer's token")
    _, secret = services.api_token_create(membership=world.manager, name="m", scope="admin")
    response = bearer(secret).delete(f"/api/v1/api-tokens/{owners.pk}")
    assert response.status_code == 403
    assert "Only an owner can revoke an owner's API token." in response.json()["error"]["message"]
    page = client_for(world.manager)
    listing = page.get(reverse("accounts:api-token-list")).content.decode()
    assert "Owner&#x27;s token" in listing  # managers see the agency's tokens
    followed = page.post(reverse("accounts:api-token-revoke", args=[owners.pk]), follow=True)
    assert "Only an owner can revoke" in followed.content.decode()
    assert ApiToken.objects.get(pk=owners.pk).revoked_at is None
    assert bearer(secret).delete(f"/api/v1/api-tokens/{viewers.pk}").status_code == 204
    assert ApiToken.objects.get(pk=viewers.pk).revoked_at is not None
    client_for(world.owner).post(reverse("accounts:api-token-revoke", args=[owners.pk]))
    assert ApiToken.objects.get(pk=owners.pk).revoked_at is not None


def test_a_token_expiring_on_a_date_works_through_that_day_in_the_users_time_zone(world, client_for):
    user = world.chatter.user
    user.timezone = "America/New_York"
    user.save(update_fields=["timezone"])
    client = client_for(world.chatter)
    on = (timezone.now() + timedelta(days=10)).date()
    client.post(
        reverse("accounts:api-token-list"),
        {"name": "Till then", "scope": "read", "expires_in": "date", "expires_on": on.isoformat()},
    )
    token = ApiToken.objects.get(name="Till then")
    local = token.expires_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert local.date() == on and (local.hour, local.minute) == (23, 59)
    listing = client.get(reverse("accounts:api-token-list")).content.decode()
    assert f"{on.day} {on:%b %Y}" in listing  # the date chosen, not the day before


def test_tokens_page_creates_with_scope_and_expiry_and_shows_them(world, client_for):
    client = client_for(world.chatter)
    page = client.get(reverse("accounts:api-token-list")).content.decode()
    assert 'value="write"' in page and 'value="admin"' not in page  # no scope above the role
    response = client.post(
        reverse("accounts:api-token-list"),
        {"name": "Inbox bot", "scope": "write", "expires_in": "date", "expires_on": ""},
    )
    assert "Choose the date the token stops working." in response.content.decode()
    on = (timezone.now() + timedelta(days=10)).date()
    response = client.post(
        reverse("accounts:api-token-list"),
        {"name": "Inbox bot", "scope": "write", "expires_in": "date", "expires_on": on.isoformat()},
    )
    assert re.search(rb'value="(hz_[^"]+)"', response.content)
    token = ApiToken.objects.get(name="Inbox bot")
    assert token.scope == "write" and token.expires_at.date() == on
    assert (
        client.post(
            reverse("accounts:api-token-list"), {"name": "Too much", "scope": "admin", "expires_in": "30"}
        ).status_code
        == 200
    )
    assert not ApiToken.objects.filter(name="Too much").exists()
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    listing = client.get(reverse("accounts:api-token-list")).content.decode()
    assert "expired" in listing and "never" in listing  # expired state and last use shown
