"""Active sessions: recorded at login and at most every few minutes, listed on Settings →
Sessions with the current one marked, and ended one at a time, everywhere else or everywhere."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.accounts import sessions
from apps.accounts.models import UserSession
from tests.accounts.factories import PASSWORD, UserFactory

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def browser_login(user, agent: str = FIREFOX, address: str = "203.0.113.7") -> Client:
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    response = client.post(reverse("accounts:login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def logged_in(client: Client) -> bool:
    return client.get(reverse("accounts:session-list")).status_code == 200


def test_login_records_the_session_with_address_and_browser(world):
    client = browser_login(world.owner.user)
    row = UserSession.objects.get(user=world.owner.user)
    assert row.session_key == client.session.session_key
    assert (str(row.ip_address), row.user_agent) == ("203.0.113.7", FIREFOX)
    assert sessions.user_agent_label(row.user_agent) == "Firefox on Linux"


def test_activity_is_written_at_most_every_few_minutes(world):
    client = browser_login(world.owner.user)
    row = UserSession.objects.get(user=world.owner.user)
    first_seen = row.last_seen_at
    client.get(reverse("accounts:session-list"))
    row.refresh_from_db()
    assert row.last_seen_at == first_seen
    later = timezone.now() + sessions.TOUCH_INTERVAL + timedelta(seconds=1)
    with mock.patch("apps.accounts.sessions.timezone.now", return_value=later):
        client.get(reverse("accounts:session-list"))
    row.refresh_from_db()
    assert row.last_seen_at == later


def test_the_page_lists_only_the_users_live_sessions_and_marks_this_one(world, django_assert_max_num_queries):
    user = world.owner.user
    here = browser_login(user)
    browser_login(user, agent=SAFARI, address="198.51.100.4")
    browser_login(world.manager.user, agent=SAFARI, address="192.0.2.99")
    gone = browser_login(user)
    gone.post(reverse("accounts:logout"))
    with django_assert_max_num_queries(12):
        response = here.get(reverse("accounts:session-list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('action="/settings/sessions/') == 2 + 1  # two rows, plus the "everywhere" form
    assert "Firefox on Linux</span> <strong>(this browser)</strong>" in html
    assert "Safari on iOS" in html and "198.51.100.4" in html
    assert "192.0.2.99" not in html  # the manager's session


def test_ending_another_session_logs_that_browser_out(world):
    user = world.owner.user
    here, phone = browser_login(user), browser_login(user, agent=SAFARI)
    row = UserSession.objects.get(session_key=phone.session.session_key)
    response = here.post(reverse("accounts:session-end", args=[row.pk]))
    assert response.status_code == 302
    assert not logged_in(phone)
    assert logged_in(here)
    assert not UserSession.objects.filter(pk=row.pk).exists()


def test_another_users_session_is_404_and_untouched(world):
    victim = browser_login(world.manager.user)
    row = UserSession.objects.get(user=world.manager.user)
    intruder = browser_login(world.owner.user)
    assert intruder.post(reverse("accounts:session-end", args=[row.pk])).status_code == 404
    assert intruder.post(reverse("accounts:session-end", args=[999_999])).status_code == 404
    assert logged_in(victim)


def test_log_out_everywhere_else_keeps_this_browser(world):
    user = world.owner.user
    here, others = browser_login(user), [browser_login(user, agent=SAFARI) for _ in range(2)]
    bystander = browser_login(world.manager.user)
    response = here.post(reverse("accounts:session-end-all"), {"scope": "others"}, follow=True)
    assert "Logged out of 2 other sessions." in response.content.decode()
    assert logged_in(here) and logged_in(bystander)
    assert not any(logged_in(client) for client in others)


def test_log_out_everywhere_includes_this_browser(world):
    user = world.owner.user
    here, phone = browser_login(user), browser_login(user, agent=SAFARI)
    response = here.post(reverse("accounts:session-end-all"), {"scope": "all"})
    assert response["Location"] == reverse("accounts:login")
    assert not logged_in(here) and not logged_in(phone)
    assert not UserSession.objects.filter(user=user).exists()


def test_ending_this_session_from_the_list_logs_out(world):
    here = browser_login(world.owner.user)
    row = UserSession.objects.get(session_key=here.session.session_key)
    assert here.post(reverse("accounts:session-end", args=[row.pk]))["Location"] == reverse("accounts:login")
    assert not logged_in(here)


def test_a_password_change_keeps_this_browser_listed(world):
    user = world.owner.user
    here = browser_login(user)
    here.post(
        reverse("accounts:password-change"),
        {"old_password": PASSWORD, "new_password1": "another-long-secret-7", "new_password2": "another-long-secret-7"},
    )
    live = sessions.user_session_list(user=user)
    assert [row.session_key for row in live] == [here.session.session_key]


def test_a_user_without_an_agency_can_see_their_sessions(db):
    user = UserFactory()
    client = browser_login(user)
    assert client.get(reverse("accounts:session-list")).status_code == 200


@pytest.mark.parametrize("method", ["get", "put"])
def test_ending_needs_post(world, method):
    client = browser_login(world.owner.user)
    assert getattr(client, method)(reverse("accounts:session-end-all")).status_code == 405
