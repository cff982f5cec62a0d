"""Reads for integrations. Every getter answers 404 for "missing" and "not yours" alike."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection as db_connection
from django.db.models import Prefetch, QuerySet
from django.http import Http404

from apps.accounts.models import Creator, Membership
from apps.accounts.selectors import creator_get_for_member, creator_list
from apps.core.crypto import decrypt
from apps.integrations.models import (
    API_PLATFORMS,
    Connection,
    ConnectionEvent,
    ConnectionStatus,
    Platform,
    WebhookEvent,
)
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


@dataclass(frozen=True)
class WebhookTarget:
    """What the webhook endpoint needs of a connection: who it belongs to and its secret."""

    pk: int
    agency_id: int
    creator_id: int
    platform: str
    public_id: uuid.UUID
    webhook_secret: str


def connection_for_webhook(*, platform: str, public_id: uuid.UUID) -> WebhookTarget | None:
    """The live third-party API connection a webhook URL names (no member: the URL and the
    signature are the credentials).

    The endpoint's hot path (bench/sync.py ``webhooks_per_s``): one hand-written statement, read
    fresh on every request (a disconnect or a new secret counts at once), instead of an ORM query
    whose compilation cost more than the rest of the request, and only the one secret decrypted,
    once per process per stored ciphertext."""
    if platform not in API_PLATFORMS:
        return None
    meta, q = Connection._meta, db_connection.ops.quote_name
    id_, agency, creator, secret, key, platform_, status = (
        q(meta.get_field(name).column)
        for name in ("id", "agency", "creator", "webhook_secret", "public_id", "platform", "status")
    )
    sql = (
        f"SELECT {id_}, {agency}, {creator}, {secret} FROM {q(meta.db_table)}"  # noqa: S608 (names from the model)
        f" WHERE {key} = %s AND {platform_} = %s AND {status} <> %s AND {secret} <> ''"
    )
    params = [meta.get_field("public_id").get_db_prep_value(public_id, db_connection), platform]
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [*params, ConnectionStatus.DISCONNECTED])
        row = cursor.fetchone()
    if row is None:
        return None
    pk, agency_id, creator_id, ciphertext = row
    return WebhookTarget(pk, agency_id, creator_id, platform, public_id, _webhook_secret(ciphertext))


@lru_cache(maxsize=4096)
def _webhook_secret(ciphertext: str) -> str:
    # Keyed by the ciphertext itself: a new secret (or a key rotation) is a new entry.
    return decrypt(ciphertext)


def sync_runs(*, connection: Connection) -> QuerySet:
    """A connection's sync history, newest first (apps/integrations/sync.py writes it)."""
    from apps.integrations.models import SyncRun

    return SyncRun.objects.for_agency(connection.agency_id).filter(connection=connection).select_related("started_by")
