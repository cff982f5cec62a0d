"""The profile API: GET/PATCH /api/v1/me/profile acts on the caller alone, validates like the page."""

from __future__ import annotations

from django.test import Client

from apps.accounts.models import AccountEvent, User
from apps.accounts.services import api_token_create

URL = "/api/v1/me/profile"


def _client(membership, scope: str = "write") -> Client:
    _, raw = api_token_create(membership=membership, name="profile", scope=scope)
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_get_and_patch_my_profile(world):
    client = _client(world.chatter)
    profile = client.get(URL).json()
    assert profile["email"] == world.chatter.user.email and profile["keyboard_shortcuts"] is False
    response = client.patch(
        URL,
        {"full_name": "Chat Ter", "timezone": "Europe/Berlin", "keyboard_shortcuts": True},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["full_name"], body["timezone"], body["language"], body["keyboard_shortcuts"]) == (
        "Chat Ter",
        "Europe/Berlin",
        "",
        True,
    )
    assert User.objects.get(pk=world.chatter.user_id).timezone == "Europe/Berlin"
    assert AccountEvent.objects.filter(user=world.chatter.user, kind="profile.updated").count() == 1
    # Only the caller changed.
    assert User.objects.get(pk=world.owner.user_id).full_name != "Chat Ter"


def test_bad_values_are_a_400_naming_the_field_and_change_nothing(world):
    client = _client(world.manager)
    before = User.objects.get(pk=world.manager.user_id)
    for body, field in (
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"language": "klingon"}, "language"),
    ):
        response = client.patch(URL, body, content_type="application/json")
        assert response.status_code == 400, response.content
        assert field in response.json()["error"]["fields"]
    too_long = client.patch(URL, {"full_name": "x" * 151}, content_type="application/json")
    assert too_long.status_code == 422
    after = User.objects.get(pk=world.manager.user_id)
    assert (after.full_name, after.timezone, after.language) == (before.full_name, before.timezone, before.language)


def test_a_read_token_reads_but_cannot_patch(world):
    client = _client(world.viewer, scope="read")
    assert client.get(URL).status_code == 200
    assert client.patch(URL, {"full_name": "Nope"}, content_type="application/json").status_code == 403


def test_no_token_is_a_401(db):
    assert Client().get(URL).status_code == 401
    assert Client().patch(URL, {}, content_type="application/json").status_code == 401
