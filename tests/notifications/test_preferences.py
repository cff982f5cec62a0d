"""Notification preferences per kind: defaults, the service honouring them, the page and the API."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.accounts.models import AccountEvent
from apps.notifications.models import Notification, NotificationPreference
from apps.notifications.preferences import Channels, channels_for, kind_for_url, preferences_set
from apps.notifications.services import notification_send

PAGE = reverse("notifications:preferences")


def test_defaults_are_in_app_for_everything_and_email_for_what_needs_action(world):
    user_id = world.owner.user_id
    assert channels_for(user_id=user_id, kind="campaigns") == Channels(in_app=True, email=True)
    assert channels_for(user_id=user_id, kind="alerts") == Channels(in_app=True, email=True)
    assert channels_for(user_id=user_id, kind="team") == Channels(in_app=True, email=False)
    assert channels_for(user_id=user_id, kind="general") == Channels(in_app=True, email=False)


def test_callers_without_a_kind_are_classed_by_their_link():
    assert kind_for_url("/campaigns/12/") == "campaigns"
    assert kind_for_url("/monitoring/alerts/3/") == "alerts"
    assert kind_for_url("/optimization/anomalies/") == "insights"
    assert kind_for_url("https://elsewhere.example/campaigns/") == "general"
    assert kind_for_url("") == "general"


def test_in_app_off_stores_no_notification(world):
    preferences_set(user=world.owner.user, choices={"insights": Channels(in_app=False, email=False)})
    assert notification_send(membership=world.owner, title="Odd numbers", url="/optimization/anomalies/") is None
    assert not Notification.objects.filter(user=world.owner.user).exists()
    # Another kind, and another member, are not affected.
    assert notification_send(membership=world.owner, title="Joined", kind="team") is not None
    assert notification_send(membership=world.manager, title="Odd numbers", url="/optimization/anomalies/")
    assert Notification.objects.filter(user=world.owner.user).get().kind == "team"


def test_email_follows_the_preference(world, mailoutbox, eager_celery, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(membership=world.owner, title="Approve “Summer”?", body="<b>hi</b>", url="/campaigns/1/")
        notification_send(membership=world.owner, title="Someone joined", kind="team")
    assert [message.subject for message in mailoutbox] == [f"[{world.agency.name}] Approve “Summer”?"]
    assert mailoutbox[0].to == [world.owner.user.email]
    assert "<b>hi</b>" in mailoutbox[0].body and "/campaigns/1/" in mailoutbox[0].body  # plain text, as written

    mailoutbox.clear()
    preferences_set(
        user=world.owner.user,
        choices={"campaigns": Channels(in_app=True, email=False), "team": Channels(in_app=False, email=True)},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert notification_send(membership=world.owner, title="Campaign done", url="/campaigns/1/") is not None
        assert notification_send(membership=world.owner, title="Someone else joined", kind="team") is None
    assert [message.subject for message in mailoutbox] == [f"[{world.agency.name}] Someone else joined"]


def test_a_newline_in_the_agency_name_or_title_still_sends_the_email(
    world, mailoutbox, eager_celery, django_capture_on_commit_callbacks
):
    # A header cannot span lines: Django refused the subject (BadHeaderError) and the email was lost.
    world.agency.name = "Acme\nStudio"
    world.agency.save(update_fields=["name"])
    with django_capture_on_commit_callbacks(execute=True):
        notification_send(membership=world.owner, title="Friday\r\ndrop is done", url="/campaigns/1/")
    assert [message.subject for message in mailoutbox] == ["[Acme Studio] Friday drop is done"]


def test_an_unknown_kind_is_a_programming_error(world):
    with pytest.raises(ValueError):
        notification_send(membership=world.owner, title="x", kind="nonsense")


def test_preferences_page_shows_a_row_per_kind_and_saves(world, client_for, django_assert_max_num_queries):
    client = client_for(world.chatter)
    with django_assert_max_num_queries(10):
        page = client.get(PAGE)
    text = page.content.decode()
    assert page.status_code == 200
    assert "Failed deliveries" in text and "Service alerts" in text and text.count('type="checkbox"') == 12
    # Everything unticked but campaigns by email.
    response = client.post(PAGE, {"campaigns_email": "on"})
    assert response.status_code == 302
    user_id = world.chatter.user_id
    assert channels_for(user_id=user_id, kind="campaigns") == Channels(in_app=False, email=True)
    assert channels_for(user_id=user_id, kind="team") == Channels(in_app=False, email=False)
    event = AccountEvent.objects.get(user_id=user_id, kind=AccountEvent.Kind.PREFERENCES_UPDATED)
    assert "campaigns" in event.detail["kinds"]
    # Saving the same again records nothing new.
    client.post(PAGE, {"campaigns_email": "on"})
    assert AccountEvent.objects.filter(user_id=user_id, kind=AccountEvent.Kind.PREFERENCES_UPDATED).count() == 1


def test_preferences_are_per_user(world, other_world, client_for):
    client_for(world.owner).post(PAGE, {})
    assert NotificationPreference.objects.filter(user=world.owner.user).count() == 6
    assert not NotificationPreference.objects.filter(user=other_world.owner.user).exists()
    page = client_for(other_world.owner).get(PAGE).content.decode()
    assert page.count("checked") == 6 + 3  # every in-app box and the three email-by-default kinds


def test_preferences_api(world):
    from django.test import Client

    client = Client()  # the session (no agency chosen: preferences are the user's own)
    client.force_login(world.viewer.user, backend="django.contrib.auth.backends.ModelBackend")
    url = "/api/v1/me/notification-preferences"
    listed = client.get(url).json()
    assert [row["kind"] for row in listed][:2] == ["campaigns", "deliveries"]
    response = client.patch(
        url, {"preferences": [{"kind": "alerts", "in_app": False, "email": False}]}, content_type="application/json"
    )
    assert response.status_code == 200
    assert {row["kind"]: row["in_app"] for row in response.json()}["alerts"] is False
    bad = client.patch(
        url, {"preferences": [{"kind": "nonsense", "in_app": True, "email": True}]}, content_type="application/json"
    )
    assert bad.status_code == 422
    assert "kind" in bad.content.decode()
    assert channels_for(user_id=world.viewer.user_id, kind="alerts") == Channels(in_app=False, email=False)
