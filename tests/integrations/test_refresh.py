"""Token refresh: the beat sweep, rotating refresh tokens, revoked grants and outages."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.integrations import services, tasks
from apps.integrations.models import Connection, ConnectionEvent
from apps.notifications.models import Notification
from tests.integrations.helpers import connect_through_provider

pytestmark = pytest.mark.django_db


def _connected(world, client_for, platform="tiktok") -> Connection:
    assert connect_through_provider(client_for(world.owner), world.creator, platform).status_code == 302
    connection = Connection.objects.get(platform=platform)
    Connection.objects.filter(pk=connection.pk).update(access_expires_at=timezone.now() + timedelta(minutes=5))
    connection.refresh_from_db()
    return connection


def test_tiktok_refresh_rotates_and_keeps_the_newest_refresh_token(world, client_for, platforms):
    connection = _connected(world, client_for)
    first_refresh = connection.refresh_token
    assert services.connection_refresh(connection_id=connection.pk) == "refreshed"
    connection.refresh_from_db()
    assert connection.refresh_token != first_refresh and connection.status == "connected"
    assert connection.access_expires_at > timezone.now() + timedelta(hours=23)
    request = platforms.state.token_requests[-1]
    assert request["grant_type"] == "refresh_token" and request["client_key"] == "tiktok-client-key"
    assert request["refresh_token"] == first_refresh
    # The old refresh token died at the provider; the stored (newest) one still works.
    Connection.objects.filter(pk=connection.pk).update(access_expires_at=timezone.now())
    assert services.connection_refresh(connection_id=connection.pk) == "refreshed"
    assert ConnectionEvent.objects.filter(connection=connection, kind="refreshed").count() == 2


def test_reddit_refresh_keeps_its_long_lived_refresh_token(world, client_for, platforms):
    connection = _connected(world, client_for, "reddit")
    assert services.connection_refresh(connection_id=connection.pk) == "refreshed"
    refreshed = Connection.objects.get(pk=connection.pk)
    assert refreshed.refresh_token == connection.refresh_token and refreshed.access_token != connection.access_token


def test_revoked_grant_marks_needs_reconnect_and_tells_the_owners(world, client_for, platforms):
    connection = _connected(world, client_for)
    platforms.revoke("tiktok")
    assert services.connection_refresh(connection_id=connection.pk) == "needs_reconnect"
    connection.refresh_from_db()
    assert connection.status == "needs_reconnect" and "invalid_grant" in connection.last_error
    notes = Notification.objects.filter(agency=world.agency)
    assert list(notes.values_list("user_id", flat=True)) == [world.owner.user_id]
    assert "Reconnect" in notes.get().title and notes.get().url == f"/integrations/creators/{world.creator.pk}/"
    # A second sweep neither refreshes nor notifies again.
    assert services.connection_refresh(connection_id=connection.pk) == "skipped"
    assert notes.count() == 1
    page = client_for(world.owner).get(f"/integrations/creators/{world.creator.pk}/").content.decode()
    assert "Needs reconnect" in page and "Reconnect" in page


@pytest.mark.parametrize("status", [503, 429])
def test_transient_failure_leaves_the_status_alone(world, client_for, platforms, status):
    connection = _connected(world, client_for)
    platforms.state.fail_token_with = status
    assert services.connection_refresh(connection_id=connection.pk) == "retry"
    connection.refresh_from_db()
    assert connection.status == "connected" and "temporarily" in connection.last_error
    assert not Notification.objects.exists()
    assert services.connection_refresh(connection_id=connection.pk) == "refreshed"  # the next run succeeds
    connection.refresh_from_db()
    assert connection.last_error == ""


def test_sweep_refreshes_only_tokens_expiring_within_the_window(world, client_for, platforms, eager_celery):
    due = _connected(world, client_for)
    later = Connection.objects.create(
        agency=world.agency, creator=world.other_creator, platform="tiktok", status="connected",
        access_token="a", refresh_token="r-later", access_expires_at=timezone.now() + timedelta(days=2),
    )  # fmt: skip
    Connection.objects.create(
        agency=world.agency, creator=world.other_creator, platform="reddit", status="needs_reconnect",
        access_token="a", refresh_token="r-broken", access_expires_at=timezone.now(),
    )  # fmt: skip
    assert services.connections_due_for_refresh() == [due.pk]
    before = Connection.objects.get(pk=due.pk).access_token
    assert tasks.refresh_expiring_tokens() == 1
    assert Connection.objects.get(pk=due.pk).access_token != before
    assert Connection.objects.get(pk=later.pk).refresh_token == "r-later"


def test_two_refreshes_at_once_refresh_once_and_leave_the_connection_connected(
    transactional_db, world, client_for, platforms
):
    # The sweep can queue a connection again while an earlier task for it waits. TikTok rotates
    # refresh tokens: without one refresh at a time, the second would spend the dead token, be
    # refused, and mark a healthy connection "needs reconnect".
    connection = _connected(world, client_for)
    platforms.state.refresh_delay = 0.5
    with ThreadPoolExecutor(2) as pool:
        answers = sorted(pool.map(lambda _: _refresh_in_thread(connection.pk), range(2)))
    assert answers == ["refreshed", "skipped"]
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.last_error == ""
    assert [r["grant_type"] for r in platforms.state.token_requests].count("refresh_token") == 1
    platforms.state.refresh_delay = 0
    Connection.objects.filter(pk=connection.pk).update(access_expires_at=timezone.now())
    assert services.connection_refresh(connection_id=connection.pk) == "refreshed"  # the lease was let go


def test_a_refusal_of_credentials_replaced_meanwhile_changes_nothing(transactional_db, world, client_for, platforms):
    # The refresh is on its way with the old refresh token when an owner reconnects: the provider
    # refuses the old token, and the connection keeps the new credentials, connected.
    connection = _connected(world, client_for)
    platforms.revoke("tiktok")
    platforms.state.refresh_delay = 1.0
    with ThreadPoolExecutor(1) as pool:
        refreshing = pool.submit(_refresh_in_thread, connection.pk)
        time.sleep(0.3)
        assert connect_through_provider(client_for(world.owner), world.creator, "tiktok").status_code == 302
        assert refreshing.result(timeout=10) == "skipped"
    connection.refresh_from_db()
    assert connection.status == "connected" and "refused" not in connection.last_error
    assert not Notification.objects.filter(agency=world.agency, title__startswith="Reconnect").exists()


def _refresh_in_thread(connection_id: int) -> str:
    from django.db import connection as db

    try:
        return services.connection_refresh(connection_id=connection_id)
    finally:
        db.close()


def test_disconnected_meanwhile_is_skipped(world, client_for, platforms):
    connection = _connected(world, client_for)
    services.connection_disconnect(membership=world.owner, connection=connection)
    assert services.connection_refresh(connection_id=connection.pk) == "skipped"


# --- Instagram long-lived tokens, and the "broken" status ------------------------------------------


@pytest.fixture(scope="module")
def instagram_graph_server():
    from tests.fakes.instagram_tokens import FakeInstagramGraph

    server = FakeInstagramGraph().start()
    yield server
    server.stop()


@pytest.fixture
def instagram_graph(instagram_graph_server, settings):
    instagram_graph_server.reset()
    settings.INSTAGRAM_GRAPH_URL = instagram_graph_server.base_url
    yield instagram_graph_server


def test_instagram_long_lived_token_is_refreshed_on_the_graph_host(
    world, client_for, platforms, instagram_graph, eager_celery
):
    connection = _connected(world, client_for, "instagram")
    assert connection.refresh_token == ""  # Instagram's business login gives no refresh token
    # The token stored by the sign-in is the long-lived one its exchange answered.
    exchange = instagram_graph.state.requests[-1]
    assert exchange["path"] == "/access_token" and exchange["grant_type"] == "ig_exchange_token"
    assert services.connections_due_for_refresh() == [connection.pk]
    old = connection.access_token
    assert tasks.refresh_expiring_tokens() == 1  # the beat sweep
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.last_error == ""
    assert connection.access_token != old and connection.access_token.startswith("IGAA")
    assert connection.access_expires_at > timezone.now() + timedelta(days=59)
    request = instagram_graph.state.requests[-1]
    assert request == {"path": "/refresh_access_token", "grant_type": "ig_refresh_token", "access_token": old}
    assert services.connections_due_for_refresh() == []  # 60 days ahead now
    assert ConnectionEvent.objects.filter(connection=connection, kind="refreshed").count() == 1


def test_short_lived_instagram_token_saved_before_the_exchange_needs_reconnect(world, platforms, instagram_graph):
    # A connection saved by a sign-in before the exchange existed holds a short-lived token,
    # which Instagram refuses to refresh: the owner is asked to reconnect.
    connection = Connection.objects.create(
        agency=world.agency, creator=world.creator, platform="instagram", status="connected",
        access_token="act.short-lived", access_expires_at=timezone.now() + timedelta(minutes=5),
    )  # fmt: skip
    assert services.connection_refresh(connection_id=connection.pk) == "needs_reconnect"
    connection.refresh_from_db()
    assert connection.status == "needs_reconnect" and "invalid_grant" in connection.last_error


def test_instagram_expired_token_needs_reconnect(world, client_for, platforms, instagram_graph):
    connection = _connected(world, client_for, "instagram")
    instagram_graph.revoke()
    assert services.connection_refresh(connection_id=connection.pk) == "needs_reconnect"
    connection.refresh_from_db()
    assert connection.status == "needs_reconnect" and "invalid_grant" in connection.last_error


def test_held_instagram_account_is_broken_at_once_and_owner_told_once(world, client_for, platforms, instagram_graph):
    connection = _connected(world, client_for, "instagram")
    instagram_graph.hold_account(459)
    assert services.connection_refresh(connection_id=connection.pk) == "broken"
    connection.refresh_from_db()
    assert connection.status == "broken" and "checkpointed" in connection.last_error
    assert "Reconnect" in connection.last_error  # how to fix it
    notes = Notification.objects.filter(agency=world.agency)
    assert list(notes.values_list("user_id", flat=True)) == [world.owner.user_id]
    assert services.connection_refresh(connection_id=connection.pk) == "skipped"  # not retried
    assert notes.count() == 1
    page = client_for(world.owner).get(f"/integrations/connections/{connection.pk}/").content.decode()
    assert "Broken" in page and "checkpointed" in page and "Reconnect" in page


def test_repeated_outages_make_the_connection_broken_after_n_attempts(
    world, client_for, platforms, instagram_graph, settings
):
    settings.INTEGRATIONS_BROKEN_AFTER_FAILURES = 3
    connection = _connected(world, client_for, "instagram")
    instagram_graph.fail_with(503, times=3)
    assert services.connection_refresh(connection_id=connection.pk) == "retry"
    assert services.connection_refresh(connection_id=connection.pk) == "retry"
    assert not Notification.objects.exists()
    assert services.connection_refresh(connection_id=connection.pk) == "broken"
    connection.refresh_from_db()
    assert connection.status == "broken" and connection.refresh_failures == 3
    assert "3 token refreshes in a row" in connection.last_error and "HTTP 503" in connection.last_error
    assert Notification.objects.filter(agency=world.agency, user=world.owner.user).count() == 1
    assert services.connections_due_for_refresh() == []
    # Reconnecting clears the failure count and the status.
    assert connect_through_provider(client_for(world.owner), world.creator, "instagram").status_code == 302
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.refresh_failures == 0


def test_a_success_between_failures_resets_the_count(world, client_for, platforms, settings):
    settings.INTEGRATIONS_BROKEN_AFTER_FAILURES = 2
    connection = _connected(world, client_for)
    platforms.state.fail_token_with = 503
    assert services.connection_refresh(connection_id=connection.pk) == "retry"
    assert services.connection_refresh(connection_id=connection.pk) == "refreshed"
    platforms.state.fail_token_with = 500
    assert services.connection_refresh(connection_id=connection.pk) == "retry"
    connection.refresh_from_db()
    assert connection.status == "connected" and connection.refresh_failures == 1
