"""Inbox events: tell open inboxes that a conversation changed, after the change is committed.

Published once here and fanned out by the channel layer to the websocket group of the agency
(``inbox_group``); the inbox consumer re-renders what it shows. The channel layer reaches every
process with Redis; on the embedded default it is in-memory, so the consumer also looks for
changes in the database on a short timer (see consumers.py) and a worker's change still shows.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def inbox_group(agency_id: int) -> str:
    return f"inbox.agency.{agency_id}"


def conversation_changed(*, agency_id: int, conversation_id: int | None, fan_id: int | None = None) -> None:
    transaction.on_commit(lambda: _publish(agency_id, conversation_id, fan_id))


def _publish(agency_id: int, conversation_id: int | None, fan_id: int | None) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(
        inbox_group(agency_id),
        {"type": "inbox.changed", "conversation_id": conversation_id, "fan_id": fan_id},
    )
