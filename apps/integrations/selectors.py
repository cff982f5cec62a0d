"""Reads for integrations. Every getter answers 404 for "missing" and "not yours" alike."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from apps.accounts.models import Creator, Membership
from apps.accounts.selectors import creator_get_for_member, creator_list
from apps.integrations.models import API_PLATFORMS, Connection, ConnectionEvent, Platform, WebhookEvent
from apps.integrations.providers import provider_for

EVENTS_SHOWN = 20


@dataclass
class PlatformRow:
    """One line of a creator's integrations page: a platform, and its connection if any."""

    platform: str
    label: str
    uses_api: bool
    configured: bool
    connection: Connection | None


def connection_list(*, membership: Membership) -> QuerySet[Connection]:
    """The connections of the creators this member may see."""
    return (
        Connection.objects.for_agency(membership.agency_id)
        .filter(creator__in=creator_list(membership=membership, include_archived=True).values("pk"))
        .select_related("creator")
    )


def connection_get_for_member(*, membership: Membership, connection_id: int) -> Connection:
    connection = connection_list(membership=membership).filter(pk=connection_id).first()
    if connection is None:
        raise Http404("No such connection.")
    return connection


def creators_with_connections(*, membership: Membership) -> QuerySet[Creator]:
    """The member's creators, each with its connections prefetched (two queries)."""
    return creator_list(membership=membership).prefetch_related(
        Prefetch("connections", queryset=Connection.objects.order_by("platform"))
    )


def platform_rows(*, membership: Membership, creator_id: int) -> tuple[Creator, list[PlatformRow]]:
    creator = creator_get_for_member(membership=membership, creator_id=creator_id)
    connections = {c.platform: c for c in Connection.objects.for_agency(membership.agency_id).filter(creator=creator)}
    rows = []
    for value, label in Platform.choices:
        uses_api = value in API_PLATFORMS
        provider = provider_for(value)
        rows.append(
            PlatformRow(
                platform=value,
                label=label,
                uses_api=uses_api,
                configured=uses_api or (provider is not None and provider.configured),
                connection=connections.get(value),
            )
        )
    return creator, rows


def connection_events(*, connection: Connection, limit: int = EVENTS_SHOWN) -> list[ConnectionEvent]:
    return list(
        ConnectionEvent.objects.for_agency(connection.agency_id)
        .filter(connection=connection)
        .select_related("actor")[:limit]
    )


def webhook_events_recent(*, connection: Connection, limit: int = EVENTS_SHOWN) -> list[WebhookEvent]:
    return list(
        WebhookEvent.objects.for_agency(connection.agency_id)
        .filter(connection=connection)
        .only("event_id", "type", "status", "received_at", "processed_at", "error", "note")[:limit]
    )


def connection_for_webhook(*, platform: str, public_id) -> Connection | None:
    """The live third-party API connection a webhook URL names (no member: the URL and the
    signature are the credentials)."""
    if platform not in API_PLATFORMS:
        return None
    return (
        Connection.objects.select_related("creator")
        .filter(platform=platform, public_id=public_id)
        .exclude(webhook_secret="")
        .exclude(status="disconnected")
        .first()
    )


def sync_runs(*, connection: Connection) -> QuerySet:
    """A connection's sync history, newest first (apps/integrations/sync.py writes it)."""
    from apps.integrations.models import SyncRun

    return SyncRun.objects.for_agency(connection.agency_id).filter(connection=connection).select_related("started_by")
