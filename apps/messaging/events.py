"""Inbox events: tell open inboxes (and the agency's SSE stream) that a conversation changed.

``conversation_changed`` publishes one ``inbox.changed`` event on the event bus
(apps/core/events.py) in the caller's transaction: a rolled-back change announces nothing, and a
committed one reaches, after commit, the websocket group of the agency (``inbox_group``; the inbox
consumer re-renders what it shows) and the agency's SSE stream, which API clients use to refetch.
The payload carries ids and the number of fan messages received, never a fan's text. The bus
reaches every process with Redis; on the embedded default the channel layer is in-memory, so the
consumer also looks for changes in the database on a short timer (see consumers.py) and a
worker's change still shows.
"""

from __future__ import annotations

from apps.core.events import publish

INBOX_CHANGED = "inbox.changed"


def inbox_group(agency_id: int) -> str:
    return f"inbox.agency.{agency_id}"


def conversation_changed(
    *, agency_id: int, creator_id: int, conversation_id: int | None, fan_id: int | None = None, received: int = 0
) -> None:
    """Announce a changed conversation (or, with ``fan_id`` alone, every conversation of a fan
    whose purchases changed); ``received``: how many of the fan's messages this change stored (0
    for a reply, a lock, a delivery status), so a subscriber tells "a fan wrote" from the rest.
    ``creator_id`` lets the agency's event stream leave it out for a chatter not assigned to the
    creator. Call inside the transaction of the change."""
    publish(
        INBOX_CHANGED,
        agency_id=agency_id,
        payload={"creator_id": creator_id, "conversation_id": conversation_id, "fan_id": fan_id, "received": received},
        groups=[inbox_group(agency_id)],
    )
