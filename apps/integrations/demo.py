"""Demo data for integrations: the first demo creator's OnlyFans account, connected through a
SIMULATED third-party API connection (labelled so on every page): no real account, no API key,
and the webhook secret is random. Other platforms stay unconnected, so the page shows both."""

from __future__ import annotations

import secrets

from django.utils import timezone

from apps.core.registry import DemoContext
from apps.integrations.models import Connection, ConnectionEvent, ConnectionEventKind, ConnectionStatus, Platform

ORDER = 85  # after messaging (30): the simulated fans it stands for exist by then


def seed(ctx: DemoContext) -> None:
    if not ctx.creators:
        return
    creator = ctx.creators[0]
    connection, _ = Connection.objects.update_or_create(
        creator=creator,
        platform=Platform.ONLYFANS,
        defaults={
            "agency_id": creator.agency_id,
            "status": ConnectionStatus.CONNECTED,
            "is_simulated": True,
            "api_base_url": "https://simulated.invalid/onlyfans-api",
            "api_account_id": "demo-account",
            "webhook_secret": "whsec_" + secrets.token_urlsafe(32),
            "last_sync_at": timezone.now(),
        },
    )
    ConnectionEvent.objects.create(
        agency_id=creator.agency_id, connection=connection, kind=ConnectionEventKind.CONNECTED,
        detail="Simulated demo connection (no real OnlyFans account).",
    )  # fmt: skip
    ctx.log(f"integrations: {creator.display_name} has a simulated OnlyFans API connection")
