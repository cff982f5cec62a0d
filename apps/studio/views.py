"""Studio pages: generate (streamed over a websocket, or a plain form post without JavaScript),
the generation history, and the idea board."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.accounts.selectors import creator_get_for_member
from apps.core.errors import ApplicationError
from apps.studio import selectors, services
from apps.studio.models import Category, GenerationType
from apps.studio.platforms import PLATFORMS


@member_required()
def studio(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creator = request.tenant.creator
    kind = request.GET.get("type") or request.POST.get("type") or "message"
    if kind not in GenerationType.values:
        kind = "message"
    generation, error, values = None, None, {"type": kind}
    if request.method == "POST":
        values = {key: request.POST[key] for key in services.OPTION_FIELDS if request.POST.get(key, "") != ""}
        try:
            chosen = creator_get_for_member(
                membership=membership, creator_id=int(request.POST.get("creator_id", 0)), include_archived=False
            )
            generation = services.generation_run(membership=membership, creator=chosen, data=values)
        except (ApplicationError, ValueError) as exc:
            error = getattr(exc, "message", "Choose one of your creators.")
    context = {
        "kind": kind,
        "types": GenerationType.choices,
        "platforms": [(key, rules.label) for key, rules in PLATFORMS.items()],
        "tones": services.TONES,
        "message_types": services.MESSAGE_TYPES,
        "strategies": services.STRATEGIES,
        "creator": creator,
        "can_generate": creator is not None and has_perm(membership, Perm.SEND_MESSAGES, creator),
        "generation": generation,
        "error": error,
        "values": values,
    }
    return render(request, "studio/index.html", context)


@member_required()
@require_POST
def generation_save(request: HttpRequest, generation_id: int) -> HttpResponse:
    membership = request.tenant.membership
    generation = selectors.generation_get_for_member(membership=membership, generation_id=generation_id)
    services.generation_save_to_library(membership=membership, generation=generation, saved=True)
    if request.htmx:
        return HttpResponse('<span class="ok">Saved to the library.</span>')
    messages.success(request, "Saved to the library.")
    return redirect("studio:history")


@member_required()
def history(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    saved = {"saved": True, "all": None}.get(request.GET.get("show", "all"))
    generations = selectors.generation_list(membership=membership, saved=saved)
    kind = request.GET.get("type", "")
    if kind in GenerationType.values:
        generations = generations.filter(type=kind)
    page = Paginator(generations, 20).get_page(request.GET.get("page"))
    return render(request, "studio/history.html", {"page": page, "types": GenerationType.choices, "kind": kind,
                                                   "show": request.GET.get("show", "all")})  # fmt: skip


@member_required()
def ideas(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    category = request.GET.get("category") or None
    filters = {
        "category": category if category in Category.values else None,
        "favourite": True if request.GET.get("favourite") == "1" else None,
        "used": {"1": True, "0": False}.get(request.GET.get("used", "")),
        "query": request.GET.get("q", "").strip()[:100],
    }
    creator = request.tenant.creator
    items = selectors.idea_list(membership=membership, creator_id=creator.pk if creator else None, **filters)
    page = Paginator(items, 24).get_page(request.GET.get("page"))
    return render(request, "studio/ideas.html", {"page": page, "categories": Category.choices, "filters": filters,
                                                 "creator": creator})  # fmt: skip


@member_required()
@require_POST
def idea_update(request: HttpRequest, idea_id: int) -> HttpResponse:
    membership = request.tenant.membership
    idea = selectors.idea_get_for_member(membership=membership, idea_id=idea_id)
    try:
        if request.POST.get("action") == "use":
            services.idea_mark_used(membership=membership, idea=idea, outcome=request.POST.get("outcome", ""))
            messages.success(request, f"“{idea.title}” marked as used.")
        else:
            services.idea_set_favourite(
                membership=membership, idea=idea, favourite=request.POST.get("favourite") == "1"
            )
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect(
        request.POST.get("next") if str(request.POST.get("next", "")).startswith("/studio/") else "studio:ideas"
    )


@member_required()
@require_POST
def variation_regenerate(request: HttpRequest, generation_id: int, index: int) -> HttpResponse:
    membership = request.tenant.membership
    generation = selectors.generation_get_for_member(membership=membership, generation_id=generation_id)
    error = None
    try:
        generation = services.generation_regenerate_variation(membership=membership, generation=generation, index=index)
    except ApplicationError as exc:
        error = exc.message
    if request.htmx:
        return render(request, "studio/partials/result_body.html", {"generation": generation, "error": error})
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Variation {index + 1} rewritten.")
    return redirect("studio:history")


@member_required()
def performance(request: HttpRequest) -> HttpResponse:
    """The current creator's results: CSV import, tag performance, rising trends, dates ahead,
    and caption analysis."""
    from django.utils import timezone

    from apps.studio import analytics
    from apps.studio.imports import posts_import_csv

    membership = request.tenant.membership
    creator = request.tenant.creator
    context: dict = {"creator": creator, "platforms": [(key, rules.label) for key, rules in PLATFORMS.items()]}
    if creator is None:
        return render(request, "studio/performance.html", context)
    if request.method == "POST" and request.POST.get("form") == "import":
        upload = request.FILES.get("file")
        if upload is None:
            context["import_error"] = "Choose a CSV file to import."
        else:
            try:
                context["report"] = posts_import_csv(membership=membership, creator=creator, file=upload)
            except ApplicationError as error:
                context["import_error"] = error.message
    if request.method == "POST" and request.POST.get("form") == "caption":
        caption = request.POST.get("caption", "").strip()[:5000]
        platform = request.POST.get("platform", "onlyfans")
        if caption and platform in PLATFORMS:
            context["caption_report"] = analytics.caption_analysis(creator=creator, caption=caption, platform=platform)
            context["caption"] = caption
        else:
            context["caption_error"] = "Paste a caption and choose a platform."
        if request.htmx:
            return render(request, "studio/performance.html#caption-report", context)
    context.update(
        tags=analytics.tag_performance(creator=creator)[:15],
        trends=analytics.rising_trends(agency_id=creator.agency_id, creator=creator),
        events=analytics.seasonality(
            creator=creator, on=timezone.localdate(timezone=analytics.creator_zone(creator)), horizon_days=45
        )[:8],
        posts=selectors.post_list(membership=membership, creator_id=creator.pk).count(),
    )
    return render(request, "studio/performance.html", context)
