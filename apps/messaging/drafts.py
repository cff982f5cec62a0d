"""MessagePersonalizationService: AI drafts of a reply or a PPV upsell, scored and explained,
waiting for a member to use, edit and send one. Nothing here sends anything to a fan.

Public functions (the inbox page, its websocket and the API call these):

* ``drafts_stream(membership=…, conversation_id=…, kind="reply", count=3)``: an async iterator of
  ``DraftEvent``: ``chunk`` (text as it streams, per draft ``index``), then per draft one
  ``draft`` (the saved ``Draft``) or one ``error`` (why that draft is missing), then ``done``;
* ``drafts_generate(membership=…, conversation=…, kind="reply", count=3)``: the same, waited for;
  the saved drafts (``DraftsUnavailable`` when none could be written);
* ``draft_discard(membership=…, draft=…)``;
* re-exported from their modules: ``personalization_score`` and ``template_score``
  (personalization.py), ``ppv_price_suggestion`` (pricing.py).

How one batch runs:

1. **Authorise**: the conversation is fetched through the member's scope (another tenant's
   answers 404) and the member needs ``send_messages`` for its creator (a viewer: 403). ``kind``
   is reply or upsell, ``count`` 1 to 3 (400 otherwise).
2. **Prompt** (apps/messaging/prompts.py): persona, rules, the fan's profile and a bounded window
   of the conversation, fan text in escaped data blocks behind a per-request boundary. For an
   upsell, the price suggestion (pricing.py) is computed first and put in the task.
3. **Generate**: one gateway request per draft (features ``inbox.reply`` / ``inbox.upsell``), each
   with its own angle, all in flight at once so the three cards fill side by side. Caching is off
   (``cache=False``): a draft is for one conversation at one moment; the ledger records usage
   under the feature name. The built-in provider answers offline (``task`` reply or ppv).
4. **Live check**: every ``LIVE_CHECK_CHARS`` of a streaming draft, the new text (with the
   overlap the rules need) goes through ``stream_violations``; a draft that breaks the minors or
   non-consent rule is stopped at once and becomes an ``error``.
5. **Final check**: each finished draft goes through ``apply_policy`` with the direct-message
   rules (off-platform payment or contact, meeting in person, refunds or free content, breaking
   character, leaking the prompt — ``direct_message=True`` with the protected prompt text), plus
   the creator's do-not-say lists. A refused draft is an ``error`` for its index and never a
   ``Draft`` row; words to avoid are removed from a passing one.
6. **Score and save**: personalization.py scores the text against the fan, the creator's voice
   and the recent messages; the draft is saved ``pending`` with score, factors, suggestions, the
   provider, and for an upsell the suggested price and its reason.

Older pending drafts of the conversation are left as they are: sending one discards the others
(services.message_send), and ``draft_discard`` drops one.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require
from apps.ai import gateway
from apps.ai.types import AIError, AIRequest, AIResponse, StreamChunk, StreamComplete, StreamError
from apps.ai.types import Message as AIMessage
from apps.core.asyncdb import database_call
from apps.core.errors import ApplicationError
from apps.messaging import prompts
from apps.messaging.models import (
    Conversation,
    Draft,
    DraftKind,
    DraftStatus,
    FanNote,
    FanRules,
    FanTag,
    Message,
    Purchase,
)
from apps.messaging.personalization import Score, fan_call_name, personalization_score, template_score
from apps.messaging.pricing import PriceSuggestion, ppv_price_suggestion
from apps.messaging.selectors import conversation_get_for_member
from apps.messaging.tiers import badges, rules_for
from apps.safety import PROMPT_LEAK, STREAM_OVERLAP, apply_policy, stream_violations

__all__ = [
    "DraftEvent",
    "DraftsUnavailable",
    "PriceSuggestion",
    "Score",
    "draft_discard",
    "drafts_generate",
    "drafts_stream",
    "personalization_score",
    "ppv_price_suggestion",
    "template_score",
]

logger = logging.getLogger(__name__)

MAX_DRAFTS = 3
LIVE_CHECK_CHARS = 240
MAX_OUTPUT_TOKENS = 400
KIND_MESSAGE = "Drafts are replies or upsells."
COUNT_MESSAGE = f"Ask for 1 to {MAX_DRAFTS} drafts."
FAILED_MESSAGE = "This draft could not be written."
LEAK_MESSAGE = "This draft repeated the instructions it was written from; it was discarded."


class DraftsUnavailable(ApplicationError):
    """No draft of the batch could be written (every one failed or was refused)."""

    status_code = 502
    code = "drafts_unavailable"


@dataclass
class DraftEvent:
    type: str  # "chunk" | "draft" | "error" | "done"
    index: int = 0
    text: str = ""
    draft: Draft | None = None
    message: str = ""


@dataclass
class Prepared:
    """Everything a batch needs once authorised: the prompt, the requests, what scoring reads."""

    membership: Membership
    conversation: Conversation
    kind: str
    count: int
    prompt: prompts.DraftPrompt
    requests: list[AIRequest]
    rules: FanRules
    purchases: list[Purchase] = field(default_factory=list)
    price: PriceSuggestion | None = None


def _validate(kind: str, count: int) -> None:
    if kind not in DraftKind.values:
        raise ApplicationError(KIND_MESSAGE, field="kind")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_DRAFTS:
        raise ApplicationError(COUNT_MESSAGE, field="count")


def drafts_prepare(
    *,
    membership: Membership,
    conversation: Conversation | None = None,
    conversation_id: int | None = None,
    kind: str = DraftKind.REPLY,
    count: int = MAX_DRAFTS,
) -> Prepared:
    """Authorise, read what the prompt needs and build one request per draft (no model call)."""
    _validate(kind, count)
    if conversation is None:
        conversation = conversation_get_for_member(membership=membership, conversation_id=conversation_id)
    elif conversation.agency_id != membership.agency_id:
        raise Http404("No such conversation.")
    creator, fan = conversation.creator, conversation.fan
    require(membership, Perm.SEND_MESSAGES, creator=creator)
    rules = rules_for(membership.agency_id)
    messages = list(
        Message.objects.filter(conversation=conversation).order_by("-created_at", "-id")[: prompts.WINDOW_MESSAGES]
    )
    notes = list(FanNote.objects.filter(fan=fan).order_by("-created_at", "-id")[: prompts.NOTES])
    tags = list(FanTag.objects.filter(fan=fan).order_by("name").values_list("name", flat=True)[:20])
    purchases = list(
        Purchase.objects.filter(fan=fan).select_related("message").order_by("-purchased_at", "-id")[: prompts.PURCHASES]
    )
    price = ppv_price_suggestion(fan=fan, creator=creator, rules=rules) if kind == DraftKind.UPSELL else None
    prompt = prompts.build_prompt(
        creator=creator, fan=fan, badges=badges(fan, rules), messages=messages, notes=notes, tags=tags,
        purchases=purchases, kind=kind, count=count, price=price,
    )  # fmt: skip
    context = {
        "creator": {
            "display_name": creator.display_name, "niche": creator.niche, "persona": creator.persona,
            "voice": creator.voice, "sample_texts": creator.sample_texts, "avoid_words": creator.avoid_words,
            "avoid_topics": creator.avoid_topics, "language": creator.language,
        },
        "fan": {"display_name": fan_call_name(fan), "total_spent": float(fan.total_spent)},
        "platform": fan.platform,
        "task": "ppv" if kind == DraftKind.UPSELL else "reply",
    }  # fmt: skip
    last_in = next((m for m in reversed(prompt.window) if m.direction == "in" and m.text), None)
    if last_in is not None:
        context["reply_to"] = last_in.text[: prompts.MESSAGE_CHARS]
    requests = []
    for index, task in enumerate(prompt.tasks):
        requests.append(
            AIRequest(
                feature=f"inbox.{kind}",
                system=prompt.system,
                messages=[AIMessage("user", task)],
                agency_id=membership.agency_id,
                creator_id=creator.pk,
                user_id=membership.user_id,
                temperature=0.9,
                max_tokens=min(settings.AI_MAX_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS),
                cache=False,
                context={**context, "angle": prompt.angles[index]},
            )
        )
    return Prepared(membership, conversation, kind, count, prompt, requests, rules, purchases, price)


_BLOCK_TAG = re.compile(r"data-[0-9a-f]{16}")
_QUOTES = {'"': '"', "“": "”", "«": "»", "'": "'"}


def _tidy(text: str) -> str:
    """The model's answer as a message: surrounding whitespace and one pair of wrapping quotes off."""
    text = (text or "").strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1] and text.count(text[0]) == (2 if text[0] == text[-1] else 1):
        text = text[1:-1].strip()
    return re.sub(r"\n{3,}", "\n\n", text)


def draft_check(prepared: Prepared, text: str) -> tuple[str, str]:
    """(the text to keep, "") or ("", why it was refused): the safety policy with the
    direct-message rules, the prompt-leak check and the creator's do-not-say lists."""
    text = _tidy(text)
    if not text:
        return "", "The model's answer was empty."
    if prepared.prompt.boundary in text or _BLOCK_TAG.search(text):
        return "", LEAK_MESSAGE  # this request's boundary, or the shape of any: nothing a fan should read
    creator, fan = prepared.conversation.creator, prepared.conversation.fan
    outcome = apply_policy(
        text,
        avoid_words=creator.avoid_words,
        avoid_topics=creator.avoid_topics,
        platform=fan.platform,
        direct_message=True,
        prompt=prepared.prompt.protected,
    )
    if outcome.blocked:
        if any(v.rule == PROMPT_LEAK for v in outcome.violations):
            return "", LEAK_MESSAGE  # a leaked prompt trips other rules too (it names them): say what it is
        return "", f"Refused: {outcome.violations[0].message}"
    if not outcome.text.strip():
        return "", f"Nothing was left once {creator.display_name}'s words and topics to avoid were removed."
    return outcome.text.strip(), ""


def draft_save(prepared: Prepared, text: str, provider: str) -> Draft:
    """Score ``text`` (already checked) and save it as a pending draft."""
    conversation = prepared.conversation
    score = personalization_score(
        text=text,
        fan=conversation.fan,
        creator=conversation.creator,
        recent_messages=prepared.prompt.window,
        purchases=prepared.purchases,
        rules=prepared.rules,
    )
    return Draft.objects.create(
        agency_id=conversation.agency_id,
        creator_id=conversation.creator_id,
        conversation=conversation,
        requested_by_id=prepared.membership.user_id,
        kind=prepared.kind,
        text=text,
        score=score.score,
        factors=score.factors,
        suggestions=score.suggestions,
        suggested_price=prepared.price.price if prepared.price else None,
        price_reason=prepared.price.reason if prepared.price else "",
        provider=provider[:40],
    )


def _finish(prepared: Prepared, text: str, provider: str) -> tuple[Draft | None, str]:
    kept, problem = draft_check(prepared, text)
    if problem:
        return None, problem
    return draft_save(prepared, kept, provider), ""


def _error_message(error: AIError) -> str:
    return f"{FAILED_MESSAGE} {error.message}".strip()


# --- Streaming --------------------------------------------------------------------------------


async def _stream_one(prepared: Prepared, index: int, emit) -> None:
    """Stream draft ``index`` into ``emit``: its chunks, then its draft or its error."""
    parts: list[str] = []
    received = checked = 0
    stream = gateway.stream(prepared.requests[index])
    try:
        async for event in stream:
            if isinstance(event, StreamChunk):
                parts.append(event.text)
                received += len(event.text)
                if received - checked >= LIVE_CHECK_CHARS:
                    # Only the new text and an overlap: a long draft costs linear time. The whole
                    # draft is checked again once finished.
                    parts[:] = ["".join(parts)]
                    start = max(0, checked - STREAM_OVERLAP)
                    if start:
                        start = parts[0].find(" ", start) + 1
                    checked = received
                    blocking = stream_violations(parts[0][start:])
                    if blocking:
                        await stream.aclose()
                        await emit(DraftEvent("error", index, message=f"Stopped: {blocking[0].message}"))
                        return
                await emit(DraftEvent("chunk", index, text=event.text))
            elif isinstance(event, StreamError):
                await emit(DraftEvent("error", index, message=_error_message(event.error)))
                return
            elif isinstance(event, StreamComplete):
                response: AIResponse = event.response
                draft, problem = await database_call(_finish)(prepared, response.text, response.provider)
                if draft is None:
                    await emit(DraftEvent("error", index, message=problem))
                else:
                    await emit(DraftEvent("draft", index, text=draft.text, draft=draft))
                return
    finally:
        await stream.aclose()


async def drafts_stream(
    *,
    membership: Membership,
    conversation_id: int,
    kind: str = DraftKind.REPLY,
    count: int = MAX_DRAFTS,
    prepared: Prepared | None = None,
) -> AsyncIterator[DraftEvent]:
    """Stream ``count`` drafts side by side (see the module docstring). Authorisation and bad
    input raise from the first iteration (Http404, PermissionDenied, ApplicationError), before
    any model call; ``prepared`` is ``drafts_prepare``'s result when the caller ran it already.
    Closing the iterator cancels every upstream call."""
    if prepared is None:
        prepared = await database_call(drafts_prepare)(
            membership=membership, conversation_id=conversation_id, kind=kind, count=count
        )
    queue: asyncio.Queue[DraftEvent | None] = asyncio.Queue()

    async def run(index: int) -> None:
        try:
            await _stream_one(prepared, index, queue.put)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("draft %s of conversation %s failed", index, prepared.conversation.pk)
            await queue.put(DraftEvent("error", index, message=FAILED_MESSAGE))
        finally:
            queue.put_nowait(None)

    tasks = [asyncio.ensure_future(run(index)) for index in range(prepared.count)]
    try:
        remaining = len(tasks)
        while remaining:
            event = await queue.get()
            if event is None:
                remaining -= 1
                continue
            yield event
        yield DraftEvent("done")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- Waited for -------------------------------------------------------------------------------


async def _complete_all(requests: list[AIRequest]) -> list[AIResponse | AIError]:
    async def one(request: AIRequest) -> AIResponse | AIError:
        try:
            return await gateway.generate(request)
        except AIError as error:
            return error

    return list(await asyncio.gather(*(one(request) for request in requests)))


def drafts_generate_all(prepared: Prepared) -> tuple[list[Draft], list[tuple[int, str]]]:
    """Every draft of the batch, waited for: (saved drafts, [(index, why it is missing)])."""
    answers = async_to_sync(_complete_all)(prepared.requests)
    drafts: list[Draft] = []
    errors: list[tuple[int, str]] = []
    for index, answer in enumerate(answers):
        if isinstance(answer, AIError):
            errors.append((index, _error_message(answer)))
            continue
        draft, problem = _finish(prepared, answer.text, answer.provider)
        if draft is None:
            errors.append((index, problem))
        else:
            drafts.append(draft)
    return drafts, errors


def drafts_generate(
    *, membership: Membership, conversation: Conversation, kind: str = DraftKind.REPLY, count: int = MAX_DRAFTS
) -> list[Draft]:
    """Write ``count`` drafts and wait for them (same rules as ``drafts_stream``); the saved
    drafts, in order. ``DraftsUnavailable`` (with the first reason) when none could be written."""
    prepared = drafts_prepare(membership=membership, conversation=conversation, kind=kind, count=count)
    drafts, errors = drafts_generate_all(prepared)
    if not drafts:
        raise DraftsUnavailable(errors[0][1] if errors else FAILED_MESSAGE)
    return drafts


def draft_discard(*, membership: Membership, draft: Draft) -> None:
    """Drop a pending draft. A sent draft stays what it is (400); discarding twice is harmless."""
    if draft.agency_id != membership.agency_id:
        raise Http404("No such draft.")
    require(membership, Perm.SEND_MESSAGES, creator=draft.creator)
    if draft.status == DraftStatus.SENT:
        raise ApplicationError("This draft was sent; it cannot be discarded.", field="draft")
    Draft.objects.filter(pk=draft.pk, status=DraftStatus.PENDING).update(status=DraftStatus.DISCARDED)
    draft.status = DraftStatus.DISCARDED
