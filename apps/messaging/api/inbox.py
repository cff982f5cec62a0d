"""API: the inbox (conversations in priority order, a conversation's history paged backwards,
sending, marking read) and the audit log of what was sent in the creators' names.

Sending goes through ``services.message_send``, the same as the inbox page:

- ``seen_message_count`` is the conversation's ``message_count`` the client answered; if a
  colleague answered or the fan wrote meanwhile the send is refused with 409 (the message says
  who answered) and nothing is stored or sent;
- ``idempotency_key`` (body) or the ``Idempotency-Key`` header makes a retried request safe: the
  first answers 201 with the new message, a repeat answers 200 with that same message and sends
  nothing; a key already used for another conversation is a 409.

The audit log is for owners and managers (the roles holding ``edit``), as on the audit page; a
read-scoped token of such a member may read it.
"""

from datetime import UTC, datetime

from django.http import HttpRequest
from django.utils import timezone
from ninja import Header, Query, Router, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member, member_get
from apps.core.errors import ApplicationError, ConflictError, fields_renamed
from apps.core.openapi import MAX_ID, ErrorOut, Id
from apps.messaging import selectors, services
from apps.messaging.api.common import require_role_read
from apps.messaging.models import Message
from apps.messaging.schemas import (
    AuditOut,
    ConversationOut,
    MessageOut,
    MessagePageOut,
    SendIn,
    SourceName,
    request_rules,
)

router = Router()

# Service field names → the API's.
SEND_FIELDS = {"draft": "draft_id", "template": "template_id"}


@router.get("/conversations", response={200: list[ConversationOut], 409: ErrorOut}, tags=["inbox"])
@paginate(page_size=50)
def conversation_list(
    request: HttpRequest,
    creator_id: int | None = Query(None, ge=1, le=MAX_ID),
    segment_id: int | None = Query(None, ge=1, le=MAX_ID),
    tag: str = Query("", max_length=40),
    search: str = Query("", max_length=100),
    waiting: bool = Query(False, description="Only conversations waiting for a reply."),
):
    """The inbox across the creators the caller may see, by priority: waiting for a reply first,
    then the most valuable fan, then the longest wait; answered ones by latest message.
    ``segment_id``: 409 when that segment's saved filters can no longer be read."""
    membership = api_membership(request)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
    segment = (
        selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
        if segment_id is not None
        else None
    )
    return selectors.conversation_list(
        membership=membership,
        creator_id=creator_id,
        segment=segment,
        tag=tag,
        search=search,
        waiting_only=waiting,
        rules=request_rules(request, membership.agency_id),
    )


@router.get("/conversations/{conversation_id}", response=ConversationOut, tags=["inbox"])
def conversation_detail(request: HttpRequest, conversation_id: Id):
    return selectors.conversation_get_for_member(membership=api_membership(request), conversation_id=conversation_id)


@router.get("/conversations/{conversation_id}/messages", response=MessagePageOut, tags=["inbox"])
def message_list(
    request: HttpRequest,
    conversation_id: Id,
    before_id: int | None = Query(None, ge=1, le=MAX_ID, description="Only messages older than this one."),
    limit: int = Query(30, ge=1, le=100),
):
    """A page of the history, oldest first: the latest ``limit`` messages, or those before
    ``before_id``. ``has_more`` says whether an older page exists."""
    membership = api_membership(request)
    conversation = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    page = selectors.message_page(conversation=conversation, before_id=before_id, limit=limit)
    has_more = bool(page) and bool(selectors.message_page(conversation=conversation, before_id=page[0].pk, limit=1))
    return {"items": page, "has_more": has_more, "before_id": page[0].pk if has_more else None}


@router.post(
    "/conversations/{conversation_id}/messages",
    response={200: MessageOut, 201: MessageOut, 409: ErrorOut},
    tags=["inbox"],
)
def message_send(
    request: HttpRequest,
    conversation_id: Id,
    payload: SendIn,
    idempotency_key_header: str | None = Header(None, alias="Idempotency-Key", min_length=1, max_length=64),
):
    """Send a message to the fan in the creator's name (through the delivery pipeline): 201 with
    the queued message; 200 with the same message when the idempotency key was already used; 409
    when the conversation moved on since ``seen_message_count`` (a colleague answered, the fan
    wrote again)."""
    membership = api_membership(request)
    conversation = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    require(membership, Perm.SEND_MESSAGES, creator=conversation.creator)
    key = (payload.idempotency_key or idempotency_key_header or "").strip()
    if key:
        existing = Message.objects.for_agency(membership.agency_id).filter(idempotency_key=key).first()
        if existing is not None:
            if existing.conversation_id != conversation.pk:
                raise ConflictError(
                    "This idempotency key was already used for another message: use a new key per message.",
                    field="idempotency_key",
                )
            return Status(200, existing)
    draft = (
        selectors.draft_get_for_member(membership=membership, draft_id=payload.draft_id)
        if payload.draft_id is not None
        else None
    )
    template = (
        selectors.template_get_for_member(membership=membership, template_id=payload.template_id)
        if payload.template_id is not None
        else None
    )
    with fields_renamed(SEND_FIELDS):
        message = services.message_send(
            membership=membership,
            conversation=conversation,
            text=payload.text,
            ppv_price=payload.ppv_price,
            media_count=payload.media_count,
            draft=draft,
            template=template,
            idempotency_key=key or None,
            seen_message_count=payload.seen_message_count,
        )
    return Status(201, message)


@router.post("/conversations/{conversation_id}/read", response=ConversationOut, tags=["inbox"])
def conversation_read(request: HttpRequest, conversation_id: Id):
    """Mark the conversation read (its unread count goes to 0); answers it."""
    membership = api_membership(request)
    conversation = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    services.conversation_mark_read(membership=membership, conversation=conversation)
    conversation.unread_count = 0
    return conversation


SINCE = Query(None, description="Sent at or after (ISO 8601; UTC when it has no offset).")
UNTIL = Query(None, description="Sent before (ISO 8601; UTC when it has no offset).")


def _utc(moment: datetime | None, field: str) -> datetime | None:
    """The moment in UTC (a time without an offset is read as UTC); one the database cannot hold
    (year 1 an hour east of Greenwich is year 0 in UTC) is a 400 naming the field."""
    if moment is None:
        return None
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ApplicationError("That time is out of range.", field=field) from None


@router.get("/audit", response=list[AuditOut], tags=["audit"])
@paginate(page_size=50)
def audit_list(
    request: HttpRequest,
    creator_id: int | None = Query(None, ge=1, le=MAX_ID),
    membership_id: int | None = Query(None, ge=1, le=MAX_ID, description="The member who sent them."),
    source: SourceName | None = None,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
):
    """Every message sent in a creator's name, newest first: who sent it, whether it came from an
    AI draft or a template, and how much the member edited it. Owners and managers."""
    membership = api_membership(request)
    require_role_read(membership, Perm.EDIT)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
    sent_by_id = None
    if membership_id is not None:
        sent_by_id = member_get(agency_id=membership.agency_id, membership_id=membership_id).user_id
    since, until = _utc(since, "since"), _utc(until, "until")
    if since is not None and until is not None and until <= since:
        raise ApplicationError("“until” must be after “since”.", field="until")
    return selectors.audit_list(
        membership=membership,
        creator_id=creator_id,
        sent_by_id=sent_by_id,
        source=source or "",
        since=since,
        until=until,
    )
