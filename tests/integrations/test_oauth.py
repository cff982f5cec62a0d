"""Connecting a creator's platform with OAuth 2.0 + PKCE, through the loopback provider fakes."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from apps.integrations.models import Connection, ConnectionEvent, ConnectionStatus
from apps.integrations.services import SESSION_OAUTH
from tests.integrations.helpers import (
    callback_path,
    connect_through_provider,
    follow_provider,
    raw_column,
    start_connect,
)

pytestmark = pytest.mark.django_db


def test_tiktok_connect_stores_encrypted_tokens_and_scopes(world, client_for, platforms):
    client = client_for(world.owner)
    authorize = start_connect(client, world.creator, "tiktok")
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_key"] == ["tiktok-client-key"] and "client_id" not in query
    assert query["code_challenge_method"] == ["S256"] and query["state"]
    assert query["scope"] == ["user.info.basic,video.upload,video.publish"]

    response = client.get(callback_path(follow_provider(authorize)))
    assert response.status_code == 302 and response["Location"] == f"/integrations/creators/{world.creator.pk}/"
    connection = Connection.objects.get(creator=world.creator, platform="tiktok")
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.scopes == ["user.info.basic", "video.upload", "video.publish"]
    assert connection.access_token.startswith("act.") and connection.refresh_token.startswith("rft.")
    assert connection.external_account_id == "open-id-123"
    assert connection.access_expires_at and connection.refresh_expires_at > connection.access_expires_at
    # At rest the tokens are Fernet ciphertext, never the token itself.
    stored = raw_column("integrations_connection", "access_token", connection.pk)
    assert connection.access_token not in stored and stored.startswith("gAAAA")
    exchange = platforms.state.token_requests[-1]
    assert exchange["grant_type"] == "authorization_code" and exchange["client_key"] == "tiktok-client-key"
    assert exchange["code_verifier"] and exchange["redirect_uri"] == "http://testserver/integrations/oauth/callback/"
    assert ConnectionEvent.objects.filter(connection=connection, kind="connected", actor=world.owner.user).exists()
    page = client.get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    assert "Connected" in page and "video.publish" in page
    assert connection.access_token not in page and connection.refresh_token not in page


def test_a_real_sign_in_replaces_the_demos_simulated_account(world, client_for, platforms):
    # The demo seeds simulated connections; a member who then signs in for real publishes for real.
    Connection.objects.create(agency=world.agency, creator=world.creator, platform="tiktok",
                              status=ConnectionStatus.CONNECTED, is_simulated=True)  # fmt: skip
    assert connect_through_provider(client_for(world.owner), world.creator, "tiktok").status_code == 302
    connection = Connection.objects.get(creator=world.creator, platform="tiktok")
    assert not connection.is_simulated and connection.access_token and connection.status == "connected"


def test_reddit_uses_basic_auth_and_permanent_duration(world, client_for, platforms):
    client = client_for(world.manager)
    authorize = start_connect(client, world.creator, "reddit")
    assert parse_qs(urlsplit(authorize).query)["duration"] == ["permanent"]
    assert client.get(callback_path(follow_provider(authorize))).status_code == 302
    assert platforms.state.token_requests[-1]["headers"]["Authorization"].startswith("Basic ")
    connection = Connection.objects.get(creator=world.creator, platform="reddit")
    assert connection.status == "connected" and connection.scopes == ["identity", "submit"]


@pytest.fixture(scope="module")
def instagram_graph_server():
    from tests.fakes.instagram_tokens import FakeInstagramGraph

    server = FakeInstagramGraph().start()
    yield server
    server.stop()


@pytest.fixture
def instagram_graph(instagram_graph_server, settings):
    """Instagram's Graph host (the long-lived token exchange) on loopback."""
    instagram_graph_server.reset()
    settings.INSTAGRAM_GRAPH_URL = instagram_graph_server.base_url
    yield instagram_graph_server


def test_instagram_sign_in_stores_the_long_lived_token(world, client_for, platforms, instagram_graph):
    client = client_for(world.owner)
    assert connect_through_provider(client, world.creator, "instagram").status_code == 302
    connection = Connection.objects.get(creator=world.creator, platform="instagram")
    assert connection.status == ConnectionStatus.CONNECTED
    assert connection.external_account_id == "17841400000000"
    assert connection.scopes == ["instagram_business_basic", "instagram_business_content_publish"]
    # The 1-hour token of the sign-in was exchanged on the Graph host; the long-lived one is stored.
    [exchange] = instagram_graph.state.requests
    assert exchange["path"] == "/access_token" and exchange["grant_type"] == "ig_exchange_token"
    assert exchange["client_secret"] == "instagram-app-secret" and exchange["access_token"].startswith("act.")
    assert connection.access_token.startswith("IGAA") and connection.access_token != exchange["access_token"]
    assert connection.refresh_token == ""
    # 60 days (expires_in 5184000), not the hour of the short-lived token.
    remaining = connection.access_expires_at - timezone.now()
    assert timedelta(days=59, hours=23) < remaining <= timedelta(days=60)
    stored = raw_column("integrations_connection", "access_token", connection.pk)
    assert connection.access_token not in stored and stored.startswith("gAAAA")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("revoke", "Instagram refused to exchange the sign-in for a long-lived token (invalid_grant)"),
        ("outage", "Instagram could not be reached to finish the sign-in"),
        ("wrong_secret", "Instagram refused to exchange the sign-in for a long-lived token (invalid_request)"),
    ],
)
def test_failed_instagram_exchange_is_an_error_page_and_saves_nothing(
    world, client_for, platforms, instagram_graph, caplog, fault, message
):
    if fault == "revoke":
        instagram_graph.revoke()
    elif fault == "outage":
        instagram_graph.fail_with(503, times=1)
    else:  # the app secret was reset on Meta's side but not in Huntaze's settings
        instagram_graph.state.client_secret = "the-new-app-secret"
    client = client_for(world.owner)
    callback = follow_provider(start_connect(client, world.creator, "instagram"))
    with caplog.at_level("DEBUG"):
        response = client.get(callback_path(callback))
    page = response.content.decode()
    assert response.status_code == 400 and message in page and "Nothing was saved" in page
    assert not Connection.objects.exists()
    [exchange] = instagram_graph.state.requests
    for secret in (exchange["client_secret"], exchange["access_token"]):
        assert secret not in page and secret not in caplog.text


def test_failed_instagram_exchange_on_reconnect_keeps_needs_reconnect(world, client_for, platforms, instagram_graph):
    client = client_for(world.owner)
    connect_through_provider(client, world.creator, "instagram")
    connection = Connection.objects.get()
    Connection.objects.filter(pk=connection.pk).update(status="needs_reconnect", last_error="refused")
    instagram_graph.fail_with(500, times=1)
    response = connect_through_provider(client, world.creator, "instagram")
    assert response.status_code == 400 and "could not be reached" in response.content.decode()
    after = Connection.objects.get()
    assert after.status == "needs_reconnect" and after.access_token == connection.access_token
    page = client.get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    assert "Needs reconnect" in page


def test_expired_state_is_a_clear_error_and_stores_nothing(world, client_for, platforms):
    client = client_for(world.owner)
    callback = follow_provider(start_connect(client, world.creator, "tiktok"))
    session = client.session
    for pending in session[SESSION_OAUTH].values():
        pending["expires"] = time.time() - 1
    session.save()
    response = client.get(callback_path(callback))
    assert response.status_code == 400
    assert "expired" in response.content.decode() and "Nothing was saved" in response.content.decode()
    assert not Connection.objects.exists()


def test_unknown_or_reused_state_is_refused(world, client_for, platforms):
    client = client_for(world.owner)
    callback = follow_provider(start_connect(client, world.creator, "tiktok"))
    forged = callback.replace("state=", "state=forged")
    assert client.get(callback_path(forged)).status_code == 400
    assert client.get(callback_path(callback)).status_code == 302
    assert client.get(callback_path(callback)).status_code == 400  # a state is good once
    assert Connection.objects.count() == 1


def test_mismatched_pkce_verifier_is_refused(world, client_for, platforms):
    client = client_for(world.owner)
    callback = follow_provider(start_connect(client, world.creator, "tiktok"))
    session = client.session
    for pending in session[SESSION_OAUTH].values():
        pending["verifier"] = "x" * 64
    session.save()
    response = client.get(callback_path(callback))
    assert response.status_code == 400 and "invalid_grant" in response.content.decode()
    assert not Connection.objects.exists()


def test_access_denied_is_a_friendly_message(world, client_for, platforms):
    client = client_for(world.owner)
    platforms.state.deny_next = True
    response = connect_through_provider(client, world.creator, "tiktok")
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "was not connected" in page
    assert not Connection.objects.exists()


def test_provider_outage_during_exchange_is_an_error_page(world, client_for, platforms):
    client = client_for(world.owner)
    callback = follow_provider(start_connect(client, world.creator, "tiktok"))
    platforms.state.fail_token_with = 503
    response = client.get(callback_path(callback))
    assert response.status_code == 400 and "could not be reached" in response.content.decode()
    assert not Connection.objects.exists()


def test_unconfigured_platform_says_so(world, client_for, platforms, settings):
    settings.INTEGRATIONS_OAUTH = {
        **settings.INTEGRATIONS_OAUTH,
        "reddit": {**settings.INTEGRATIONS_OAUTH["reddit"], "client_id": ""},
    }
    client = client_for(world.owner)
    page = client.get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    assert "Not configured by the operator" in page
    response = client.post(f"/integrations/creators/{world.creator.pk}/connect/", {"platform": "reddit"}, follow=True)
    assert "not configured by the operator" in response.content.decode()
    assert not platforms.state.authorize_requests


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_only_owners_and_managers_connect(world, client_for, platforms, role):
    client = client_for(world.member(role))
    response = client.post(f"/integrations/creators/{world.creator.pk}/connect/", {"platform": "tiktok"})
    assert response.status_code == 403
    assert SESSION_OAUTH not in client.session


def test_outsider_cannot_start_a_connect_for_another_agency(world, other_world, client_for, platforms):
    client = client_for(other_world.owner)
    response = client.post(f"/integrations/creators/{world.creator.pk}/connect/", {"platform": "tiktok"})
    assert response.status_code == 404


def test_callback_in_another_agency_session_is_refused(world, other_world, client_for, platforms):
    client = client_for(world.owner)
    callback = follow_provider(start_connect(client, world.creator, "tiktok"))
    # The same browser, now logged in as someone of another agency, cannot complete it.
    pending = client.session[SESSION_OAUTH]
    intruder = client_for(other_world.owner)
    session = intruder.session
    session[SESSION_OAUTH] = pending
    session.save()
    assert intruder.get(callback_path(callback)).status_code == 400
    assert not Connection.objects.exists()


def test_reconnect_replaces_tokens_and_clears_needs_reconnect(world, client_for, platforms):
    client = client_for(world.owner)
    connect_through_provider(client, world.creator, "tiktok")
    connection = Connection.objects.get()
    Connection.objects.filter(pk=connection.pk).update(status="needs_reconnect", last_error="refused")
    old_token = connection.access_token
    assert connect_through_provider(client, world.creator, "tiktok").status_code == 302
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.last_error == "" and connection.access_token != old_token
    assert Connection.objects.count() == 1
