"""The chatter inbox: one list across the creators a member may see, a conversation with its fan
sidebar, and the composer that sends through ``message_send``.

Every page works without JavaScript (links, full-page form posts and redirects); with htmx the
same views answer the fragment that changed (``template.html#partial``). Live updates, the soft
lock's heartbeat and streamed AI drafts go over the inbox websocket (consumers.py) and
static/js/inbox.js; the no-JS fallback for drafts is a plain form post (``conversation_drafts``).

Opening a conversation marks it read and takes the soft lock (for members who may send). Nothing
is sent to a fan unless the member presses Send: drafts and templates only fill the composer.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.html import escape
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, has_perm
from apps.accounts.selectors import creator_list
from apps.core.errors import ApplicationError, form_add_error
from apps.delivery.connectors import text_limit
from apps.messaging import selectors, services
from apps.messaging.forms.inbox import DraftRequestForm, FanNoteForm, FanTagsForm, InboxFilterForm, MessageForm
from apps.messaging.models import Conversation, Draft, FanTag, MessageTemplate
from apps.messaging.segments import SegmentFiltersUnreadable
from apps.messaging.templating import template_render
from apps.messaging.tiers import badges, rules_for

PAGE_SIZE = 50
HISTORY_PAGE = 30
PENDING_DRAFTS_SHOWN = 6
TAG_CHOICES = 200  # tags offered in the filter's suggestions


# --- The list ---------------------------------------------------------------------------------


@member_required()
def inbox(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    segments = list(selectors.segment_list(membership=membership))
    form = InboxFilterForm(request.GET, creators=creators, segments=segments)
    conversations = Conversation.objects.none()
    if form.is_valid():
        data = form.cleaned_data
        try:
            conversations = selectors.conversation_list(
                membership=membership,
                creator_id=data["creator"],
                segment=form.segments.get(data["segment"]) if data["segment"] else None,
                tag=data["tag"],
                search=data["q"],
                waiting_only=data["waiting"],
            )
        except SegmentFiltersUnreadable as error:  # listed as nobody, with the filter to fix named
            form.add_error("segment", error.message)
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = _rows(membership, list(page.object_list))
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "tags": _tag_choices(membership),
        "has_conversations": bool(rows) or _has_any_conversation(membership),
    }
    template = "messaging/inbox/index.html#inbox-list" if request.htmx else "messaging/inbox/index.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@dataclass
class Row:
    conversation: Conversation
    tier: str
    tier_label: str
    lifecycle: str
    lifecycle_label: str
    lock_holder: str  # the name of another member answering it now, else ""
    waited: str  # "12 min" since the fan has been waiting, "" when nobody waits


def waited(since, now) -> str:
    """How long a fan has been waiting, short: "<1 min", "12 min", "2 h 5 min", "3 days"."""
    minutes = int((now - since).total_seconds() // 60)
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days = hours // 24
    return f"{days} day{'s' if days != 1 else ''}"


def _rows(membership: Membership, conversations: list[Conversation]) -> list[Row]:
    if not conversations:
        return []
    rules = rules_for(membership.agency_id)
    now = timezone.now()
    rows = []
    for conversation in conversations:
        fan_badges = badges(conversation.fan, rules, now)
        rows.append(
            Row(
                conversation=conversation,
                tier=fan_badges.tier.value,
                tier_label=fan_badges.tier.label,
                lifecycle=fan_badges.lifecycle.value,
                lifecycle_label=fan_badges.lifecycle.label,
                lock_holder=_lock_holder(conversation, membership, now),
                waited=waited(conversation.waiting_since, now) if conversation.needs_reply else "",
            )
        )
    return rows


def _lock_holder(conversation: Conversation, membership: Membership, now) -> str:
    locked = conversation.locked_by_id and conversation.locked_until and conversation.locked_until > now
    if not locked or conversation.locked_by_id == membership.user_id or conversation.locked_by is None:
        return ""
    return conversation.locked_by.get_short_name()


def _tag_choices(membership: Membership) -> list[str]:
    visible = creator_list(membership=membership).values("pk")
    names = (
        FanTag.objects.for_agency(membership.agency_id)
        .filter(creator__in=visible)
        .order_by("name")
        .values_list("name", flat=True)
        .distinct()
    )
    return list(names[:TAG_CHOICES])


def _has_any_conversation(membership: Membership) -> bool:
    visible = creator_list(membership=membership).values("pk")
    return Conversation.objects.for_agency(membership.agency_id).filter(creator__in=visible).exists()


# --- One conversation ---------------------------------------------------------------------------


@member_required()
def conversation(request: HttpRequest, conversation_id: int) -> HttpResponse:
    membership = request.tenant.membership
    thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    services.conversation_mark_read(membership=membership, conversation=thread)
    if _can_send(membership, thread):
        services.conversation_lock(membership=membership, conversation=thread)
    thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    form = None
    if _can_send(membership, thread):
        form = _composer(membership, thread, initial=_initial_from_draft(request, membership, thread))
    before_id = _positive_int(request.GET.get("before_id"))
    return _render_conversation(request, membership, thread, form, before_id=before_id)


@member_required()
def conversation_history(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """A page of older messages (``before_id``), or the latest page again (a live refresh)."""
    membership = request.tenant.membership
    thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    before_id = _positive_int(request.GET.get("before_id"))
    if before_id is None:
        services.conversation_mark_read(membership=membership, conversation=thread)
        history = render(request, "messaging/inbox/conversation.html#history", _history_context(thread, None))
        lock = render(request, "messaging/inbox/conversation.html#lock", _lock_context(membership, thread, True))
        return HttpResponse(history.content + lock.content)
    return render(request, "messaging/inbox/conversation.html#earlier", _history_context(thread, before_id))


@member_required(Perm.SEND_MESSAGES)
@require_POST
def conversation_send(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """Send the composer's message, or (``action=template``) fill the composer from a template."""
    membership = request.tenant.membership
    thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    if not _can_send(membership, thread):
        raise PermissionDenied("Your role does not allow sending for this creator.")
    templates = _templates(membership, thread)
    form = MessageForm(request.POST, templates=templates, text_limit=text_limit(thread.fan.platform))
    if request.POST.get("action") == "template":
        return _insert_template(request, membership, thread, form, templates)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.message_send(
                membership=membership,
                conversation=thread,
                text=data["text"],
                ppv_price=data["ppv_price"],
                media_count=data["media_count"],
                draft=_draft_for(membership, thread, data["draft"], form),
                template=next((t for t in templates if t.pk == data["template"]), None),
                idempotency_key=data["idempotency_key"],
                seen_message_count=data["seen_message_count"],
            )
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            # Answered: colleagues see the conversation free again (typing takes it back).
            services.conversation_unlock(membership=membership, conversation=thread)
    if form.errors:
        # The member reads what changed (a colleague's answer) and may send again.
        thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
        if "seen_message_count" not in form.errors:
            form.data = form.data.copy()
            form.data["seen_message_count"] = str(thread.message_count)
        if request.htmx:
            return _render_composer(request, membership, thread, form, with_history=True)
        return _render_conversation(request, membership, thread, form)
    if request.htmx:
        thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
        return _render_composer(request, membership, thread, _composer(membership, thread), with_history=True)
    messages.success(request, "Message queued for sending.")
    return redirect("messaging:conversation", conversation_id=thread.pk)


@member_required(Perm.SEND_MESSAGES)
@require_POST
def conversation_drafts(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """Suggest drafts without JavaScript: generated in the request, shown on the conversation."""
    membership = request.tenant.membership
    thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    if not _can_send(membership, thread):
        raise PermissionDenied("Your role does not allow drafting for this creator.")
    form = DraftRequestForm(request.POST)
    kind = form.cleaned_data["kind"] if form.is_valid() else "reply"
    from apps.messaging.drafts import drafts_generate

    try:
        drafts = drafts_generate(membership=membership, conversation=thread, kind=kind)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{len(drafts)} drafts suggested: use one, edit it, then send.")
    return redirect(reverse("messaging:conversation", args=[thread.pk]) + "#drafts")


@member_required(Perm.SEND_MESSAGES)
@require_POST
def draft_discard(request: HttpRequest, draft_id: int) -> HttpResponse:
    membership = request.tenant.membership
    draft = selectors.draft_get_for_member(membership=membership, draft_id=draft_id)
    from apps.messaging.drafts import draft_discard as discard

    try:
        discard(membership=membership, draft=draft)
    except ApplicationError as error:
        if request.htmx:
            return HttpResponse(f'<p class="danger" role="alert">{escape(error.message)}</p>')
        messages.error(request, error.message)
    else:
        if request.htmx:
            return HttpResponse("")
    return redirect(reverse("messaging:conversation", args=[draft.conversation_id]) + "#drafts")


@member_required(Perm.SEND_MESSAGES)
@require_POST
def conversation_note(request: HttpRequest, conversation_id: int) -> HttpResponse:
    membership = request.tenant.membership
    thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    form = FanNoteForm(request.POST)
    if form.is_valid():
        try:
            services.fan_note_add(membership=membership, fan=thread.fan, text=form.cleaned_data["text"])
        except ApplicationError as error:
            form_add_error(form, error)
    if not form.errors:
        form = FanNoteForm()
    elif not request.htmx:
        return _render_conversation(request, membership, thread, _composer_or_none(membership, thread), note_form=form)
    if request.htmx:
        return render(request, "messaging/inbox/conversation.html#notes", _notes_context(thread, form))
    messages.success(request, "Note added.")
    return redirect(reverse("messaging:conversation", args=[thread.pk]) + "#notes")


@member_required(Perm.SEND_MESSAGES)
@require_POST
def conversation_tags(request: HttpRequest, conversation_id: int) -> HttpResponse:
    membership = request.tenant.membership
    thread = selectors.conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    form = FanTagsForm(request.POST)
    if form.is_valid():
        try:
            services.fan_tags_set(membership=membership, fan=thread.fan, tags=form.cleaned_data["tags"])
        except ApplicationError as error:
            form_add_error(form, error)
    if form.errors and not request.htmx:
        return _render_conversation(request, membership, thread, _composer_or_none(membership, thread), tags_form=form)
    if request.htmx:
        return render(request, "messaging/inbox/conversation.html#tags", _tags_context(thread, form))
    messages.success(request, "Tags saved.")
    return redirect(reverse("messaging:conversation", args=[thread.pk]) + "#tags")


# --- Helpers --------------------------------------------------------------------------------------


def _can_send(membership: Membership, thread: Conversation) -> bool:
    return has_perm(membership, Perm.SEND_MESSAGES, creator=thread.creator)


def _positive_int(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _templates(membership: Membership, thread: Conversation) -> list[MessageTemplate]:
    return list(selectors.template_list(membership=membership, creator_id=thread.creator_id))


def _composer(membership: Membership, thread: Conversation, initial: dict | None = None) -> MessageForm:
    initial = {
        "seen_message_count": thread.message_count,
        "idempotency_key": services.new_idempotency_key(),
        "media_count": 0,
        **(initial or {}),
    }
    return MessageForm(
        initial=initial, templates=_templates(membership, thread), text_limit=text_limit(thread.fan.platform)
    )


def _composer_or_none(membership: Membership, thread: Conversation) -> MessageForm | None:
    return _composer(membership, thread) if _can_send(membership, thread) else None


def _initial_from_draft(request: HttpRequest, membership: Membership, thread: Conversation) -> dict:
    """``?draft=<id>``: the no-JS "Use" of a draft fills the composer with its text."""
    draft_id = _positive_int(request.GET.get("draft"))
    if draft_id is None:
        return {}
    try:
        draft = selectors.draft_get_for_member(membership=membership, draft_id=draft_id)
    except Http404:
        return {}
    if draft.conversation_id != thread.pk:
        return {}
    return {"text": draft.text, "draft": draft.pk}


def _draft_for(membership: Membership, thread: Conversation, draft_id: int | None, form: MessageForm) -> Draft | None:
    if draft_id is None:
        return None
    draft = Draft.objects.for_agency(membership.agency_id).filter(pk=draft_id, conversation=thread).first()
    if draft is None:
        raise ApplicationError("That draft is no longer available; the text is kept.", field="text")
    return draft


def _insert_template(request, membership, thread, form: MessageForm, templates) -> HttpResponse:
    """Fill the composer with the chosen template, rendered for this fan; nothing is sent."""
    chosen = _positive_int(request.POST.get("template"))
    template = next((t for t in templates if t.pk == chosen), None)
    data = form.data.copy()
    if template is None:
        form = MessageForm(data, templates=templates, text_limit=text_limit(thread.fan.platform))
        form.is_valid()
        form.add_error("template", "Choose one of the templates.")
    else:
        try:
            data["text"] = template_render(template.text, fan=thread.fan, creator=thread.creator).text
        except ApplicationError as error:
            data["text"] = template.text
            messages.error(request, error.message)
        data["draft"] = ""
        form = MessageForm(data, templates=templates, text_limit=text_limit(thread.fan.platform))
    if request.htmx:
        return _render_composer(request, membership, thread, form)
    return _render_conversation(request, membership, thread, form)


def _history_context(thread: Conversation, before_id: int | None) -> dict:
    # One more than a page says whether there are earlier ones (a full page may be all there is).
    history = selectors.message_page(conversation=thread, before_id=before_id, limit=HISTORY_PAGE + 1)
    has_earlier = len(history) > HISTORY_PAGE
    history = history[-HISTORY_PAGE:]  # newest last: the extra one is the oldest
    return {
        "conversation": thread,
        "history": history,
        "has_earlier": has_earlier,
        "earliest_id": history[0].pk if history else None,
    }


def _notes_context(thread: Conversation, form: FanNoteForm | None = None) -> dict:
    notes = list(thread.fan.notes.select_related("author")[:20])
    return {"conversation": thread, "notes": notes, "note_form": form or FanNoteForm()}


def _tags_context(thread: Conversation, form: FanTagsForm | None = None) -> dict:
    tags = [tag.name for tag in thread.fan.tags.all()]
    if form is None or not form.errors:
        form = FanTagsForm(initial={"tags": ", ".join(tags)})
    return {"conversation": thread, "tags": tags, "tags_form": form}


def _render_composer(request, membership, thread, form, *, with_history: bool = False) -> HttpResponse:
    """The composer (and after a send or a conflict, the history and the lock banner) as
    out-of-band fragments: the form posts with ``hx-swap="none"``."""
    context = {"conversation": thread, "form": form, "oob": True, "text_limit": text_limit(thread.fan.platform)}
    parts = [render(request, "messaging/inbox/conversation.html#composer", context)]
    if with_history:
        parts.append(
            render(
                request, "messaging/inbox/conversation.html#history", {**_history_context(thread, None), "oob": True}
            )
        )
        parts.append(render(request, "messaging/inbox/conversation.html#lock", _lock_context(membership, thread, True)))
    return HttpResponse(b"".join(part.content for part in parts))


def _lock_context(membership: Membership, thread: Conversation, oob: bool = False) -> dict:
    return {"conversation": thread, "lock_holder": _lock_holder(thread, membership, timezone.now()), "oob": oob}


def _render_conversation(
    request: HttpRequest,
    membership: Membership,
    thread: Conversation,
    form: MessageForm | None,
    *,
    note_form: FanNoteForm | None = None,
    tags_form: FanTagsForm | None = None,
    before_id: int | None = None,
) -> HttpResponse:
    fan = thread.fan
    rules = rules_for(membership.agency_id)
    can_send = form is not None
    notes, tags = _notes_context(thread, note_form), _tags_context(thread, tags_form)
    if not can_send:
        notes["note_form"] = tags["tags_form"] = None
    pending = selectors.draft_list_pending(conversation=thread)[-PENDING_DRAFTS_SHOWN:] if can_send else []
    context = {
        **_history_context(thread, before_id),
        **notes,
        **tags,
        **_lock_context(membership, thread),
        "fan": fan,
        "badges": badges(fan, rules),
        "purchases": selectors.fan_purchases_recent(fan=fan),
        "form": form,
        "can_send": can_send,
        "drafts": pending,
        "text_limit": text_limit(fan.platform),
    }
    return render(request, "messaging/inbox/conversation.html", context)


urlpatterns = [
    path("inbox/", inbox, name="inbox"),
    path("inbox/c/<int:conversation_id>/", conversation, name="conversation"),
    path("inbox/c/<int:conversation_id>/history/", conversation_history, name="conversation-history"),
    path("inbox/c/<int:conversation_id>/send/", conversation_send, name="conversation-send"),
    path("inbox/c/<int:conversation_id>/drafts/", conversation_drafts, name="conversation-drafts"),
    path("inbox/c/<int:conversation_id>/note/", conversation_note, name="conversation-note"),
    path("inbox/c/<int:conversation_id>/tags/", conversation_tags, name="conversation-tags"),
    path("inbox/drafts/<int:draft_id>/discard/", draft_discard, name="draft-discard"),
]
