"""Deleting one's own account: proof, ownership hand-over or closing, revocation, audit, logout."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse
from django_otp.oath import totp

from apps.accounts import two_factor
from apps.accounts.models import AccountEvent, Agency, ApiToken, Creator, Membership, Role, User, UserSession
from apps.accounts.services import api_token_create
from tests.accounts.factories import PASSWORD, CreatorFactory, MembershipFactory

DELETE = reverse("accounts:account-delete")


def _client(user) -> Client:
    client = Client()  # a real login through the page: its session is recorded (UserSession)
    response = client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_a_member_deletes_their_account_and_the_agency_keeps_going(world):
    user = world.manager.user
    _, raw = api_token_create(membership=world.manager, name="script")
    client = _client(user)
    other_browser = _client(user)
    assert UserSession.objects.filter(user=user).count() == 2
    page = client.get(DELETE)
    assert page.status_code == 200 and world.agency.name in page.content.decode()

    wrong = client.post(DELETE, {"password": "not-it"})
    assert wrong.status_code == 400 and "password is not right" in wrong.content.decode()
    assert User.objects.filter(pk=user.pk).exists()

    response = client.post(DELETE, {"password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("accounts:account-deleted")
    assert not User.objects.filter(pk=user.pk).exists()
    assert Agency.objects.filter(pk=world.agency.pk).exists()
    assert Membership.objects.filter(agency=world.agency).count() == 3
    assert not ApiToken.objects.filter(membership__user_id=user.pk).exists()
    assert Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/me").status_code == 401
    # Logged out here and in the other browser.
    assert client.get(reverse("accounts:profile")).status_code == 302
    assert other_browser.get(reverse("accounts:profile")).status_code == 302
    confirmation = client.get(reverse("accounts:account-deleted"))
    assert "Your account is deleted" in confirmation.content.decode()
    event = AccountEvent.objects.get(kind=AccountEvent.Kind.ACCOUNT_DELETED)
    assert event.user is None and event.ip_address is None
    assert user.email not in str(event.detail) and event.detail == {"agencies_closed": 0, "agencies_left": 1}


def test_the_only_owner_of_an_agency_with_members_must_hand_over_first(world):
    client = _client(world.owner.user)
    page = client.get(DELETE).content.decode()
    assert "You are the only owner of" in page and reverse("accounts:member-list") in page
    assert 'name="password"' not in page
    response = client.post(DELETE, {"password": PASSWORD})
    assert response.status_code == 400
    assert User.objects.filter(pk=world.owner.user_id).exists()
    # Once another member is an owner, the first one may go.
    Membership.objects.filter(pk=world.manager.pk).update(role=Role.OWNER)
    assert client.post(DELETE, {"password": PASSWORD}).status_code == 302
    assert not User.objects.filter(pk=world.owner.user_id).exists()
    assert Agency.objects.filter(pk=world.agency.pk).exists()


def test_the_only_member_closes_the_agency_after_typing_its_name(db):
    solo = MembershipFactory(agency__name="Solo Studio", role=Role.OWNER)
    CreatorFactory(agency=solo.agency, display_name="Solo Star")
    client = _client(solo.user)
    page = client.get(DELETE).content.decode()
    assert "Solo Studio" in page and "closed with your account" in page
    mismatch = client.post(DELETE, {"password": PASSWORD, "confirmation": "Other Studio"})
    assert mismatch.status_code == 400 and "Solo Studio" in mismatch.content.decode()
    assert Agency.objects.filter(pk=solo.agency_id).exists()
    assert client.post(DELETE, {"password": PASSWORD, "confirmation": " solo studio "}).status_code == 302
    assert not Agency.objects.filter(pk=solo.agency_id).exists()
    assert not Creator.objects.filter(display_name="Solo Star").exists()
    assert AccountEvent.objects.get(kind=AccountEvent.Kind.ACCOUNT_DELETED).detail["agencies_closed"] == 1


def test_a_user_with_two_factor_also_gives_a_code(world):
    Membership.objects.filter(pk=world.manager.pk).update(role=Role.OWNER)  # the owner may go
    user = world.owner.user
    device = two_factor.totp_setup_start(user=user)
    code = f"{totp(device.bin_key):06d}"
    two_factor.totp_setup_confirm(user=user, device=device, code=code)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    assert 'name="code"' in client.get(DELETE).content.decode()
    missing = client.post(DELETE, {"password": PASSWORD})
    assert missing.status_code == 400 and User.objects.filter(pk=user.pk).exists()
    wrong = client.post(DELETE, {"password": PASSWORD, "code": "000000"})
    assert wrong.status_code == 400 and User.objects.filter(pk=user.pk).exists()
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.last_t = -1
    device.save()
    ok = client.post(DELETE, {"password": PASSWORD, "code": f"{totp(device.bin_key):06d}"})
    assert ok.status_code == 302 and not User.objects.filter(pk=user.pk).exists()


def test_deleting_needs_a_login_and_its_earlier_events_go_too(world, client_for):
    assert Client().post(DELETE, {"password": PASSWORD}).status_code == 302
    client = client_for(world.chatter)
    client.post(reverse("accounts:profile"), {"full_name": "Before", "timezone": "", "language": ""})
    assert AccountEvent.objects.filter(user=world.chatter.user).count() == 1
    client.post(DELETE, {"password": PASSWORD})
    assert list(AccountEvent.objects.values_list("kind", "user", "ip_address")) == [
        (AccountEvent.Kind.ACCOUNT_DELETED, None, None)
    ]
