"""API: saved segments (with live counts and their fans) and message templates (with a per-fan
rendering).

Reads follow creator visibility (an item for all creators, or for a creator the caller may see).
Writes go through apps/messaging/library.py, which decides who may change what: an item for one
creator needs the send permission on it, an item for all creators or another member's item needs
the edit permission; a name already used in the agency is a 409 on ``name``; a bad filter key or
an unknown template variable is a 400 naming it. A saved segment whose filters can no longer be
read is listed and shown with ``fan_count`` null and ``filters_error`` naming the filter, and its
count and fans answer 409 ``segment_filters_invalid`` (never every fan, nor none, in silence).
"""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where names such as TierName would not be found.
from django.http import HttpRequest
from ninja import Query, Router, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.selectors import creator_get_for_member
from apps.core.errors import ApplicationError
from apps.core.openapi import MAX_ID, ErrorOut, Id
from apps.messaging import library, selectors
from apps.messaging.api.common import PageHookPagination
from apps.messaging.models import Conversation
from apps.messaging.personalization import template_score
from apps.messaging.prompts import WINDOW_MESSAGES
from apps.messaging.schemas import (
    CategoryName,
    CountOut,
    FanOut,
    RenderOut,
    SegmentIn,
    SegmentOut,
    SegmentPatchIn,
    TemplateIn,
    TemplateOut,
    TemplatePatchIn,
    request_rules,
)
from apps.messaging.segments import SegmentFiltersUnreadable, segment_filters_stored

router = Router()


def _creator(membership, creator_id: int | None):
    return creator_get_for_member(membership=membership, creator_id=creator_id) if creator_id is not None else None


# --- Segments -----------------------------------------------------------------------------------


def _with_counts_for(membership, segments: list) -> None:
    counts = selectors.segment_counts(membership=membership, segments=segments)
    for segment in segments:
        segment.fan_count, segment.filters_error = counts[segment.pk], None
        if segment.fan_count is None:
            try:
                segment_filters_stored(segment)
            except SegmentFiltersUnreadable as error:
                segment.filters_error = error.message


def _with_counts(request: HttpRequest, segments: list) -> None:
    _with_counts_for(api_membership(request), segments)


def _segment_out(membership, segment):
    _with_counts_for(membership, [segment])
    return segment


@router.get("/segments", response=list[SegmentOut], tags=["segments"])
@paginate(PageHookPagination, complete=_with_counts, page_size=25)
def segment_list(request: HttpRequest, creator_id: int | None = Query(None, ge=1, le=MAX_ID)):
    """Saved segments the caller may see, each with its live fan count (one query for the page)."""
    membership = api_membership(request)
    segments = selectors.segment_list(membership=membership).select_related("created_by")
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
        segments = segments.filter(creator_id=creator_id)
    return segments


@router.post("/segments", response={201: SegmentOut, 409: ErrorOut}, tags=["segments"])
def segment_create(request: HttpRequest, payload: SegmentIn):
    """Save a live filter over fans (``creator_id`` null: over every creator the reader may see)."""
    membership = api_membership(request)
    segment = library.segment_create(
        membership=membership,
        name=payload.name,
        filters=payload.filters,
        creator=_creator(membership, payload.creator_id),
    )
    return Status(201, _segment_out(membership, segment))


@router.get("/segments/{segment_id}", response=SegmentOut, tags=["segments"])
def segment_detail(request: HttpRequest, segment_id: Id):
    membership = api_membership(request)
    return _segment_out(membership, selectors.segment_get_for_member(membership=membership, segment_id=segment_id))


@router.patch("/segments/{segment_id}", response={200: SegmentOut, 409: ErrorOut}, tags=["segments"])
def segment_update(request: HttpRequest, segment_id: Id, payload: SegmentPatchIn):
    """Change the name, the creator (null: all creators) or the filters; omitted fields keep their value."""
    membership = api_membership(request)
    segment = selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
    given = payload.model_fields_set
    if "filters" in given and payload.filters is None:  # not "keep them": that is leaving the field out
        raise ApplicationError(
            "Segment filters must be an object of filter keys ({} for every fan); leave filters out to keep them.",
            field="filters",
        )
    creator = _creator(membership, payload.creator_id) if "creator_id" in given else segment.creator
    segment = library.segment_update(
        membership=membership,
        segment=segment,
        name=payload.name if payload.name is not None else segment.name,
        filters=payload.filters if payload.filters is not None else segment.filters,
        creator=creator,
    )
    return _segment_out(membership, segment)


@router.delete("/segments/{segment_id}", response={204: None}, tags=["segments"])
def segment_delete(request: HttpRequest, segment_id: Id):
    membership = api_membership(request)
    segment = selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
    library.segment_delete(membership=membership, segment=segment)
    return Status(204, None)


@router.get("/segments/{segment_id}/count", response={200: CountOut, 409: ErrorOut}, tags=["segments"])
def segment_count(request: HttpRequest, segment_id: Id):
    """The segment's live count: one COUNT over the fans the caller may see; 409 when its saved
    filters can no longer be read."""
    membership = api_membership(request)
    segment = selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
    return {"fan_count": selectors.segment_count(membership=membership, segment=segment)}


@router.get("/segments/{segment_id}/fans", response={200: list[FanOut], 409: ErrorOut}, tags=["segments"])
@paginate(page_size=50)
def segment_fans(request: HttpRequest, segment_id: Id):
    """The fans in the segment now, highest spend first; 409 when its saved filters can no longer be read."""
    membership = api_membership(request)
    segment = selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
    rules = request_rules(request, membership.agency_id)
    return selectors.fan_list(membership=membership, segment=segment, rules=rules).prefetch_related("tags")


# --- Templates ----------------------------------------------------------------------------------


@router.get("/templates", response=list[TemplateOut], tags=["templates"])
@paginate(page_size=50)
def template_list(
    request: HttpRequest,
    creator_id: int | None = Query(None, ge=1, le=MAX_ID),
    category: CategoryName | None = None,
):
    """Templates the caller may use: shared ones and those of creators they may see.
    ``creator_id`` gives the ones usable for that creator (its own and the shared ones)."""
    membership = api_membership(request)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
    templates = selectors.template_list(membership=membership, creator_id=creator_id).select_related("created_by")
    if category is not None:
        templates = templates.filter(category=category)
    return templates


@router.post("/templates", response={201: TemplateOut, 409: ErrorOut}, tags=["templates"])
def template_create(request: HttpRequest, payload: TemplateIn):
    """Reusable text with variables such as ``{fan.first_name|babe}``; an unknown variable is a 400."""
    membership = api_membership(request)
    template = library.template_create(
        membership=membership,
        name=payload.name,
        text=payload.text,
        category=payload.category,
        creator=_creator(membership, payload.creator_id),
    )
    return Status(201, template)


@router.get("/templates/{template_id}", response=TemplateOut, tags=["templates"])
def template_detail(request: HttpRequest, template_id: Id):
    return selectors.template_get_for_member(membership=api_membership(request), template_id=template_id)


@router.patch("/templates/{template_id}", response={200: TemplateOut, 409: ErrorOut}, tags=["templates"])
def template_update(request: HttpRequest, template_id: Id, payload: TemplatePatchIn):
    """Change any of name, text, category, creator (null: shared); omitted fields keep their value."""
    membership = api_membership(request)
    template = selectors.template_get_for_member(membership=membership, template_id=template_id)
    given = payload.model_fields_set
    creator = _creator(membership, payload.creator_id) if "creator_id" in given else template.creator
    return library.template_update(
        membership=membership,
        template=template,
        name=payload.name if payload.name is not None else template.name,
        text=payload.text if payload.text is not None else template.text,
        category=payload.category if payload.category is not None else template.category,
        creator=creator,
    )


@router.delete("/templates/{template_id}", response={204: None}, tags=["templates"])
def template_delete(request: HttpRequest, template_id: Id):
    """Messages sent from it keep their text and audit record."""
    membership = api_membership(request)
    template = selectors.template_get_for_member(membership=membership, template_id=template_id)
    library.template_delete(membership=membership, template=template)
    return Status(204, None)


@router.get("/templates/{template_id}/render", response=RenderOut, tags=["templates"])
def template_render_for_fan(
    request: HttpRequest,
    template_id: Id,
    fan_id: int | None = Query(None, ge=1, le=MAX_ID, description="Required: the fan to render it for."),
):
    """The template's text for one fan: each variable replaced, the fallbacks that were used, and
    the rendering's personalization score (0-100) with its factors and what to change."""
    membership = api_membership(request)
    template = selectors.template_get_for_member(membership=membership, template_id=template_id)
    if fan_id is None:  # checked after the lookup, so another agency's template is a 404 either way
        raise ApplicationError("Give the fan to render the template for (fan_id).", field="fan_id")
    fan = selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    conversation = Conversation.objects.filter(fan=fan).first()
    recent = selectors.message_page(conversation=conversation, limit=WINDOW_MESSAGES) if conversation else []
    rendered, score = template_score(
        template=template,
        fan=fan,
        creator=fan.creator,
        recent_messages=recent,
        purchases=selectors.fan_purchases_recent(fan=fan),
        rules=request_rules(request, membership.agency_id),
    )
    return {
        "text": rendered.text,
        "variables": rendered.variables,
        "fallbacks_used": rendered.fallbacks_used,
        "personalization": {"score": score.score, "factors": score.factors, "suggestions": score.suggestions},
    }
