"""Notification preferences: for each kind of notification, whether a user sees it in the app
and whether it is emailed to them.

``KINDS`` is the list a user chooses from, with its defaults: in the app for every kind, by
email only for the kinds that need someone to act (a failed delivery, a service alert, a
campaign waiting for approval or stopped). ``notification_send`` (services.py) asks
``channels_for`` before it stores or emails anything.

A caller names the kind (``notification_send(kind=...)``); one that does not yet is classed by
the page its notification links to (``kind_for_url``), so a campaign's notification is a
"campaigns" one wherever it comes from. This module does not send anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from apps.accounts.models import AccountEvent, User
from apps.accounts.profile import account_event_record
from apps.core.errors import ApplicationError
from apps.notifications.models import NotificationKind, NotificationPreference


@dataclass(frozen=True)
class Kind:
    key: str
    label: str
    help: str
    email_default: bool


KINDS: tuple[Kind, ...] = (
    Kind(
        NotificationKind.CAMPAIGNS.value,
        NotificationKind.CAMPAIGNS.label,
        "A campaign waits for approval, finished or stopped.",
        True,
    ),
    Kind(
        NotificationKind.DELIVERIES.value,
        NotificationKind.DELIVERIES.label,
        "A message could not be delivered and became a dead letter.",
        True,
    ),
    Kind(
        NotificationKind.ALERTS.value,
        NotificationKind.ALERTS.label,
        "An objective is burning its error budget, or recovered.",
        True,
    ),
    Kind(
        NotificationKind.INSIGHTS.value,
        NotificationKind.INSIGHTS.label,
        "Unusual numbers and new recommendations.",
        False,
    ),
    Kind(NotificationKind.TEAM.value, NotificationKind.TEAM.label, "Someone accepted your invitation.", False),
    Kind(NotificationKind.GENERAL.value, NotificationKind.GENERAL.label, "Any other news from Huntaze.", False),
)
KIND_KEYS = frozenset(kind.key for kind in KINDS)
GENERAL = NotificationKind.GENERAL.value

# The first path segment of a notification's link → its kind, for callers that name none.
_KIND_BY_PATH = {
    "campaigns": "campaigns",
    "automations": "campaigns",
    "deliveries": "deliveries",
    "monitoring": "alerts",
    "optimization": "insights",
    "settings": "team",
}


@dataclass(frozen=True)
class Channels:
    in_app: bool
    email: bool


def kind_for_url(url: str) -> str:
    first = url.lstrip("/").split("/", 1)[0] if url.startswith("/") else ""
    return _KIND_BY_PATH.get(first, GENERAL)


def _default(kind: str) -> Channels:
    found = next((k for k in KINDS if k.key == kind), None)
    return Channels(in_app=True, email=found.email_default if found else False)


def channels_for(*, user_id: int, kind: str) -> Channels:
    """How a notification of ``kind`` reaches this user (one query)."""
    row = NotificationPreference.objects.filter(user_id=user_id, kind=kind).values("in_app", "email").first()
    return Channels(**row) if row else _default(kind)


def email_wanted(*, user_ids: list[int], kind: str) -> set[int]:
    """Which of these users want ``kind`` by email (one query), for callers that send their own."""
    chosen = dict(
        NotificationPreference.objects.filter(user_id__in=user_ids, kind=kind).values_list("user_id", "email")
    )
    default = _default(kind).email
    return {user_id for user_id in user_ids if chosen.get(user_id, default)}


def preferences_for_user(*, user_id: int) -> list[tuple[Kind, Channels]]:
    """Every kind with the user's current choice, in ``KINDS`` order (one query)."""
    rows = {
        row["kind"]: Channels(in_app=row["in_app"], email=row["email"])
        for row in NotificationPreference.objects.filter(user_id=user_id).values("kind", "in_app", "email")
    }
    return [(kind, rows.get(kind.key, _default(kind.key))) for kind in KINDS]


@transaction.atomic
def preferences_set(*, user: User, choices: dict[str, Channels], ip_address: str | None = None) -> None:
    """Store the user's choices, with an entry in their account's audit trail; a kind missing
    from ``choices`` keeps its current setting. ApplicationError for an unknown kind."""
    unknown = set(choices) - KIND_KEYS
    if unknown:
        raise ApplicationError(f"Unknown notification kind: {', '.join(sorted(unknown))}.", field="kind")
    current = dict((kind.key, channels) for kind, channels in preferences_for_user(user_id=user.pk))
    changed = sorted(kind for kind, channels in choices.items() if current[kind] != channels)
    for kind in changed:
        channels = choices[kind]
        NotificationPreference.objects.update_or_create(
            user_id=user.pk, kind=kind, defaults={"in_app": channels.in_app, "email": channels.email}
        )
    if changed:
        account_event_record(
            user=user, kind=AccountEvent.Kind.PREFERENCES_UPDATED, ip_address=ip_address, kinds=changed
        )
