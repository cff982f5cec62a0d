"""The profile page: name, time zone, language, keyboard shortcuts and avatar, and where they apply."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from apps.accounts.models import AccountEvent, User, UserAvatar
from tests.accounts.factories import MembershipFactory

PROFILE = reverse("accounts:profile")
AVATAR = reverse("accounts:profile-avatar")
AVATAR_IMAGE = reverse("accounts:profile-avatar-image")


def _picture(fmt: str = "PNG", size=(640, 400), exif: bool = False) -> io.BytesIO:
    image = Image.new("RGB", size, (200, 30, 90))
    out = io.BytesIO()
    if exif:
        data = Image.Exif()
        data[0x010F] = "SecretCam"  # Make
        data[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0)}  # GPS
        image.save(out, format=fmt, exif=data.tobytes())
    else:
        image.save(out, format=fmt)
    out.seek(0)
    out.name = f"me.{fmt.lower()}"
    return out


def test_profile_page_saves_name_and_preferences_with_an_audit_event(world, client_for):
    client = client_for(world.viewer)
    page = client.get(PROFILE)
    assert page.status_code == 200
    assert world.viewer.user.email in page.content.decode()
    response = client.post(
        PROFILE,
        {"full_name": "  Mia Example ", "timezone": "Asia/Tokyo", "language": "fr", "keyboard_shortcuts": "on"},
    )
    assert response.status_code == 302
    user = User.objects.get(pk=world.viewer.user_id)
    assert (user.full_name, user.timezone, user.language, user.keyboard_shortcuts) == (
        "Mia Example",
        "Asia/Tokyo",
        "fr",
        True,
    )
    event = AccountEvent.objects.get(user=user, kind=AccountEvent.Kind.PROFILE_UPDATED)
    assert event.detail["fields"] == ["full_name", "keyboard_shortcuts", "language", "timezone"]
    assert event.ip_address == "127.0.0.1"


def test_unknown_time_zone_or_language_is_a_form_error_and_nothing_is_saved(world, client_for):
    client = client_for(world.owner)
    before = User.objects.get(pk=world.owner.user_id)
    response = client.post(PROFILE, {"full_name": "Changed", "timezone": "Mars/Olympus", "language": "xx"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "Select a valid choice" in text
    after = User.objects.get(pk=world.owner.user_id)
    assert (after.full_name, after.timezone, after.language) == (before.full_name, before.timezone, before.language)
    assert not AccountEvent.objects.filter(user=after).exists()


def test_profile_page_needs_login(client):
    response = client.get(PROFILE)
    assert response.status_code == 302 and reverse("accounts:login") in response["Location"]


def test_profile_page_query_count_is_constant(world, client_for, django_assert_max_num_queries):
    client = client_for(world.owner)
    for _ in range(15):
        client.post(PROFILE, {"full_name": "Name", "timezone": "Europe/Paris", "language": ""})
        client.post(PROFILE, {"full_name": "Other", "timezone": "UTC", "language": "de"})
    with django_assert_max_num_queries(14):
        assert client.get(PROFILE).status_code == 200


def test_times_render_in_the_users_zone_else_the_agencys(world, client_for):
    world.agency.timezone = "America/New_York"
    world.agency.save()
    client = client_for(world.manager)
    client.post(PROFILE, {"full_name": "Zed", "timezone": "", "language": ""})
    assert "EST" in client.get(PROFILE).content.decode() or "EDT" in client.get(PROFILE).content.decode()
    client.post(PROFILE, {"full_name": "Zed", "timezone": "Asia/Tokyo", "language": ""})
    assert "JST" in client.get(PROFILE).content.decode()


def test_language_is_activated_for_django_text(world, client_for):
    client = client_for(world.chatter)
    client.post(PROFILE, {"full_name": "Zed", "timezone": "", "language": "fr"})
    response = client.post(reverse("accounts:account-delete"), {})
    assert response["Content-Language"] == "fr"
    assert "Ce champ est obligatoire." in response.content.decode()
    assert '<html lang="fr">' in response.content.decode()


def test_shortcuts_script_is_loaded_only_when_turned_on(world, client_for):
    client = client_for(world.owner)
    dashboard = reverse("core:dashboard")
    assert "js/shortcuts" not in client.get(dashboard).content.decode()
    client.post(PROFILE, {"full_name": "Zed", "timezone": "", "language": "", "keyboard_shortcuts": "on"})
    page = client.get(dashboard)
    text = page.content.decode()
    assert "js/shortcuts" in text
    assert f'data-inbox="{reverse("messaging:inbox")}"' in text
    assert "'unsafe-inline'" not in page.get("Content-Security-Policy", "").split("script-src", 1)[1].split(";")[0]


def test_avatar_upload_is_cropped_re_encoded_and_stripped(world, client_for):
    client = client_for(world.viewer)
    response = client.post(AVATAR, {"avatar": _picture("JPEG", exif=True)})
    assert response.status_code == 302
    user = User.objects.get(pk=world.viewer.user_id)
    assert user.avatar_updated_at is not None
    served = client.get(AVATAR_IMAGE)
    assert served.status_code == 200 and served["Content-Type"] == "image/webp"
    image = Image.open(io.BytesIO(served.content))
    assert image.format == "WEBP" and image.size == (256, 256)
    assert not image.getexif() and b"SecretCam" not in served.content
    assert AVATAR_IMAGE in client.get(PROFILE).content.decode()  # the user menu and the profile show it


@pytest.mark.parametrize(
    "payload",
    [
        io.BytesIO(b"<script>alert(1)</script>"),
        io.BytesIO(b"GIF89a" + b"\x00" * 40),  # a header and nothing behind it
        io.BytesIO(b"%PDF-1.4 not a picture"),
    ],
)
def test_a_file_that_is_not_a_picture_is_refused_whatever_its_name(world, client_for, payload):
    payload.name = "innocent.png"
    client = client_for(world.viewer)
    response = client.post(AVATAR, {"avatar": payload})
    assert response.status_code == 400
    assert "not a picture" in response.content.decode()
    assert not UserAvatar.objects.exists()
    assert User.objects.get(pk=world.viewer.user_id).avatar_updated_at is None


def test_a_picture_over_the_size_limit_is_refused(world, client_for, settings):
    settings.AVATAR_MAX_BYTES = 2000
    response = client_for(world.viewer).post(AVATAR, {"avatar": _picture("PNG", size=(800, 800))})
    assert response.status_code in (200, 400)
    assert not UserAvatar.objects.exists()


def test_avatar_is_the_users_own_and_can_be_removed(world, client_for):
    client = client_for(world.viewer)
    client.post(AVATAR, {"avatar": _picture("PNG")})
    other = client_for(world.owner)  # same agency, no picture: there is no URL to anyone else's
    assert other.get(AVATAR_IMAGE).status_code == 404
    assert client.post(AVATAR, {"remove": "1"}).status_code == 302
    assert client.get(AVATAR_IMAGE).status_code == 404
    assert User.objects.get(pk=world.viewer.user_id).avatar_updated_at is None


def test_a_user_without_an_agency_can_edit_their_profile(db, client_for):
    membership = MembershipFactory()
    user = membership.user
    membership.delete()
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get(PROFILE).status_code == 200
    assert client.post(PROFILE, {"full_name": "Lonely", "timezone": "UTC", "language": ""}).status_code == 302
