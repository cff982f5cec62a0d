"""Saved segments: the list with live counts, a form with one field per filter key (segments.py)
and a live count while editing (htmx), delete.

Counts are live: one aggregate query counts every segment of the page (``segment_counts``); a
segment whose saved filters no longer parse shows "filters need fixing" instead of a count, and
its page names the filter (``SegmentFiltersUnreadable``) above the form. The live count while
editing names the fields that keep it from counting. Who may write is
library.py's rule (send permission for one creator's segment, edit for all-creator ones and
other members' segments); every member reads.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.core.errors import ApplicationError
from apps.messaging import library, selectors
from apps.messaging.forms.fans import FILTER_KEYS, SegmentForm, add_service_error
from apps.messaging.models import Segment
from apps.messaging.segments import SegmentFiltersUnreadable, segment_filters_stored

PAGE_SIZE = 25


@member_required()
def segment_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    page = Paginator(selectors.segment_list(membership=membership).select_related("created_by"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    segments = list(page.object_list)
    counts = selectors.segment_counts(membership=membership, segments=segments)
    rows = [(segment, counts[segment.pk], library.can_change(membership, segment)) for segment in segments]
    context = {"page": page, "rows": rows, "can_create": has_perm(membership, Perm.SEND_MESSAGES)}
    return render(request, "messaging/segments/list.html", context)


def _count(request: HttpRequest, form: SegmentForm) -> int | None:
    """The live number of fans the form's filters select, for this member; None when invalid."""
    membership = request.tenant.membership
    if not form.is_valid():
        return None
    parsed = form.parsed()
    if parsed is None:
        return None
    return (
        selectors.fan_list(membership=membership, creator_id=form.cleaned_data["creator"], filters=parsed)
        .order_by()
        .count()
    )


def _save(request: HttpRequest, form: SegmentForm, segment: Segment | None) -> Segment | None:
    membership = request.tenant.membership
    if not form.is_valid() or form.parsed() is None:
        return None
    data = form.cleaned_data
    creator = form.creators.get(data["creator"]) if data["creator"] else None
    try:
        if segment is None:
            return library.segment_create(membership=membership, name=data["name"], filters=form.filters(),
                                          creator=creator)  # fmt: skip
        return library.segment_update(membership=membership, segment=segment, name=data["name"],
                                      filters=form.filters(), creator=creator)  # fmt: skip
    except ApplicationError as error:
        add_service_error(form, error)
        return None


@member_required(Perm.SEND_MESSAGES)
def segment_create(request: HttpRequest) -> HttpResponse:
    """New segment; the fan list's "Save as segment" opens it with its filters in the query."""
    creators = request.tenant.creators
    if request.method == "POST":
        form = SegmentForm(request.POST, creators=creators)
        segment = _save(request, form, None)
        if segment is not None:
            messages.success(request, f"Segment “{segment.name}” saved.")
            return redirect("messaging:segment_list")
        return _render(request, form, None, status=400)
    initial = {key: request.GET.getlist(key) if key in ("tiers", "lifecycles", "subscription_states", "platforms")
               else request.GET.get(key) for key in (*FILTER_KEYS, "creator") if key in request.GET}  # fmt: skip
    form = SegmentForm(initial=initial, creators=creators)
    return _render(request, form, None)


@member_required()
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    membership = request.tenant.membership
    segment = selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
    creators = request.tenant.creators
    if request.method == "POST":
        form = SegmentForm(request.POST, creators=creators)
        saved = _save(request, form, segment)
        if saved is not None:
            messages.success(request, f"Segment “{saved.name}” saved.")
            return redirect("messaging:segment_list")
        segment.refresh_from_db()
        return _render(request, form, segment, status=400)
    initial = {"name": segment.name, "creator": segment.creator_id, **SegmentForm.initial_from(segment.filters)}
    return _render(request, SegmentForm(initial=initial, creators=creators), segment)


def _render(request: HttpRequest, form: SegmentForm, segment: Segment | None, status: int = 200) -> HttpResponse:
    membership = request.tenant.membership
    count, stored_error = None, ""
    if segment is not None:
        try:
            segment_filters_stored(segment)
        except SegmentFiltersUnreadable as error:  # the form shows what it can; the alert says what it cannot
            stored_error = error.message
    if form.is_bound:
        count = _count(request, form) if not form.errors else None
    elif segment is not None and not stored_error:
        count = selectors.segment_count(membership=membership, segment=segment)
    context = {
        "form": form,
        "segment": segment,
        "count": count,
        "stored_error": stored_error,
        "can_change": segment is None or library.can_change(membership, segment),
    }
    return render(request, "messaging/segments/form.html", context, status=status)


def _problems(form: SegmentForm) -> list[str]:
    """What keeps the filters being edited from counting, each with its field's label."""
    return [
        f"{form.fields[name].label}: {message}" if name in form.fields else message
        for name, messages in form.errors.items()
        for message in messages
    ]


@member_required()
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The live count for the filters being edited (htmx, GET with the form's fields)."""
    form = SegmentForm(request.GET, creators=request.tenant.creators)
    form.fields["name"].required = False
    count = _count(request, form)
    context = {"form": form, "count": count, "problems": _problems(form) if count is None else []}
    return render(request, "messaging/segments/form.html#segment-count", context)


@member_required()
@require_POST
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    membership = request.tenant.membership
    segment = selectors.segment_get_for_member(membership=membership, segment_id=segment_id)
    name = segment.name
    library.segment_delete(membership=membership, segment=segment)
    messages.success(request, f"Segment “{name}” deleted.")
    return redirect("messaging:segment_list")


urlpatterns = [
    path("segments/", segment_list, name="segment_list"),
    path("segments/new/", segment_create, name="segment_create"),
    path("segments/preview/", segment_preview, name="segment_preview"),
    path("segments/<int:segment_id>/", segment_edit, name="segment_edit"),
    path("segments/<int:segment_id>/delete/", segment_delete, name="segment_delete"),
]
