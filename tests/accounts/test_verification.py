"""Sign-up and password reset are throttled; sign-up sends an email verification link, and an
unverified account cannot invite members or add AI provider keys."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts import services, throttles
from apps.accounts.models import Invitation, User
from tests.accounts.factories import UserFactory

SIGNUP = {"full_name": "Ana Star", "email": "ana@example.com", "password": "velvet-lamp-1987", "agency_name": "Ana Co"}


def _signup(client: Client, **changes):
    return client.post(reverse("accounts:signup"), {**SIGNUP, **changes})


@pytest.fixture
def tight_limits(monkeypatch):
    monkeypatch.setattr(
        throttles, "LIMITS", {"signup": (3, 2), "password_reset": (3, 2), "verification_resend": (3, 2)}
    )


def test_signup_emails_a_verification_link_that_verifies(db, django_capture_on_commit_callbacks, eager_celery):
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = _signup(client)
    assert response.status_code == 302
    user = User.objects.get(email="ana@example.com")
    assert user.email_verified_at is None
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["ana@example.com"]
    page = client.get(reverse("core:dashboard")).content.decode()
    assert "Confirm your email address" in page and "Send a new link" in page
    link = re.search(r"https?://[^/\s]+(/accounts/verify/\S+/)", mail.outbox[0].body).group(1)
    assert "Email address confirmed" in Client().get(link).content.decode()  # works without a session
    user.refresh_from_db()
    assert user.email_verified_at is not None
    assert Client().get(link).status_code == 200  # a second visit is harmless
    assert "Confirm your email address" not in client.get(reverse("core:dashboard")).content.decode()


def test_the_confirmation_page_no_longer_asks_to_confirm(db):
    # Middleware may load request.user before the view verifies the address; the page rendered
    # right after must not show the stale "Confirm your email address" banner.
    user = UserFactory(email_verified_at=None)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    from apps.accounts.selectors import email_verification_token

    page = client.get(reverse("accounts:email-verify", args=[email_verification_token(user)])).content.decode()
    assert "Email address confirmed" in page
    assert "Confirm your email address" not in page


def test_forged_or_stale_verification_links_are_refused(db):
    user = UserFactory(email_verified_at=None)
    assert Client().get(reverse("accounts:email-verify", args=["forged"])).status_code == 404
    from apps.accounts.selectors import email_verification_token

    token = email_verification_token(user)
    user.email = "changed@example.com"
    user.save()
    assert Client().get(reverse("accounts:email-verify", args=[token])).status_code == 404
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_resend_sends_a_new_link_and_is_throttled(
    db, client_for, django_capture_on_commit_callbacks, eager_celery, tight_limits
):
    user = UserFactory(email_verified_at=None)
    from tests.accounts.factories import MembershipFactory

    client = client_for(MembershipFactory(user=user))
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(reverse("accounts:email-verify-resend"))
    assert len(mail.outbox) == 2
    response = client.post(reverse("accounts:email-verify-resend"), follow=True)
    assert "Too many attempts" in response.content.decode() and len(mail.outbox) == 2


def test_signup_is_throttled_per_email_with_a_form_error(db, tight_limits):
    UserFactory(email="taken@example.com")
    for n in range(2):
        assert _signup(Client(REMOTE_ADDR=f"10.0.0.{n}"), email="taken@example.com").status_code == 200
    response = _signup(Client(REMOTE_ADDR="10.0.0.9"), email="taken@example.com")
    assert response.status_code == 429 and "Too many attempts" in response.content.decode()


def test_signup_is_throttled_per_address(db, tight_limits):
    for n in range(3):
        assert _signup(Client(REMOTE_ADDR="10.1.1.1"), email=f"a{n}@example.com").status_code == 302
    response = _signup(Client(REMOTE_ADDR="10.1.1.1"), email="a9@example.com")
    assert response.status_code == 429 and "Too many attempts" in response.content.decode()
    assert not User.objects.filter(email="a9@example.com").exists()
    assert _signup(Client(REMOTE_ADDR="10.1.1.2"), email="a9@example.com").status_code == 302


def test_password_reset_is_throttled_per_email_and_per_address(world, tight_limits):
    email = world.viewer.user.email
    for n in range(2):
        response = Client(REMOTE_ADDR=f"10.2.0.{n}").post(reverse("accounts:password-reset"), {"email": email})
        assert response.status_code == 302
    response = Client(REMOTE_ADDR="10.2.0.9").post(reverse("accounts:password-reset"), {"email": email})
    assert response.status_code == 429 and "Too many attempts" in response.content.decode()
    assert len(mail.outbox) == 2
    client = Client(REMOTE_ADDR="10.3.0.1")
    for n in range(3):
        client.post(reverse("accounts:password-reset"), {"email": f"nobody{n}@example.com"})
    assert client.post(reverse("accounts:password-reset"), {"email": email}).status_code == 429


def test_unverified_owner_cannot_invite_on_the_page_or_in_the_api(world, client_for):
    User.objects.filter(pk=world.owner.user_id).update(email_verified_at=None)
    response = client_for(world.owner).post(
        reverse("accounts:member-list"), {"email": "new@example.com", "role": "chatter"}
    )
    assert response.status_code == 200 and "Confirm your email address first" in response.content.decode()
    api = client_for(world.owner).post(
        "/api/v1/invitations", {"email": "new@example.com"}, content_type="application/json"
    )
    assert api.status_code == 403 and api.json()["error"]["code"] == "email_not_verified"
    assert not Invitation.objects.filter(email="new@example.com").exists()


def test_invited_users_are_verified_by_accepting(world):
    invitation = Invitation.objects.create(agency=world.agency, email="guest@example.com", role="viewer")
    membership = services.invitation_accept_with_signup(
        invitation=invitation, password="velvet-lamp-1987", full_name="Guest"
    )
    assert membership.user.email_verified_at is not None


def test_unverified_owner_cannot_add_or_change_provider_keys(world, client_for):
    from apps.accounts.permissions import EmailNotVerifiedError
    from apps.ai import services as ai_services
    from apps.ai.models import ProviderCredential

    credential = ProviderCredential.objects.create(
        agency=world.agency, kind="openai", label="Existing", api_key="sk-existing-0123456789", model_names=["gpt-4o"]
    )
    User.objects.filter(pk=world.owner.user_id).update(email_verified_at=None)
    world.owner.user.refresh_from_db()
    data = {"kind": "openai", "label": "Mine", "api_key": "sk-unverified-0123456789", "model_names": ["gpt-4o-mini"]}
    with pytest.raises(EmailNotVerifiedError):
        ai_services.credential_create(membership=world.owner, data=data)
    with pytest.raises(EmailNotVerifiedError):
        ai_services.credential_update(
            membership=world.owner, credential=credential, data={"api_key": "sk-new-0123456789"}
        )
    form = {
        "kind": "openai", "label": "Mine", "api_key": "sk-unverified-0123456789", "base_url": "", "azure_endpoint": "",
        "azure_api_version": "", "model_names": "gpt-4o-mini", "priority": "5", "is_enabled": "on",
    }  # fmt: skip
    response = client_for(world.owner).post(reverse("ai:credential-list"), form)
    assert "Confirm your email address first" in response.content.decode()
    assert list(ProviderCredential.objects.filter(agency=world.agency).values_list("label", flat=True)) == ["Existing"]


def test_an_unverified_user_accepting_an_invitation_is_verified(world):
    guest = UserFactory(email="guest2@example.com", email_verified_at=None)
    invitation = Invitation.objects.create(agency=world.agency, email="guest2@example.com", role="viewer")
    services.invitation_accept(invitation=invitation, user=guest)
    guest.refresh_from_db()
    assert guest.email_verified_at is not None
