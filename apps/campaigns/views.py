"""Campaign pages: the list (with each campaign's progress), a form for drafts, the campaign page
(preview before sending; live progress, the send rate and the limiter while sending, over the
websocket in consumers.py; its deliveries with dead letters to re-queue), and the agency's
approval setting. Views are thin: services.py decides, selectors.py reads."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.models import PLATFORMS, Role
from apps.accounts.permissions import Perm, has_perm
from apps.campaigns import personalize, selectors, services
from apps.campaigns.automation_views import urlpatterns as automation_urls
from apps.campaigns.forms import CampaignForm, CampaignSettingsForm
from apps.campaigns.models import DELIVERY_SOURCE, Campaign, CampaignMode, CampaignStatus, PersonalizeStatus
from apps.core.errors import ApplicationError, form_add_error
from apps.delivery import limits
from apps.delivery import selectors as delivery_selectors
from apps.delivery.models import DeliveryStatus
from apps.messaging import selectors as messaging_selectors
from apps.studio import selectors as studio_selectors

app_name = "campaigns"
PAGE_SIZE = 25
DELIVERY_PAGE_SIZE = 50
PERSONAL_PAGE_SIZE = 50


@member_required()
def campaign_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    status = request.GET.get("status") or ""
    if status not in CampaignStatus.values:
        status = ""
    page = Paginator(selectors.campaign_list(membership=membership, status=status or None), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    stats = services.campaign_stats(campaigns=list(page.object_list))
    context = {
        "page": page,
        "rows": [(campaign, stats[campaign.pk]) for campaign in page.object_list],
        "status": status,
        "statuses": CampaignStatus.choices,
        "can_create": has_perm(membership, Perm.SEND_MESSAGES),
        "approval_above": services.approval_threshold(membership.agency_id),
    }
    return render(request, "campaigns/list.html", context)


def _form(request: HttpRequest, data=None, initial=None) -> CampaignForm:
    membership = request.tenant.membership
    segments = list(messaging_selectors.segment_list(membership=membership).order_by("name", "id"))
    return CampaignForm(data, initial=initial, creators=request.tenant.creators, segments=segments)


def _save(request: HttpRequest, form: CampaignForm, campaign: Campaign | None) -> Campaign | None:
    membership = request.tenant.membership
    if not form.is_valid():
        return None
    data = form.cleaned_data
    fan_ids = form.fan_ids(membership.agency_id, chosen=campaign.fan_ids if campaign is not None else None)
    if form.errors:
        return None
    segment = form.segments.get(data["segment"]) if data["segment"] else None
    given = services.CampaignInput(
        creator=form.creators[data["creator"]],
        name=data["name"],
        text=data["text"],
        segment=segment,
        fan_ids=fan_ids,
        ppv_price=data["ppv_price"],
        media=form.media_list(),
        send_at=_wall_clock(data["send_at"]),
        exclude_messaged_within_hours=data["exclude_messaged_within_hours"],
        exclude_no_spend_days=data["exclude_no_spend_days"],
        exclude_bought_offer=data["exclude_bought_offer"],
        repeat=data["repeat"] or "",
        repeat_until=_wall_clock(data["repeat_until"]),
        mode=data["mode"] or CampaignMode.DIRECT,
        explore_prices=data["explore_prices"],
    )
    try:
        if campaign is None:
            return services.campaign_create(membership=membership, data=given)
        return services.campaign_update(membership=membership, campaign=campaign, data=given)
    except ApplicationError as error:
        form_add_error(form, error)
        return None


def _wall_clock(value):
    """A form time (send at, repeat until) as the wall-clock time typed (the service reads it in
    the creator's timezone); the form field made it aware in the request's timezone, so this
    undoes that."""
    if value is None or timezone.is_naive(value):
        return value
    return timezone.make_naive(value)


@member_required(Perm.SEND_MESSAGES)
def campaign_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = _form(request, request.POST)
        campaign = _save(request, form, None)
        if campaign is not None:
            messages.success(request, f"Draft “{campaign.name}” saved. Check the preview, then send or schedule it.")
            return redirect("campaigns:detail", campaign.pk)
        return render(request, "campaigns/form.html", {"form": form, "campaign": None}, status=400)
    initial = {}
    if request.GET.get("segment", "").isdecimal():
        initial["segment"] = int(request.GET["segment"])
    if request.GET.get("creator", "").isdecimal():
        initial["creator"] = int(request.GET["creator"])
    initial.update(_starting_text(request, request.GET.get("start", "")))
    context = {
        "form": _form(request, initial=initial),
        "campaign": None,
        "starters": _starters(request),
        "start": request.GET.get("start", ""),
    }
    return render(request, "campaigns/form.html", context)


STARTER_TEMPLATES = 50
STARTER_MESSAGES = 20


def _starters(request: HttpRequest) -> dict[str, list[tuple[str, str]]]:
    """What a new campaign can start from: the member's message templates (most used first) and
    the messages saved to the studio library, as (value, label) for the "Start from" list."""
    membership = request.tenant.membership
    templates = messaging_selectors.template_list(membership=membership).order_by("-use_count", "name")
    generations = studio_selectors.generation_list(membership=membership, saved=True).filter(
        type="message", status="done"
    )[:STARTER_MESSAGES]
    messages_ = []
    for generation in generations:
        for index, variation in enumerate((generation.result or {}).get("variations") or []):
            text = str(variation.get("text") or "")
            if text:
                messages_.append(
                    (f"generation:{generation.pk}:{index}", f"{generation.creator.display_name}: {text[:80]}")
                )
    return {
        "templates": [(f"template:{t.pk}", f"{t.name} ({t.creator.display_name if t.creator else 'every creator'})")
                      for t in templates[:STARTER_TEMPLATES]],
        "messages": messages_,
    }  # fmt: skip


def _starting_text(request: HttpRequest, start: str) -> dict:
    """The form's first values from ``?start=template:<id>`` or ``generation:<id>:<variation>``:
    its text, its name and its creator. Another agency's (or an unknown) one is a 404."""
    membership = request.tenant.membership
    kind, _, rest = start.partition(":")
    if kind == "template" and rest.isdecimal():
        template = messaging_selectors.template_get_for_member(membership=membership, template_id=int(rest))
        initial = {"text": template.text, "name": template.name}
        if template.creator_id:
            initial["creator"] = template.creator_id
        return initial
    generation_id, _, index = rest.partition(":")
    if kind == "generation" and generation_id.isdecimal() and index.isdecimal():
        generation = studio_selectors.generation_get_for_member(membership=membership, generation_id=int(generation_id))
        variations = (generation.result or {}).get("variations") or []
        if generation.type != "message" or int(index) >= len(variations):
            raise Http404("No such studio message.")
        return {"text": str(variations[int(index)].get("text") or ""), "creator": generation.creator_id}
    return {}


@member_required(Perm.SEND_MESSAGES)
def campaign_edit(request: HttpRequest, campaign_id: int) -> HttpResponse:
    membership = request.tenant.membership
    campaign = selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    if not campaign.is_editable:
        messages.error(request, f"This campaign is {campaign.get_status_display().lower()}; it cannot be edited.")
        return redirect("campaigns:detail", campaign.pk)
    if request.method == "POST":
        form = _form(request, request.POST)
        saved = _save(request, form, campaign)
        if saved is not None:
            messages.success(request, "Campaign saved as a draft. Send or schedule it again when it is right.")
            return redirect("campaigns:detail", saved.pk)
        campaign.refresh_from_db()
        return render(request, "campaigns/form.html", {"form": form, "campaign": campaign}, status=400)
    usernames = []
    if campaign.fan_ids:
        usernames = list(
            messaging_selectors.fan_audience(
                agency_id=campaign.agency_id, creator_id=campaign.creator_id, fan_ids=campaign.fan_ids
            ).values_list("username", flat=True)
        )
    zone = services.creator_zone(campaign.creator)
    local = "%Y-%m-%dT%H:%M"
    initial = {
        "creator": campaign.creator_id,
        "name": campaign.name,
        "segment": campaign.segment_id,
        "fan_usernames": ", ".join(usernames),
        "text": campaign.text,
        "ppv_price": campaign.ppv_price,
        "media": "\n".join(campaign.media),
        "send_at": campaign.send_at.astimezone(zone).strftime(local) if campaign.send_at else None,
        "exclude_messaged_within_hours": campaign.exclude_messaged_within_hours,
        "exclude_no_spend_days": campaign.exclude_no_spend_days,
        "exclude_bought_offer": campaign.exclude_bought_offer,
        "repeat": campaign.repeat,
        "repeat_until": campaign.repeat_until.astimezone(zone).strftime(local) if campaign.repeat_until else None,
        "mode": campaign.mode,
        "explore_prices": campaign.explore_prices,
    }
    return render(request, "campaigns/form.html", {"form": _form(request, initial=initial), "campaign": campaign})


def progress_context(campaign: Campaign, membership) -> dict:
    """What the live panel shows — the actions this member may take now, the progress and each
    platform account's send rate in force — rendered by the page and by the websocket alike."""
    stats = services.campaign_stats(campaigns=[campaign])[campaign.pk]
    accounts = []
    if campaign.status == CampaignStatus.SENDING:
        platforms = (
            delivery_selectors.delivery_list_by_source(
                agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk
            )
            .order_by()
            .values_list("platform", flat=True)
            .distinct()
        )
        for platform in sorted(set(platforms)):
            status = limits.account_status(creator_id=campaign.creator_id, platform=platform)
            accounts.append((PLATFORMS.get(platform, platform), status, status.wait_s >= 0.05))
    can_send = has_perm(membership, Perm.SEND_MESSAGES, campaign.creator)
    return {
        "campaign": campaign,
        "stats": stats,
        "accounts": accounts,
        "can_send": can_send,
        "can_approve": can_send and has_perm(membership, Perm.EDIT),
    }


@member_required()
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    membership = request.tenant.membership
    campaign = selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    waiting = campaign.status in (CampaignStatus.DRAFT, CampaignStatus.AWAITING_APPROVAL)
    preview = services.campaign_preview(campaign=campaign) if waiting else None
    status = request.GET.get("deliveries") or ""
    if status not in DeliveryStatus.values:
        status = ""
    deliveries = Paginator(
        delivery_selectors.delivery_list_by_source(
            agency_id=campaign.agency_id, source=DELIVERY_SOURCE, source_id=campaign.pk, status=status or None
        ),
        DELIVERY_PAGE_SIZE,
    ).get_page(request.GET.get("page"))
    series = selectors.campaign_series(membership=membership, campaign=campaign)
    context = {
        **progress_context(campaign, membership),
        "preview": preview,
        "deliveries": deliveries,
        "delivery_status": status,
        "delivery_statuses": DeliveryStatus.choices,
        "zone": services.creator_zone(campaign.creator),
        "exclusions": _exclusions(campaign),
        "series": series[: selectors.SERIES_SHOWN],
        "series_more": len(series) > selectors.SERIES_SHOWN,
        "price_arms": services.campaign_price_arms(campaign=campaign) if campaign.started_at else [],
        **personalize_context(campaign, membership),
    }
    return render(request, "campaigns/detail.html", context)


def personalize_context(campaign: Campaign, membership) -> dict:
    """What the "Personalised by AI" panel shows: whether it is running (then the page polls),
    its numbers, and whether this member may ask for it now."""
    running = personalize.is_running(campaign)
    stalled = not running and campaign.personalize_status in (PersonalizeStatus.QUEUED, PersonalizeStatus.RUNNING)
    return {
        "campaign": campaign,
        "personalize_running": running,
        "personalize_stalled": stalled,
        "personalize_ai": campaign.personalize_done - campaign.personalize_fallbacks,
        "personalize_max": personalize.MAX_PERSONALISED,
        "can_personalize": (
            campaign.status == CampaignStatus.DRAFT
            and campaign.mode == CampaignMode.DIRECT
            and not running
            and has_perm(membership, Perm.SEND_MESSAGES, campaign.creator)
        ),
    }


@member_required(Perm.SEND_MESSAGES)
@require_POST
def campaign_personalize(request: HttpRequest, campaign_id: int) -> HttpResponse:
    membership = request.tenant.membership
    campaign = selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    try:
        campaign = personalize.campaign_personalize(membership=membership, campaign=campaign)
    except ApplicationError as error:
        messages.error(request, error.message)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Personalising the message for {campaign.personalize_total} fans: this page shows the progress."
        )
    return redirect(reverse("campaigns:detail", args=[campaign_id]) + "#campaign-personalize")


@member_required()
def campaign_personalize_panel(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The panel alone, polled every 2 s while a run is in flight. When a poll finds it finished,
    the page reloads (``HX-Refresh``) so the preview shows the personalised texts."""
    membership = request.tenant.membership
    campaign = selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    context = personalize_context(campaign, membership)
    response = render(request, "campaigns/personalize_panel.html", context)
    if request.GET.get("polling") and not context["personalize_running"]:
        response["HX-Refresh"] = "true"
    return response


@member_required()
def campaign_personal_texts(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Every fan's personalised text, by fan, paginated."""
    membership = request.tenant.membership
    campaign = selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    page = Paginator(selectors.personal_text_list(campaign=campaign), PERSONAL_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {"campaign": campaign, "page": page, **personalize_context(campaign, membership)}
    return render(request, "campaigns/personal_texts.html", context)


def _exclusions(campaign: Campaign) -> list[str]:
    """Who the campaign leaves out, as the page lists them."""
    named = []
    if campaign.exclude_messaged_within_hours:
        named.append(f"fans messaged in the last {campaign.exclude_messaged_within_hours} h")
    if campaign.exclude_no_spend_days:
        named.append(f"fans who spent nothing in {campaign.exclude_no_spend_days} days")
    if campaign.exclude_bought_offer:
        named.append("fans who already bought this offer (its media, from an earlier campaign)")
    return named


ACTIONS = {
    "schedule": (services.campaign_schedule, "Scheduled."),
    "approve": (services.campaign_approve, "Approved and scheduled."),
    "pause": (services.campaign_pause, "Paused: nothing more is sent until you resume."),
    "resume": (services.campaign_resume, "Resumed."),
    "cancel": (services.campaign_cancel, "Cancelled: nothing more will be sent."),
}


@member_required(Perm.SEND_MESSAGES)
@require_POST
def campaign_action(request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
    membership = request.tenant.membership
    campaign = selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    service, done = ACTIONS[action]
    try:
        campaign = service(membership=membership, campaign=campaign)
    except ApplicationError as error:
        messages.error(request, error.message)
    except PermissionDenied as error:
        messages.error(request, str(error))
    else:
        if campaign.status == CampaignStatus.AWAITING_APPROVAL:
            done = "Sent for approval: an owner or manager has been told."
        elif action == "schedule" and campaign.send_at is None:
            done = "Sending now."
        messages.success(request, done)
    return redirect("campaigns:detail", campaign_id)


@member_required(Perm.SEND_MESSAGES)
@require_POST
def delivery_requeue(request: HttpRequest, campaign_id: int, delivery_id: int) -> HttpResponse:
    """Re-queue one of the campaign's dead letters (the delivery must be this campaign's)."""
    membership = request.tenant.membership
    campaign = selectors.campaign_get_for_member(membership=membership, campaign_id=campaign_id)
    try:
        campaign = services.campaign_delivery_requeue(membership=membership, campaign=campaign, delivery_id=delivery_id)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if campaign.status == CampaignStatus.PAUSED:
            messages.success(request, "Re-queued: it will be sent when the campaign resumes.")
        else:
            messages.success(request, "Re-queued: it will be sent again.")
    return redirect(reverse("campaigns:detail", args=[campaign.pk]) + "?deliveries=dead")


@member_required()
def campaign_settings(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    is_owner = membership.role == Role.OWNER
    current = services.campaign_settings_get(membership.agency_id)
    if request.method == "POST":
        form = CampaignSettingsForm(request.POST)
        if form.is_valid():
            try:
                services.campaign_settings_update(
                    membership=membership,
                    approval_above=form.cleaned_data["approval_above"],
                    fan_cap_per_day=form.cleaned_data["fan_cap_per_day"],
                )
            except (ApplicationError, PermissionDenied) as error:
                form_add_error(form, error if isinstance(error, ApplicationError) else ApplicationError(str(error)))
            else:
                messages.success(request, "Campaign rules saved.")
                return redirect("campaigns:list")
        return render(request, "campaigns/settings.html", {"form": form, "is_owner": is_owner}, status=400)
    form = CampaignSettingsForm(
        initial={"approval_above": current.approval_above, "fan_cap_per_day": current.fan_cap_per_day}
    )
    return render(request, "campaigns/settings.html", {"form": form, "is_owner": is_owner})


urlpatterns = [
    *automation_urls,
    path("campaigns/", campaign_list, name="list"),
    path("campaigns/new/", campaign_create, name="create"),
    path("campaigns/settings/", campaign_settings, name="settings"),
    path("campaigns/<int:campaign_id>/", campaign_detail, name="detail"),
    path("campaigns/<int:campaign_id>/edit/", campaign_edit, name="edit"),
    *[
        path(f"campaigns/<int:campaign_id>/{action}/", campaign_action, {"action": action}, name=action)
        for action in ACTIONS
    ],
    path("campaigns/<int:campaign_id>/deliveries/<int:delivery_id>/requeue/", delivery_requeue, name="requeue"),
    path("campaigns/<int:campaign_id>/personalize/", campaign_personalize, name="personalize"),
    path("campaigns/<int:campaign_id>/personalize/panel/", campaign_personalize_panel, name="personalize_panel"),
    path("campaigns/<int:campaign_id>/personalized/", campaign_personal_texts, name="personal_texts"),
]
