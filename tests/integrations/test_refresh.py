"""Token refresh: the beat sweep, rotating refresh tokens, revoked grants and outages."""

from __future__ import annotations

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


def test_disconnected_meanwhile_is_skipped(world, client_for, platforms):
    connection = _connected(world, client_for)
    services.connection_disconnect(membership=world.owner, connection=connection)
    assert services.connection_refresh(connection_id=connection.pk) == "skipped"
