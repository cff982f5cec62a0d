"""The publishing pages: the calendar of drafts, scheduled, published and failed posts, the
schedule form (also reached from a studio caption's "Schedule as post", and approving a draft),
a post's page, cancel and retry.
Thin: parse, authorise, call one function of apps/integrations/publishing.py, render."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.accounts.selectors import creator_list
from apps.core.errors import ApplicationError, form_add_error
from apps.core.timezones import FIRST_YEAR, LAST_YEAR
from apps.integrations import publishing
from apps.integrations.forms import ScheduledPostForm
from apps.integrations.models import PUBLISH_PLATFORMS, Platform, PostMediaType, PostStatus, ScheduledPost


@dataclass
class Day:
    date: date
    in_range: bool
    posts: list[ScheduledPost] = field(default_factory=list)


def _parse_day(value: str | None) -> date:
    """The day asked for, or today for one that is unreadable or outside the years a moment may
    have (apps/core/timezones.py): the calendar's arithmetic around 9999-12-31 would overflow."""
    try:
        day = date.fromisoformat(value or "")
    except ValueError:
        return timezone.localdate()
    return day if FIRST_YEAR <= day.year <= LAST_YEAR else timezone.localdate()


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


def _calendar_url(*, view: str, day: date, creator_id: int | None = None, platform: str = "") -> str:
    query = f"view={view}&date={day.isoformat()}"
    if creator_id:
        query += f"&creator={creator_id}"
    if platform:
        query += f"&platform={platform}"
    return f"{reverse('integrations:calendar')}?{query}"


@member_required()
@vary_on_headers("HX-Request")
def post_calendar(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    view = "week" if request.GET.get("view") == "week" else "month"
    day = _parse_day(request.GET.get("date"))
    creator_id = _int_or_none(request.GET.get("creator"))
    platform = request.GET.get("platform", "")
    platform = platform if platform in {p.value for p in PUBLISH_PLATFORMS} else ""
    if view == "week":
        first = day - timedelta(days=day.weekday())
        grid_start, grid_end, range_start, range_end = first, first + timedelta(days=7), first, first + timedelta(7)
        previous, following = first - timedelta(days=7), first + timedelta(days=7)
        heading = f"Week of {first:%d %B %Y}"
    else:
        range_start = day.replace(day=1)
        range_end = (range_start + timedelta(days=32)).replace(day=1)
        grid_start = range_start - timedelta(days=range_start.weekday())
        grid_end = range_end + timedelta(days=(7 - range_end.weekday()) % 7)
        previous, following = (range_start - timedelta(days=1)).replace(day=1), range_end
        heading = f"{range_start:%B %Y}"
    zone = timezone.get_current_timezone()
    posts = publishing.post_list(
        membership=membership,
        creator_id=creator_id,
        platform=platform or None,
        start=datetime.combine(grid_start, time.min, tzinfo=zone),
        end=datetime.combine(grid_end, time.min, tzinfo=zone),
    )
    dates = [grid_start + timedelta(days=n) for n in range((grid_end - grid_start).days)]
    days = {when: Day(when, range_start <= when < range_end) for when in dates}
    count = 0
    for post in posts:
        days[timezone.localtime(post.scheduled_at, zone).date()].posts.append(post)
        count += 1
    ordered = list(days.values())
    context = {
        "view": view,
        "heading": heading,
        "weeks": [ordered[i : i + 7] for i in range(0, len(ordered), 7)],
        "weekdays": list(calendar.day_abbr),
        "count": count,
        "creators": list(creator_list(membership=membership).only("pk", "display_name")),
        "platforms": [(p.value, p.label) for p in PUBLISH_PLATFORMS],
        "creator_id": creator_id,
        "platform": platform,
        "day": day,
        "previous_url": _calendar_url(view=view, day=previous, creator_id=creator_id, platform=platform),
        "next_url": _calendar_url(view=view, day=following, creator_id=creator_id, platform=platform),
        "month_url": _calendar_url(view="month", day=day, creator_id=creator_id, platform=platform),
        "week_url": _calendar_url(view="week", day=day, creator_id=creator_id, platform=platform),
        "can_edit": has_perm(membership, Perm.EDIT),
        "today": timezone.localdate(),
    }
    template = "integrations/calendar.html#calendar-grid" if request.htmx else "integrations/calendar.html"
    return render(request, template, context)


@member_required(Perm.EDIT)
def post_new(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = list(creator_list(membership=membership))
    initial: dict = {}
    notice = ""
    generation_id = _int_or_none(request.GET.get("generation"))
    if request.method == "GET" and generation_id:
        variation = _int_or_none(request.GET.get("variation")) or 0
        try:
            caption, generation_id = publishing.caption_from_studio(
                membership=membership, generation_id=generation_id, variation=variation
            )
        except ApplicationError as error:
            notice = error.message
        else:
            initial.update(caption=caption, generation_id=generation_id, variation=variation)
    if request.GET.get("creator"):
        initial["creator"] = _int_or_none(request.GET.get("creator"))
    draft = None
    draft_id = _int_or_none(request.POST.get("draft_id") if request.method == "POST" else request.GET.get("draft"))
    if draft_id:
        draft = publishing.post_get_for_member(membership=membership, post_id=draft_id)  # another's: 404
        if request.method == "GET":
            if draft.status != PostStatus.DRAFT:  # approved or discarded meanwhile (another tab)
                messages.info(request, f"This post is no longer a draft: it is {draft.get_status_display().lower()}.")
                return redirect("integrations:post", scheduled_post_id=draft.pk)
            if draft.creator.is_archived:  # the form offers active creators only: say why, as the API does
                messages.error(request, f"{draft.creator.display_name} is archived: restore the creator first.")
                return redirect("integrations:post", scheduled_post_id=draft.pk)
            initial.update(_draft_initial(draft))
    form = ScheduledPostForm(request.POST or None, initial=initial, creators=creators)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            caption, generation = data["caption"], None
            if data.get("generation_id"):
                studio_caption, generation = publishing.caption_from_studio(
                    membership=membership, generation_id=data["generation_id"], variation=data.get("variation") or 0
                )
                caption = caption or studio_caption
            post = publishing.post_schedule(
                membership=membership, creator=data["creator"], platform=data["platform"],
                scheduled_at=data["scheduled_at"], caption=caption, title=data["title"], subreddit=data["subreddit"],
                media_type=data["media_type"], media_urls=data["media_urls"], generation_id=generation, draft=draft,
            )  # fmt: skip
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            local = timezone.localtime(post.scheduled_at)
            messages.success(
                request,
                f"Scheduled on {post.get_platform_display()} for {post.creator.display_name} "
                f"at {local:%d %b %Y %H:%M}.",
            )
            return redirect(_calendar_url(view="month", day=local.date()))
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "notice": notice, "draft": draft}
    if draft is not None:  # in the creator's clock, as the form's time
        local = _draft_initial(draft)["scheduled_at"]
        context["draft_at"] = f"{local:%A %d %b %H:%M} ({draft.creator.timezone or 'UTC'})"
    return render(request, "integrations/posts_form.html", context, status=status)


def _draft_initial(draft) -> dict:
    """The approval form starts from the draft: its creator, platform, caption and time (in the
    creator's time zone, as the form reads it)."""
    from apps.core.timezones import zone_or_utc

    local = timezone.localtime(draft.scheduled_at, zone_or_utc(draft.creator.timezone))
    return {
        "draft_id": draft.pk, "creator": draft.creator_id, "platform": draft.platform, "caption": draft.caption,
        "title": draft.title, "subreddit": draft.subreddit, "scheduled_at": local.replace(tzinfo=None),
        "media_type": {Platform.TIKTOK: PostMediaType.VIDEO, Platform.REDDIT: PostMediaType.TEXT}.get(
            draft.platform, PostMediaType.PHOTO
        ),
    }  # fmt: skip


@member_required()
def post_detail(request: HttpRequest, scheduled_post_id: int) -> HttpResponse:
    membership = request.tenant.membership
    post = publishing.post_get_for_member(membership=membership, post_id=scheduled_post_id)
    context = {"post": post, "can_edit": has_perm(membership, Perm.EDIT, post.creator)}
    return render(request, "integrations/posts_detail.html", context)


def _act(request: HttpRequest, scheduled_post_id: int, action) -> HttpResponse:
    membership = request.tenant.membership
    post = publishing.post_get_for_member(membership=membership, post_id=scheduled_post_id)
    try:
        post = action(membership=membership, post=post)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"The post is {post.get_status_display().lower()}.")
    return redirect("integrations:post", scheduled_post_id=post.pk)


@member_required(Perm.EDIT)
@require_POST
def post_cancel(request: HttpRequest, scheduled_post_id: int) -> HttpResponse:
    # The buttons say what the member saw (Discard: a draft; Cancel: scheduled); a post that moved on is kept.
    return _act(request, scheduled_post_id, partial(publishing.post_cancel, seen=request.POST.get("seen") or None))


@member_required(Perm.EDIT)
@require_POST
def post_retry(request: HttpRequest, scheduled_post_id: int) -> HttpResponse:
    return _act(request, scheduled_post_id, publishing.post_retry)
