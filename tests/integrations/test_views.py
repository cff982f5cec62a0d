"""The integrations pages: overview, a creator's platforms, third-party API accounts, disconnect,
history; roles, outsiders, query counts, the admin and the demo."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.core.registry import DemoContext
from apps.integrations.models import Connection, ConnectionEvent
from tests.accounts.factories import CreatorFactory, UserFactory

pytestmark = pytest.mark.django_db

API_FORM = {
    "platform": "fansly",
    "fansly-api_base_url": "https://api.example-of-api.com/v1/",
    "fansly-api_key": "fansly-key-secret-123",
    "fansly-api_account_id": "acct-77",
}


def _oauth_connection(world, creator=None, platform="tiktok", **fields) -> Connection:
    return Connection.objects.create(
        agency=world.agency, creator=creator or world.creator, platform=platform, status="connected",
        access_token="access-secret-abc", refresh_token="refresh-secret-def", **fields,
    )  # fmt: skip


def test_overview_lists_creators_with_status_badges_in_constant_queries(
    world, client_for, django_assert_max_num_queries
):
    _oauth_connection(world, last_error="")
    client = client_for(world.owner)
    client.get("/integrations/")  # warm the session and plan lookups
    with CaptureQueriesContext(connection) as few:
        page = client.get("/integrations/").content.decode()
    baseline = len(few)  # read now: the next request clears the connection's query log
    assert baseline <= 12
    assert "Velvet Star" in page and "TikTok" in page and "Connected" in page and "Nothing connected yet" in page
    for index in range(12):
        creator = CreatorFactory(agency=world.agency, display_name=f"Extra {index}")
        _oauth_connection(world, creator=creator, platform="reddit")
    client.get("/integrations/")  # billing re-reads the plan once after creators change
    with django_assert_max_num_queries(baseline):
        assert client.get("/integrations/").status_code == 200


def test_chatter_sees_only_assigned_creators(world, client_for):
    client = client_for(world.chatter)
    page = client.get("/integrations/").content.decode()
    assert "Velvet Star" in page and "Velvet Nova" not in page
    assert client.get(f"/integrations/creators/{world.other_creator.pk}/").status_code == 404
    page = client.get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    assert "only owners and managers" in page and "Save OnlyFans account" not in page


def test_empty_state_without_creators(client_for, db):
    from tests.accounts.factories import MembershipFactory

    membership = MembershipFactory(role="owner")
    assert "No creators yet" in client_for(membership).get("/integrations/").content.decode()


def test_creator_page_shows_every_platform_and_unconfigured_ones(world, client_for, settings):
    settings.INTEGRATIONS_OAUTH = {
        name: {**config, "client_id": "", "client_secret": ""} for name, config in settings.INTEGRATIONS_OAUTH.items()
    }
    page = client_for(world.owner).get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    for label in ("TikTok", "Instagram", "Reddit", "OnlyFans", "Fansly"):
        assert label in page
    assert page.count("Not configured by the operator") == 3
    assert "Save OnlyFans account" in page and "Save Fansly account" in page


def test_api_account_is_saved_encrypted_and_the_secret_shown_once(world, client_for):
    client = client_for(world.manager)
    response = client.post(f"/integrations/creators/{world.creator.pk}/api/", API_FORM)
    assert response.status_code == 200
    connection = Connection.objects.get(platform="fansly")
    page = response.content.decode()
    assert connection.webhook_secret in page and str(connection.public_id) in page
    assert (
        connection.api_key == "fansly-key-secret-123" and connection.api_base_url == "https://api.example-of-api.com/v1"
    )
    assert connection.status == "connected" and connection.api_account_id == "acct-77"
    later = client.get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    later += client.get(f"/integrations/connections/{connection.pk}/").content.decode()
    assert connection.webhook_secret not in later and "fansly-key-secret-123" not in later
    assert "acct-77" in later


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("fansly-api_base_url", "http://plain.example.com", "https://"),
        ("fansly-api_base_url", "not a url", "valid URL"),
        ("fansly-api_key", "", "required"),
    ],
)
def test_api_form_errors_are_shown_and_nothing_saved(world, client_for, field, value, message):
    response = client_for(world.owner).post(
        f"/integrations/creators/{world.creator.pk}/api/", {**API_FORM, field: value}
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not Connection.objects.exists()


def test_api_form_with_a_bogus_platform_saves_nothing(world, client_for):
    response = client_for(world.owner).post(
        f"/integrations/creators/{world.creator.pk}/api/", {**API_FORM, "platform": "tiktok"}, follow=True
    )
    assert response.status_code == 200 and "Choose OnlyFans or Fansly" in response.content.decode()
    assert not Connection.objects.exists()


def test_unverified_member_cannot_store_an_api_key(world, client_for):
    world.owner.user.email_verified_at = None
    world.owner.user.save()
    response = client_for(world.owner).post(f"/integrations/creators/{world.creator.pk}/api/", API_FORM)
    assert response.status_code == 400 and "Confirm your email" in response.content.decode()
    assert not Connection.objects.exists()


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_roles_without_edit_cannot_change_connections(world, client_for, role):
    connection = _oauth_connection(world)
    client = client_for(world.member(role))
    assert client.post(f"/integrations/creators/{world.creator.pk}/api/", API_FORM).status_code == 403
    assert client.get(f"/integrations/connections/{connection.pk}/disconnect/").status_code == 403
    assert client.post(f"/integrations/connections/{connection.pk}/disconnect/").status_code == 403
    assert Connection.objects.get().status == "connected"


def test_disconnect_asks_then_wipes_the_tokens(world, client_for):
    connection = _oauth_connection(world)
    client = client_for(world.owner)
    confirm = client.get(f"/integrations/connections/{connection.pk}/disconnect/")
    assert confirm.status_code == 200 and "Disconnect" in confirm.content.decode()
    assert Connection.objects.get().status == "connected"
    response = client.post(f"/integrations/connections/{connection.pk}/disconnect/")
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.status == "disconnected"
    assert (connection.access_token, connection.refresh_token, connection.api_key, connection.webhook_secret) == (
        "",
    ) * 4
    event = ConnectionEvent.objects.get(kind="disconnected")
    history = client.get(f"/integrations/connections/{connection.pk}/").content.decode()
    assert "Disconnected" in history and world.owner.user.email in history and event.detail in history


def test_another_agency_gets_404_everywhere(world, other_world, client_for):
    connection = _oauth_connection(world)
    client = client_for(other_world.owner)
    for url in (
        f"/integrations/creators/{world.creator.pk}/",
        f"/integrations/connections/{connection.pk}/",
        f"/integrations/connections/{connection.pk}/disconnect/",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post(url).status_code in (404, 405), url
    assert client.post(f"/integrations/creators/{world.creator.pk}/api/", API_FORM).status_code == 404
    assert "Velvet" not in client.get("/integrations/").content.decode()
    assert Connection.objects.get().status == "connected"


def test_admin_never_shows_secrets(world):
    connection = _oauth_connection(world, api_key="api-key-secret-xyz", webhook_secret="whsec_admin_secret")
    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    for url in (
        reverse("admin:integrations_connection_changelist"),
        reverse("admin:integrations_connection_change", args=[connection.pk]),
    ):
        page = client.get(url).content.decode()
        for secret in ("access-secret-abc", "refresh-secret-def", "api-key-secret-xyz", "whsec_admin_secret"):
            assert secret not in page, (url, secret)
    assert admin.site._registry[Connection].search_fields
    assert client.get(reverse("admin:integrations_connection_changelist"), {"q": "Velvet"}).status_code == 200


def test_demo_seeds_a_labelled_simulated_onlyfans_connection(world, client_for):
    import random

    from apps.integrations import demo

    demo.seed(DemoContext(options={}, log=lambda _: None, rng=random.Random(1), agency=world.agency,
                          creators=[world.creator]))  # fmt: skip
    connection = Connection.objects.get(platform="onlyfans")
    assert connection.is_simulated and connection.status == "connected"
    assert all(Connection.objects.values_list("is_simulated", flat=True))  # publishing's demo ones too
    page = client_for(world.owner).get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    assert "Simulated (demo)" in page


def test_nav_links_to_integrations(world, client_for):
    assert 'href="/integrations/"' in client_for(world.viewer).get("/integrations/").content.decode()


def test_creator_page_runs_a_constant_number_of_queries(world, client_for, django_assert_max_num_queries):
    client = client_for(world.owner)
    url = f"/integrations/creators/{world.creator.pk}/"
    client.get(url)
    with CaptureQueriesContext(connection) as empty:
        client.get(url)
    baseline = len(empty)
    for platform in ("tiktok", "instagram", "reddit", "onlyfans", "fansly"):
        _oauth_connection(world, platform=platform)
    with django_assert_max_num_queries(baseline):
        page = client.get(url).content.decode()
    assert page.count("History") == 5
