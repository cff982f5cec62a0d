"""Writes for the fan CRM and inbox: fans and what they do (ingest), and what members send.

Ingest (``fan_upsert``, ``message_receive``, ``purchase_record``) is called by whatever brings
platform events in: the simulated fans today (management command ``simulate_fans``), CSV imports,
real connectors later. These run without a member and are idempotent on the platform's ids.

Member actions authorise first (``require``). Rules the database cannot state:

- nothing goes to a fan without a member's action (``message_send`` needs a membership allowed to
  send for that creator); automations are the campaigns app's, with their own rule;
- the text passes the safety policy and the platform's length limit before anything is stored;
- a PPV price lies within the creator's PPV range;
- two members answering the same conversation at once: the first wins; the second is told who
  answered (``ConflictError``) and nothing of theirs is stored or sent. A repeated submission of
  the same message (same idempotency key) returns the message already sent, never a second one.
"""

from __future__ import annotations

import difflib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.core.errors import ApplicationError, ConflictError
from apps.core.events import publish
from apps.delivery.connectors import text_limit
from apps.delivery.services import delivery_enqueue
from apps.messaging import events
from apps.messaging.models import (
    Conversation,
    Direction,
    Draft,
    DraftStatus,
    Fan,
    FanNote,
    FanTag,
    Message,
    MessageStatus,
    MessageTemplate,
    Purchase,
    PurchaseKind,
    Source,
)
from apps.messaging.templating import template_render
from apps.safety import apply_policy

PREVIEW_LENGTH = 140
MASS = (Source.CAMPAIGN, Source.AUTOMATION)  # sent to many fans at once: they answer no one
LOCK_SECONDS = 90
SPEND_FIELD = {
    PurchaseKind.SUBSCRIPTION: "spent_subscriptions",
    PurchaseKind.TIP: "spent_tips",
    PurchaseKind.PPV: "spent_ppv",
    PurchaseKind.MESSAGE: "spent_messages",
}
FAN_FIELDS = (
    "username",
    "display_name",
    "subscribed_since",
    "subscription_state",
    "renew_on",
    "subscription_expires_at",
    "last_active_at",
    "timezone",
    "custom_fields",
)


# --- Ingest: fans and what they do ------------------------------------------------------------


def fan_upsert(*, creator: Creator, platform: str, platform_fan_id: str, **fields) -> tuple[Fan, bool]:
    """Create the fan or update the given fields; answers (fan, created)."""
    unknown = set(fields) - set(FAN_FIELDS)
    if unknown:
        raise ValueError(f"Unknown fan fields: {sorted(unknown)}")
    defaults = {"agency_id": creator.agency_id, **fields}
    with transaction.atomic():
        fan, created = Fan.objects.update_or_create(
            creator=creator, platform=platform, platform_fan_id=platform_fan_id, defaults=defaults
        )
        if created:  # for subscribers such as CRM webhooks (docs/events.md)
            publish(
                "fan.created",
                agency_id=fan.agency_id,
                payload={"fan_id": fan.pk, "creator_id": fan.creator_id, "platform": fan.platform},
            )
    return fan, created


def _conversation_for(fan: Fan) -> Conversation:
    conversation, _ = Conversation.objects.get_or_create(
        fan=fan, defaults={"agency_id": fan.agency_id, "creator_id": fan.creator_id, "fan_value": fan.total_spent}
    )
    return conversation


@transaction.atomic
def message_receive(
    *,
    fan: Fan,
    text: str,
    media_count: int = 0,
    platform_message_id: str = "",
    at: datetime | None = None,
) -> Message:
    """Store a message from the fan; the conversation now waits for a reply. Idempotent on the
    platform's message id, also when two deliveries of it race: the second answers the first's.

    A message that arrives late (``at`` older than the thread's last message: a sync catching
    up, a webhook delivered after newer ones) is stored at its place in the history, but the
    thread moves only forward (``_last_message_if_newer``): it becomes the last message only if no
    newer one is there, and it makes the fan wait (and counts as unread) only if no reply was
    sent after it; a wait it precedes starts with it."""
    at = at or timezone.now()
    conversation = _conversation_for(fan)
    if platform_message_id:
        existing = Message.objects.filter(conversation=conversation, platform_message_id=platform_message_id).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():  # a savepoint: the same message stored at this moment by another delivery
            message = Message.objects.create(
                agency_id=fan.agency_id,
                creator_id=fan.creator_id,
                conversation=conversation,
                fan=fan,
                direction=Direction.INBOUND,
                text=text,
                media_count=media_count,
                source=Source.FAN,
                status=MessageStatus.RECEIVED,
                platform_message_id=platform_message_id,
                created_at=at,
                sent_at=at,
            )
    except IntegrityError:
        stored = Message.objects.filter(conversation=conversation, platform_message_id=platform_message_id).first()
        if not platform_message_id or stored is None:
            raise
        return stored
    # Decided in the UPDATE against the row as it is then, so a reply or a newer message
    # stored meanwhile by another process is never overwritten.
    unanswered = ~Exists(_replies().filter(conversation_id=OuterRef("pk"), created_at__gt=at))
    earlier_wait = Q(needs_reply=True, waiting_since__lte=at)
    Conversation.objects.filter(pk=conversation.pk).update(
        needs_reply=Case(When(unanswered, then=Value(True)), default=F("needs_reply")),
        waiting_since=Case(When(unanswered & ~earlier_wait, then=Value(at)), default=F("waiting_since")),
        unread_count=F("unread_count") + Case(When(unanswered, then=Value(1)), default=Value(0)),
        message_count=F("message_count") + 1,
        **_last_message_if_newer(at, _preview(text, media_count), Direction.INBOUND),
    )
    Fan.objects.filter(Q(last_active_at__isnull=True) | Q(last_active_at__lt=at), pk=fan.pk).update(last_active_at=at)
    events.conversation_changed(
        agency_id=fan.agency_id, creator_id=fan.creator_id, conversation_id=conversation.pk, received=1
    )
    return message


@transaction.atomic
def purchase_record(
    *,
    fan: Fan,
    kind: str,
    amount: Decimal,
    at: datetime | None = None,
    message: Message | None = None,
    platform_purchase_id: str = "",
    currency: str | None = None,
) -> Purchase:
    """Record money the fan paid and add it to their spend; idempotent on the platform's id, also
    when two deliveries of it race (the second answers the first's and adds nothing). A PPV
    purchase tied to a message unlocks it."""
    if kind not in SPEND_FIELD:
        raise ApplicationError(f"Unknown purchase kind “{kind}”.", field="kind")
    amount = Decimal(amount)
    if amount <= 0:
        raise ApplicationError("A purchase amount must be above zero.", field="amount")
    if platform_purchase_id:
        existing = Purchase.objects.filter(creator_id=fan.creator_id, platform_purchase_id=platform_purchase_id).first()
        if existing is not None:
            return existing
    at = at or timezone.now()
    try:
        with transaction.atomic():  # a savepoint: the same purchase stored at this moment by another delivery
            purchase = Purchase.objects.create(
                agency_id=fan.agency_id,
                creator_id=fan.creator_id,
                fan=fan,
                kind=kind,
                amount=amount,
                currency=currency or fan.creator.currency,
                purchased_at=at,
                message=message,
                platform_purchase_id=platform_purchase_id,
            )
    except IntegrityError:
        stored = Purchase.objects.filter(creator_id=fan.creator_id, platform_purchase_id=platform_purchase_id).first()
        if not platform_purchase_id or stored is None:
            raise
        return stored
    updates = {
        SPEND_FIELD[kind]: F(SPEND_FIELD[kind]) + amount,
        "total_spent": F("total_spent") + amount,
        "last_active_at": at,
    }
    Fan.objects.filter(pk=fan.pk).update(**updates)
    Fan.objects.filter(pk=fan.pk, last_purchase_at__isnull=True).update(last_purchase_at=at)
    Fan.objects.filter(pk=fan.pk, last_purchase_at__lt=at).update(last_purchase_at=at)
    unlocks = kind == PurchaseKind.PPV and message is not None and message.unlocked_at is None
    if unlocks and Message.objects.filter(pk=message.pk, unlocked_at__isnull=True).update(unlocked_at=at):
        Fan.objects.filter(pk=fan.pk, ppv_bought__lt=F("ppv_offered")).update(ppv_bought=F("ppv_bought") + 1)
    Conversation.objects.filter(fan=fan).update(fan_value=F("fan_value") + amount)
    fan.refresh_from_db()
    events.conversation_changed(agency_id=fan.agency_id, creator_id=fan.creator_id, conversation_id=None, fan_id=fan.pk)
    publish(
        "purchase.recorded",
        agency_id=fan.agency_id,
        payload={
            "purchase_id": purchase.pk, "fan_id": fan.pk, "creator_id": fan.creator_id, "kind": purchase.kind,
            "amount": str(purchase.amount), "currency": purchase.currency,
            "purchased_at": purchase.purchased_at.isoformat(),
        },
    )  # fmt: skip
    return purchase


# --- Member actions -----------------------------------------------------------------------------


def edit_ratio(suggested: str, sent: str) -> Decimal:
    """How much of the suggestion the member changed: 0 = sent as suggested, 1 = rewritten."""
    ratio = difflib.SequenceMatcher(None, suggested, sent, autojunk=False).ratio()
    return Decimal(str(round(1 - ratio, 3)))


def new_idempotency_key() -> str:
    return secrets.token_hex(16)


def message_validate(*, creator: Creator, fan: Fan, text: str, ppv_price: Decimal | None, media_count: int) -> str:
    """The text to send, or ApplicationError naming the field: empty, over the platform's limit,
    refused by the safety policy, or a PPV price outside the creator's range."""
    text = (text or "").strip()
    if not text and not media_count:
        raise ApplicationError("Write a message (or attach media) before sending.", field="text")
    limit = text_limit(fan.platform)
    if len(text) > limit:
        raise ApplicationError(
            f"This message is {len(text)} characters; {fan.get_platform_display()} allows {limit}.", field="text"
        )
    if ppv_price is not None:
        if ppv_price <= 0:
            raise ApplicationError("A PPV price must be above zero.", field="ppv_price")
        if not creator.ppv_price_min <= ppv_price <= creator.ppv_price_max:
            raise ApplicationError(
                f"{creator.display_name}'s PPV prices go from {creator.ppv_price_min} to "
                f"{creator.ppv_price_max} {creator.currency}.",
                field="ppv_price",
            )
        if not media_count:
            raise ApplicationError("A PPV message needs media to unlock.", field="ppv_price")
    policy = apply_policy(
        text,
        avoid_words=creator.avoid_words,
        avoid_topics=creator.avoid_topics,
        platform=fan.platform,
        direct_message=True,
    )
    if policy.blocked or policy.violations:
        raise ApplicationError(f"Not sent: {policy.violations[0].message}", field="text")
    return text


def message_send(
    *,
    membership: Membership,
    conversation: Conversation,
    text: str,
    ppv_price: Decimal | None = None,
    media_count: int = 0,
    draft: Draft | None = None,
    template: MessageTemplate | None = None,
    idempotency_key: str | None = None,
    seen_message_count: int | None = None,
) -> Message:
    """Send a message in the creator's name, as ``membership``, through the delivery pipeline.

    ``seen_message_count`` is the conversation's message count the member was looking at; when
    the conversation moved on since (a colleague answered, the fan wrote again; a campaign's
    message is no news) the send is refused with ConflictError so the member can read first.
    ``idempotency_key`` makes a repeated submission return the first message."""
    creator = conversation.creator
    require(membership, Perm.SEND_MESSAGES, creator=creator)
    key = (idempotency_key or "").strip()[:64] or new_idempotency_key()
    existing = Message.objects.filter(agency_id=membership.agency_id, idempotency_key=key).first()
    if existing is not None:
        return existing
    fan = conversation.fan
    text = message_validate(creator=creator, fan=fan, text=text, ppv_price=ppv_price, media_count=media_count)
    if draft is not None and draft.conversation_id != conversation.pk:
        raise ApplicationError("That draft belongs to another conversation.", field="draft")
    if template is not None and template.agency_id != membership.agency_id:
        raise ApplicationError("No such template.", field="template")
    suggested = draft.text if draft is not None else ""
    source = Source.AI_DRAFT if draft is not None else Source.TEMPLATE if template is not None else Source.HUMAN
    if template is not None and draft is None:
        suggested = template_render(template.text, fan=fan, creator=creator).text
    now = timezone.now()
    try:
        with transaction.atomic():
            claim = Conversation.objects.filter(pk=conversation.pk)
            if seen_message_count is not None:
                claim = claim.filter(message_count=_count_to_claim(conversation.pk, seen_message_count))
            changed = claim.update(
                needs_reply=False,
                waiting_since=None,
                unread_count=0,
                message_count=F("message_count") + 1,
                last_message_at=now,
                last_message_preview=_preview(text, media_count),
                last_message_direction=Direction.OUTBOUND,
            )
            if not changed:
                raise _conflict(conversation, membership)
            message = Message.objects.create(
                agency_id=membership.agency_id,
                creator=creator,
                conversation=conversation,
                fan=fan,
                direction=Direction.OUTBOUND,
                text=text,
                media_count=media_count,
                ppv_price=ppv_price,
                source=source,
                status=MessageStatus.QUEUED,
                sent_by=membership.user,
                sent_by_email=membership.user.email,
                draft=draft,
                template=template,
                suggested_text=suggested,
                edit_ratio=edit_ratio(suggested, text) if suggested else None,
                idempotency_key=key,
                created_at=now,
            )
            if draft is not None:
                Draft.objects.filter(conversation=conversation, status=DraftStatus.PENDING).update(
                    status=DraftStatus.DISCARDED
                )
                Draft.objects.filter(pk=draft.pk).update(status=DraftStatus.SENT)
            if template is not None:
                MessageTemplate.objects.filter(pk=template.pk).update(use_count=F("use_count") + 1)
            if ppv_price is not None:
                Fan.objects.filter(pk=fan.pk).update(ppv_offered=F("ppv_offered") + 1)
            delivery_enqueue(
                agency_id=membership.agency_id,
                creator_id=creator.pk,
                platform=fan.platform,
                recipient_id=fan.platform_fan_id,
                text=text,
                ppv_price=ppv_price,
                media_count=media_count,
                idempotency_key=key,
                queue="interactive",
                source="messaging.message",
                source_id=message.pk,
            )
    except IntegrityError:
        # The same idempotency key committed by a concurrent submission: that one was sent.
        existing = Message.objects.filter(agency_id=membership.agency_id, idempotency_key=key).first()
        if existing is None:
            raise
        return existing
    events.conversation_changed(
        agency_id=membership.agency_id, creator_id=conversation.creator_id, conversation_id=conversation.pk
    )
    return message


@dataclass(frozen=True)
class SentElsewhere:
    """One message another app sent in a creator's name through its own delivery (a campaign's)."""

    platform: str
    recipient_id: str
    text: str
    ppv_price: Decimal | None
    media_count: int
    idempotency_key: str
    platform_message_id: str
    sent_at: datetime


@transaction.atomic
def messages_record_sent(
    *,
    agency_id: int,
    creator_id: int,
    campaign_id: int | None,
    sent: list[SentElsewhere],
    sent_by_id: int | None = None,
    sent_by_email: str = "",
    source: str = Source.CAMPAIGN,
) -> int:
    """Put messages a campaign (or an automation: ``source``, no campaign id) sent into the
    fans' conversations, as sent: the threads show them, the audit lists them (sent by the
    campaign's author), and a PPV unlock of one counts for the campaign. Once per idempotency
    key (the delivery's): a key already recorded, or a fan not known here, is skipped. A mass
    message does not answer anyone, so a conversation waiting for a reply keeps waiting; recorded
    after a newer message, it does not become the thread's last message either. In bulk:
    a fixed number of queries plus one UPDATE per conversation touched. Answers how many were
    recorded."""
    if not sent:
        return 0
    keys = [item.idempotency_key for item in sent]
    done = set(
        Message.objects.filter(agency_id=agency_id, idempotency_key__in=keys).values_list("idempotency_key", flat=True)
    )
    todo = [item for item in sent if item.idempotency_key not in done]
    fans = {
        (fan.platform, fan.platform_fan_id): fan
        for fan in Fan.objects.for_agency(agency_id).filter(
            creator_id=creator_id, platform_fan_id__in={item.recipient_id for item in todo}
        )
    }
    todo = [item for item in todo if (item.platform, item.recipient_id) in fans]
    if not todo:
        return 0
    fan_ids = {fans[(item.platform, item.recipient_id)].pk for item in todo}
    missing = fan_ids - set(Conversation.objects.filter(fan_id__in=fan_ids).values_list("fan_id", flat=True))
    Conversation.objects.bulk_create(
        [
            Conversation(agency_id=agency_id, creator_id=creator_id, fan_id=fan.pk, fan_value=fan.total_spent)
            for fan in fans.values()
            if fan.pk in missing
        ],
        ignore_conflicts=True,
    )
    conversations = dict(Conversation.objects.filter(fan_id__in=fan_ids).values_list("fan_id", "pk"))
    messages = []
    latest: dict[int, SentElsewhere] = {}
    counts: dict[int, int] = {}
    offered: dict[int, int] = {}
    for item in todo:
        fan = fans[(item.platform, item.recipient_id)]
        messages.append(
            Message(
                agency_id=agency_id, creator_id=creator_id, conversation_id=conversations[fan.pk], fan_id=fan.pk,
                direction=Direction.OUTBOUND, text=item.text, media_count=item.media_count,
                ppv_price=item.ppv_price, source=source, status=MessageStatus.SENT,
                sent_by_id=sent_by_id, sent_by_email=sent_by_email, idempotency_key=item.idempotency_key,
                platform_message_id=item.platform_message_id, campaign_id=campaign_id,
                created_at=item.sent_at, sent_at=item.sent_at,
            )
        )  # fmt: skip
        counts[fan.pk] = counts.get(fan.pk, 0) + 1
        if fan.pk not in latest or item.sent_at >= latest[fan.pk].sent_at:
            latest[fan.pk] = item
        if item.ppv_price is not None:
            offered[fan.pk] = offered.get(fan.pk, 0) + 1
    Message.objects.bulk_create(messages, batch_size=500)
    for fan_id, item in latest.items():
        # Recorded late (a long campaign's last batch): a newer message stays the thread's last.
        Conversation.objects.filter(pk=conversations[fan_id]).update(
            message_count=F("message_count") + counts[fan_id],
            **_last_message_if_newer(item.sent_at, _preview(item.text, item.media_count), Direction.OUTBOUND),
        )
    for fan_id, count in offered.items():
        Fan.objects.filter(pk=fan_id).update(ppv_offered=F("ppv_offered") + count)
    return len(messages)  # open inboxes see them on their next poll (no event per conversation)


def messages_unrecorded(*, agency_id: int, rows: QuerySet) -> QuerySet:
    """``rows`` (deliveries, or anything with an ``idempotency_key``) without a message of that
    key in this agency: what ``messages_record_sent`` has not recorded yet. The key is also
    said not to be empty, the condition of the (agency, key) index: SQLite uses a partial index
    only when the query states its condition, and otherwise reads every message of the agency
    for each row (a 100,000-fan campaign's recording slowed down batch after batch)."""
    recorded = Message.objects.filter(agency_id=agency_id, idempotency_key=OuterRef("idempotency_key")).exclude(
        idempotency_key=""
    )
    return rows.exclude(Exists(recorded))


def _count_to_claim(conversation_id: int, seen_message_count: int) -> int:
    """The message count a send claims: the one the member saw, or the current one when every
    message stored since is a campaign's or an automation's (they answer no one and ask nothing,
    so the member has nothing new to read first). Messages are counted as they are stored, so
    the newest ids are the ones added since."""
    current = Conversation.objects.filter(pk=conversation_id).values_list("message_count", flat=True).first()
    if current is None or current <= seen_message_count:
        return seen_message_count
    added = Message.objects.filter(conversation_id=conversation_id).order_by("-id").values("pk")
    news = Message.objects.filter(pk__in=Subquery(added[: current - seen_message_count])).exclude(source__in=MASS)
    return seen_message_count if news.exists() else current


def _conflict(conversation: Conversation, membership: Membership) -> ConflictError:
    latest = Message.objects.filter(conversation=conversation).order_by("-created_at", "-id").first()
    if latest is not None and latest.direction == Direction.OUTBOUND:
        if latest.sent_by_id is not None and latest.sent_by_id == membership.user_id:
            # The same member a second time: a double click, or a second tab on this conversation.
            text = "You just answered this fan (from another tab or a second click). Read the conversation again."
        else:
            who = latest.sent_by_email or "another member"
            text = f"{who} just answered this fan. Read the conversation again before sending."
    else:
        text = "The fan wrote again while you were typing. Read the new message before sending."
    return ConflictError(text, field="text")


def message_delivery_update(
    *, message_id: int, status: str, platform_message_id: str = "", error: str = "", at: datetime | None = None
) -> None:
    """Reflect a delivery's progress on its message (called from the delivery signal receiver)."""
    at = at or timezone.now()
    updates: dict = {"status": status}
    if status == MessageStatus.SENT:
        updates["sent_at"] = at
        updates["error"] = ""
        if platform_message_id:
            updates["platform_message_id"] = platform_message_id
    elif status == MessageStatus.DELIVERED:
        updates["delivered_at"] = at
    elif status == MessageStatus.READ:
        updates["read_at"] = at
    elif status == MessageStatus.FAILED:
        updates["error"] = error[:300]
    message = Message.objects.filter(pk=message_id, direction=Direction.OUTBOUND).first()
    if message is None:
        return
    # A reply that failed for good never reached the fan: the thread waits again and the PPV was
    # not offered. A dead letter re-queued is on its way again: the reverse.
    failure_changed = (status == MessageStatus.FAILED) != (message.status == MessageStatus.FAILED)
    with transaction.atomic():
        rows = Message.objects.filter(pk=message_id)
        if failure_changed:
            rows = rows.filter(status=message.status)  # once, when two updates race
        if rows.update(**updates) and failure_changed:
            if message.ppv_price is not None:
                fan = Fan.objects.filter(pk=message.fan_id)
                if status == MessageStatus.FAILED:
                    fan.filter(ppv_offered__gt=F("ppv_bought")).update(ppv_offered=F("ppv_offered") - 1)
                else:
                    fan.update(ppv_offered=F("ppv_offered") + 1)
            _conversation_reply_refresh(message.conversation_id)
    events.conversation_changed(
        agency_id=message.agency_id, creator_id=message.creator_id, conversation_id=message.conversation_id
    )


def _replies() -> QuerySet[Message]:
    """The messages that answer the fan's earlier ones: ours, not failed, not a campaign's or an
    automation's (``messages_record_sent``: they answer no one)."""
    return (
        Message.objects.filter(direction=Direction.OUTBOUND)
        .exclude(status=MessageStatus.FAILED)
        .exclude(source__in=MASS)
    )


def _last_message_if_newer(at: datetime, preview: str, direction: str) -> dict:
    """``update()`` arguments that make a message stored now the conversation's last one unless
    the thread's last message is newer. Messages are in the order of (time, id), as the history
    shows them; the one being stored has the highest id, so at the same time it comes last."""
    newer = Q(last_message_at__isnull=True) | Q(last_message_at__lte=at)
    direction = str(direction)
    return {
        "last_message_at": Case(When(newer, then=Value(at)), default=F("last_message_at")),
        "last_message_preview": Case(When(newer, then=Value(preview)), default=F("last_message_preview")),
        "last_message_direction": Case(When(newer, then=Value(direction)), default=F("last_message_direction")),
    }


def _conversation_reply_refresh(conversation_id: int) -> None:
    """The conversation's wait (``needs_reply``, ``waiting_since``: the fan's messages after the
    last reply that did not fail) and its last message, from the messages that did not fail, in
    the order of (time, id). A campaign's or an automation's message answers no one."""
    messages = Message.objects.filter(conversation_id=conversation_id).exclude(status=MessageStatus.FAILED)
    answer = (
        _replies()
        .filter(conversation_id=conversation_id)
        .order_by("-created_at", "-id")
        .values_list("created_at", "pk")
        .first()
    )
    unanswered = messages.filter(direction=Direction.INBOUND)
    if answer is not None:
        answered_at, answer_id = answer
        unanswered = unanswered.filter(Q(created_at__gt=answered_at) | Q(created_at=answered_at, pk__gt=answer_id))
    waiting_since = unanswered.order_by("created_at").values_list("created_at", flat=True).first()
    updates: dict = {"needs_reply": waiting_since is not None, "waiting_since": waiting_since}
    latest = messages.order_by("-created_at", "-id").first()
    if latest is not None:
        updates.update(
            last_message_at=latest.created_at,
            last_message_preview=_preview(latest.text, latest.media_count),
            last_message_direction=latest.direction,
        )
    Conversation.objects.filter(pk=conversation_id).update(**updates)


def conversation_mark_read(*, membership: Membership, conversation: Conversation) -> None:
    require(membership, Perm.VIEW, creator=conversation.creator)
    Conversation.objects.filter(pk=conversation.pk, unread_count__gt=0).update(unread_count=0)


def conversation_lock(*, membership: Membership, conversation: Conversation) -> tuple[bool, int | None]:
    """Take or refresh the soft lock that shows others who is answering. Answers (taken, holder's
    user id): another member's live lock is left alone and reported."""
    require(membership, Perm.SEND_MESSAGES, creator=conversation.creator)
    now = timezone.now()
    until = now + timedelta(seconds=LOCK_SECONDS)
    user_id = membership.user_id
    # The page refreshes its lock every 30 s while the chatter types: extending one's own live lock
    # changes nothing anyone else sees, so it publishes no event.
    own = Conversation.objects.filter(pk=conversation.pk, locked_by_id=user_id, locked_until__gt=now)
    if own.update(locked_until=until):
        return True, user_id
    free = Conversation.objects.filter(pk=conversation.pk).exclude(_locked_by_other(user_id, now))
    if free.update(locked_by_id=user_id, locked_until=until):
        events.conversation_changed(
            agency_id=membership.agency_id, creator_id=conversation.creator_id, conversation_id=conversation.pk
        )
        return True, user_id
    holder = Conversation.objects.filter(pk=conversation.pk).values_list("locked_by_id", flat=True).first()
    return False, holder


def conversation_unlock(*, membership: Membership, conversation: Conversation) -> None:
    if Conversation.objects.filter(pk=conversation.pk, locked_by_id=membership.user_id).update(
        locked_by=None, locked_until=None
    ):
        events.conversation_changed(
            agency_id=membership.agency_id, creator_id=conversation.creator_id, conversation_id=conversation.pk
        )


def _locked_by_other(user_id: int, now: datetime) -> Q:
    return Q(locked_by__isnull=False, locked_until__gt=now) & ~Q(locked_by_id=user_id)


# --- Fan notes and tags ---------------------------------------------------------------------------


def fan_note_add(*, membership: Membership, fan: Fan, text: str) -> FanNote:
    require(membership, Perm.SEND_MESSAGES, creator=fan.creator)
    text = (text or "").strip()
    if not text:
        raise ApplicationError("A note needs some text.", field="text")
    if len(text) > 2000:
        raise ApplicationError(f"A note holds at most 2000 characters (this one has {len(text)}).", field="text")
    return FanNote.objects.create(agency_id=fan.agency_id, fan=fan, author=membership.user, text=text)


def fan_tags_set(*, membership: Membership, fan: Fan, tags: list[str]) -> list[str]:
    """Replace the fan's tags; answers the tags kept (lower-cased, unique, sorted)."""
    require(membership, Perm.SEND_MESSAGES, creator=fan.creator)
    names = sorted({t.strip().lower() for t in tags if t and t.strip()})
    too_long = [n for n in names if len(n) > 40]
    if too_long:
        raise ApplicationError(f"A tag holds at most 40 characters: “{too_long[0][:50]}”.", field="tags")
    if len(names) > 50:
        raise ApplicationError("A fan holds at most 50 tags.", field="tags")
    with transaction.atomic():
        FanTag.objects.filter(fan=fan).exclude(name__in=names).delete()
        have = set(FanTag.objects.filter(fan=fan).values_list("name", flat=True))
        FanTag.objects.bulk_create(
            [
                FanTag(agency_id=fan.agency_id, creator_id=fan.creator_id, fan=fan, name=n)
                for n in names
                if n not in have
            ],
            ignore_conflicts=True,  # the same tag saved at this moment by another request
        )
    return names


def _preview(text: str, media_count: int) -> str:
    preview = " ".join(text.split())
    if media_count and not preview:
        preview = "📎 media"
    return preview[:PREVIEW_LENGTH]
