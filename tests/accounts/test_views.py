"""Accounts pages as a user meets them: sign-up, log-in, invitations, switching, settings."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from apps.accounts import services
from apps.accounts.middleware import SESSION_CREATOR
from apps.accounts.models import ApiToken, Creator, Invitation, Membership, User
from apps.accounts.selectors import invitation_token
from tests.accounts.factories import PASSWORD, CreatorFactory, MembershipFactory, UserFactory

VALID_CREATOR = {
    "display_name": "Ivy Lane",
    "niche": "yoga",
    "persona": "Calm yoga teacher",
    "voice": "Soft, kind",
    "sample_texts": "namaste lovely\nnew flow tonight",
    "avoid_words": "cheap, desperate",
    "avoid_topics": "location",
    "language": "en",
    "timezone": "Europe/London",
    "ppv_price_min": "7",
    "ppv_price_max": "35",
    "handle_onlyfans": "@ivylane",
}


def test_signup_creates_agency_and_logs_in(db):
    client = Client()
    response = client.post(
        reverse("accounts:signup"),
        {"full_name": "Ana Star", "email": "ana@example.com", "password": "velvet-lamp-1987", "agency_name": "Ana Co"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("accounts:creator-create")
    page = client.get(reverse("core:dashboard"))
    assert b"Ana Co" in page.content
    assert b"No creators yet" in page.content


def test_signup_form_errors_are_shown_not_raised(db):
    UserFactory(email="taken@example.com")
    response = Client().post(
        reverse("accounts:signup"),
        {"full_name": "X", "email": "taken@example.com", "password": "123", "agency_name": ""},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "This password is too short" in body
    assert "This field is required" in body
    assert User.objects.count() == 1


def test_login_with_email_and_lockout_after_repeated_failures(world, settings):
    client = Client()
    email = world.owner.user.email
    response = client.post(reverse("accounts:login"), {"username": email, "password": PASSWORD})
    assert response.status_code == 302
    client.post(reverse("accounts:logout"))
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post(reverse("accounts:login"), {"username": email, "password": "wrong"})
    assert response.status_code == 429
    # Even the right password is refused while locked out.
    response = client.post(reverse("accounts:login"), {"username": email, "password": PASSWORD})
    assert response.status_code == 429
    assert b"Too many failed log-in attempts" in response.content


def test_pages_require_login(db):
    response = Client().get(reverse("core:dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))


def test_password_reset_sends_a_working_link(world):
    client = Client()
    client.post(reverse("accounts:password-reset"), {"email": world.viewer.user.email})
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", mail.outbox[0].body).group(1)
    response = client.get(link, follow=True)
    response = client.post(
        response.redirect_chain[-1][0], {"new_password1": "brand-new-secret-42", "new_password2": "brand-new-secret-42"}
    )
    assert response.status_code == 302
    login = Client().post(
        reverse("accounts:login"), {"username": world.viewer.user.email, "password": "brand-new-secret-42"}
    )
    assert login.status_code == 302


def test_password_change(world, client_for):
    client = client_for(world.viewer)
    response = client.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": "another-secret-77", "new_password2": "another-secret-77"},
    )
    assert response.status_code == 302
    world.viewer.user.refresh_from_db()
    assert world.viewer.user.check_password("another-secret-77")


def test_invite_email_then_accept_as_new_user(world, client_for, django_capture_on_commit_callbacks, eager_celery):
    owner = client_for(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = owner.post(reverse("accounts:member-list"), {"email": "newbie@example.com", "role": "chatter"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["newbie@example.com"]
    link = re.search(r"http://127\.0\.0\.1:8000(/invitations/\S+/)", mail.outbox[0].body).group(1)
    guest = Client()
    page = guest.get(link)
    assert page.status_code == 200 and world.agency.name.encode() in page.content
    response = guest.post(link, {"full_name": "New Bie", "password": "fresh-start-2026"})
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="newbie@example.com")
    assert membership.agency == world.agency and membership.role == "chatter"
    assert guest.get(link).status_code == 404  # used links stop working


def test_invitation_for_someone_else_is_not_accepted(world, client_for):
    invitation = Invitation.objects.create(agency=world.agency, email="target@example.com", role="viewer")
    intruder = MembershipFactory()
    client = client_for(intruder)
    link = reverse("accounts:invitation-accept", args=[invitation_token(invitation)])
    page = client.get(link)
    assert b"This invitation is for target@example.com" in page.content
    client.post(link)
    assert not Membership.objects.filter(agency=world.agency, user=intruder.user).exists()


def test_expired_or_forged_invitation_link_is_404(world, client_for, settings):
    invitation = Invitation.objects.create(agency=world.agency, email="late@example.com", role="viewer")
    link = reverse("accounts:invitation-accept", args=[invitation_token(invitation)])
    settings.INVITATION_MAX_AGE = -1
    assert Client().get(link).status_code == 404
    assert Client().get(link[:-3] + "xx/").status_code == 404


def test_switch_creator_is_scoped(world, other_world, client_for):
    client = client_for(world.manager)
    response = client.post(reverse("accounts:switch-creator"), {"id": world.other_creator.pk})
    assert response.status_code == 302
    assert client.session[SESSION_CREATOR] == world.other_creator.pk
    assert client.post(reverse("accounts:switch-creator"), {"id": other_world.creator.pk}).status_code == 404
    chatter = client_for(world.chatter)
    assert chatter.post(reverse("accounts:switch-creator"), {"id": world.other_creator.pk}).status_code == 404


def test_switch_agency_only_to_own_memberships(world, other_world, client_for):
    MembershipFactory(agency=other_world.agency, user=world.viewer.user, role="viewer")
    client = client_for(world.viewer)
    client.post(reverse("accounts:switch-agency"), {"id": other_world.agency.pk})
    assert other_world.agency.name.encode() in client.get(reverse("core:dashboard")).content
    stranger = build_stranger_client(client_for)
    stranger.post(reverse("accounts:switch-agency"), {"id": world.agency.pk})
    assert world.agency.name.encode() not in stranger.get(reverse("core:dashboard")).content


def build_stranger_client(client_for):
    return client_for(MembershipFactory())


def test_create_and_edit_creator(world, client_for):
    client = client_for(world.manager)
    response = client.post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert response.status_code == 302
    creator = Creator.objects.get(display_name="Ivy Lane")
    assert creator.agency == world.agency
    assert creator.sample_texts == ["namaste lovely", "new flow tonight"]
    assert creator.avoid_words == ["cheap", "desperate"]
    assert creator.handles == {"onlyfans": "ivylane"}
    response = client.post(reverse("accounts:creator-edit", args=[creator.pk]), {**VALID_CREATOR, "niche": "pilates"})
    creator.refresh_from_db()
    assert creator.niche == "pilates"


def test_creator_form_errors_keep_input(world, client_for):
    client = client_for(world.owner)
    bad = {
        **VALID_CREATOR,
        "ppv_price_min": "50",
        "ppv_price_max": "10",
        "timezone": "Mars/Olympus",
        "handle_x": "bad handle!",
    }
    response = client.post(reverse("accounts:creator-create"), bad)
    assert response.status_code == 200
    body = response.content.decode()
    assert "The highest PPV price cannot be below the lowest." in body
    assert "Select a valid choice" in body
    assert "Letters, digits, dots, dashes and underscores only." in body
    assert 'value="Ivy Lane"' in body
    assert not Creator.objects.filter(display_name="Ivy Lane").exists()


def test_duplicate_creator_name_is_a_form_error(world, client_for):
    response = client_for(world.owner).post(
        reverse("accounts:creator-create"), {**VALID_CREATOR, "display_name": world.creator.display_name}
    )
    assert response.status_code == 200
    assert "already has a creator with that name" in response.content.decode()


def test_viewer_can_read_but_not_change_creators(world, client_for):
    client = client_for(world.viewer)
    assert client.get(reverse("accounts:creator-create")).status_code == 403
    page = client.get(reverse("accounts:creator-edit", args=[world.creator.pk]))
    assert page.status_code == 200 and b"can view this creator but not change it" in page.content
    client.post(reverse("accounts:creator-edit", args=[world.creator.pk]), {**VALID_CREATOR})
    world.creator.refresh_from_db()
    assert world.creator.display_name != "Ivy Lane"
    assert client.post(reverse("accounts:creator-archive", args=[world.creator.pk])).status_code == 403


def test_archive_and_restore_creator_keeps_data(world, client_for):
    client = client_for(world.owner)
    client.post(reverse("accounts:creator-archive", args=[world.creator.pk]))
    world.creator.refresh_from_db()
    assert world.creator.is_archived
    client.get(reverse("accounts:creator-list"))  # shows (and consumes) the "archived" message
    listing = client.get(reverse("accounts:creator-list"))
    assert world.creator.display_name.encode() not in listing.content
    archived = client.get(reverse("accounts:creator-list"), {"show": "archived"})
    assert world.creator.display_name.encode() in archived.content
    client.post(reverse("accounts:creator-archive", args=[world.creator.pk]), {"action": "restore"})
    world.creator.refresh_from_db()
    assert not world.creator.is_archived


def test_creator_list_search_htmx_fragment_and_pagination(world, client_for):
    CreatorFactory.create_batch(30, agency=world.agency)
    client = client_for(world.owner)
    full = client.get(reverse("accounts:creator-list"))
    assert b"Page 1 of 2" in full.content and b"<html" in full.content
    fragment = client.get(reverse("accounts:creator-list"), {"q": "Star"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content
    assert world.creator.display_name.encode() in fragment.content
    assert world.other_creator.display_name.encode() not in fragment.content
    empty = client.get(reverse("accounts:creator-list"), {"q": "zzz-nobody"})
    assert "No creator matches “zzz-nobody”".encode() in empty.content


def test_member_page_invite_and_roles(world, client_for):
    viewer = client_for(world.viewer)
    page = viewer.get(reverse("accounts:member-list"))
    assert page.status_code == 200 and b"Invite a member" not in page.content
    viewer.post(reverse("accounts:member-list"), {"email": "x@example.com", "role": "viewer"})
    assert not Invitation.objects.filter(email="x@example.com").exists()
    manager = client_for(world.manager)
    response = manager.post(reverse("accounts:member-list"), {"email": "not-an-email", "role": "viewer"})
    assert b"Enter a valid email address." in response.content
    response = manager.post(reverse("accounts:member-list"), {"email": "boss@example.com", "role": "owner"})
    assert b"Only an owner can invite another owner." in response.content


def test_a_chatter_sees_on_the_team_page_only_the_creators_assigned_to_them(world, client_for):
    shared = CreatorFactory(agency=world.agency, display_name="Shared")
    world.chatter.assignments.create(agency=world.agency, creator=shared)
    other_chatter = MembershipFactory(agency=world.agency, role="chatter")
    for creator in (world.other_creator, shared):
        other_chatter.assignments.create(agency=world.agency, creator=creator)
    page = client_for(world.chatter).get(reverse("accounts:member-list")).content.decode()
    assert world.creator.display_name in page and "Shared" in page
    assert world.other_creator.display_name not in page
    # The manager sees every assignment.
    page = client_for(world.manager).get(reverse("accounts:member-list")).content.decode()
    assert world.other_creator.display_name in page and world.creator.display_name in page


def test_member_edit_role_and_assignments(world, client_for):
    client = client_for(world.manager)
    url = reverse("accounts:member-edit", args=[world.chatter.pk])
    client.post(url, {"form": "assignments", "creators": [world.creator.pk, world.other_creator.pk]})
    assert set(world.chatter.assignments.values_list("creator_id", flat=True)) == {
        world.creator.pk,
        world.other_creator.pk,
    }
    client.post(url, {"form": "role", "role": "viewer"})
    world.chatter.refresh_from_db()
    assert world.chatter.role == "viewer"
    assert client_for(world.viewer).get(url).status_code == 403


def test_saving_a_chatters_assignments_keeps_those_to_archived_creators(world, client_for):
    services.creator_set_archived(membership=world.owner, creator=world.creator, archived=True)
    url = reverse("accounts:member-edit", args=[world.chatter.pk])
    page = client_for(world.manager).get(url).content.decode()
    assert world.creator.display_name not in page  # archived creators are not offered
    client_for(world.manager).post(url, {"form": "assignments", "creators": [world.other_creator.pk]})
    services.creator_set_archived(membership=world.owner, creator=world.creator, archived=False)
    page = client_for(world.chatter).get(reverse("accounts:creator-list")).content.decode()
    assert world.creator.display_name in page and world.other_creator.display_name in page


def test_remove_member_and_leave(world, client_for):
    client = client_for(world.owner)
    client.post(reverse("accounts:member-remove", args=[world.viewer.pk]))
    assert not Membership.objects.filter(pk=world.viewer.pk).exists()
    chatter = client_for(world.chatter)
    assert chatter.post(reverse("accounts:member-remove", args=[world.manager.pk])).status_code == 403
    response = chatter.post(reverse("accounts:member-remove", args=[world.chatter.pk]))
    assert response.status_code == 302 and not Membership.objects.filter(pk=world.chatter.pk).exists()
    # Left with no agency, the chatter is sent to create one rather than shown an error.
    assert chatter.get(reverse("core:dashboard"))["Location"] == reverse("accounts:agency-create")


def test_api_token_page_shows_secret_once(world, client_for):
    client = client_for(world.owner)
    response = client.post(reverse("accounts:api-token-list"), {"name": "Zapier", "scope": "read", "expires_in": "90"})
    secret = re.search(rb'value="(hz_[^"]+)"', response.content).group(1).decode()
    assert ApiToken.objects.get(name="Zapier").token_hash != secret
    again = client.get(reverse("accounts:api-token-list"))
    assert secret.encode() not in again.content and b"Zapier" in again.content
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/me").json()["email"] == world.owner.user.email
    token = ApiToken.objects.get(name="Zapier")
    client.post(reverse("accounts:api-token-revoke", args=[token.pk]))
    assert api.get("/api/v1/me").status_code == 401


def test_csrf_is_enforced_on_pages(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.owner.user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(reverse("accounts:creator-create"), VALID_CREATOR)
    assert response.status_code == 403
    assert not Creator.objects.filter(display_name="Ivy Lane").exists()


def test_unknown_host_is_refused(db):
    assert Client(HTTP_HOST="evil.example.com").get(reverse("accounts:login")).status_code == 400


@pytest.mark.parametrize("count", [3, 12])
def test_settings_pages_have_constant_query_counts(world, client_for, django_assert_max_num_queries, count):
    for _ in range(count):
        extra = MembershipFactory(agency=world.agency, role="chatter")
        CreatorFactory(agency=world.agency)
        extra.assignments.create(agency=world.agency, creator=world.creator)
    client = client_for(world.owner)
    for name in (
        "accounts:creator-list",
        "accounts:member-list",
        "accounts:api-token-list",
        "accounts:agency-settings",
    ):
        with django_assert_max_num_queries(12):
            assert client.get(reverse(name)).status_code == 200


def test_pending_invitations_say_whether_the_email_went_out(world, client_for):
    from django.utils import timezone

    Invitation.objects.create(agency=world.agency, email="waiting@example.com", role="chatter")
    Invitation.objects.create(
        agency=world.agency, email="sent@example.com", role="viewer", email_sent_at=timezone.now()
    )
    page = client_for(world.owner).get(reverse("accounts:member-list")).content.decode()
    assert re.search(r"waiting@example.com · Chatter · <span[^>]*>email queued</span>", page)
    assert "sent@example.com · Viewer · sent 0\xa0minutes ago" in page
