"""Fan CRM pages: the fan list (filters, a saved segment, search, CSV export), a fan's page
(profile, spend, purchases, notes and tags), the agency's fan rules, and CSV imports with their
progress and per-row report.

Who may do what: every member reads the fans of the creators they may see (chatters: their
assigned ones); notes and tags need the send permission on the fan's creator; exports, imports
and the rules need the edit permission (owners and managers): an export leaves the product and
an import or a rule changes every member's view.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm, require
from apps.core.errors import ApplicationError, form_add_error
from apps.core.pagination import CappedPaginator
from apps.messaging import exports, imports, library, selectors, services
from apps.messaging.forms.fans import FanFilterForm, FanImportForm, FanRulesForm
from apps.messaging.forms.inbox import FanNoteForm, FanTagsForm
from apps.messaging.models import Conversation, Fan, FanImport, FanNote, FanRules, ImportKind, ImportStatus, Purchase
from apps.messaging.segments import SegmentFiltersUnreadable
from apps.messaging.tiers import FanBadges, badges, rules_for

PAGE_SIZE = 50
COUNT_CAP = 10_000  # the list counts and pages this many fans at most; the export has them all
PURCHASES_PAGE = 20
NOTES_SHOWN = 50
SEGMENT_CHOICES = 200
RECENT_IMPORTS = 10


@dataclass
class FanRow:
    fan: Fan
    badges: FanBadges


def _filtered_fans(request: HttpRequest, rules: FanRules):
    """(form, fans queryset or None when the filters are invalid) from the query string."""
    membership = request.tenant.membership
    segments = list(selectors.segment_list(membership=membership)[:SEGMENT_CHOICES])
    form = FanFilterForm(request.GET, creators=request.tenant.creators, segments=segments)
    if not form.is_valid():
        return form, None
    parsed = form.parsed()
    if parsed is None:
        return form, None
    data = form.cleaned_data
    try:
        fans = selectors.fan_list(
            membership=membership,
            creator_id=data["creator"],
            segment=form.segments.get(data["segment"]) if data["segment"] else None,
            filters=parsed,
            search=data["q"],
            rules=rules,
            visible_creator_ids=[creator.pk for creator in request.tenant.creators],
        )
    except SegmentFiltersUnreadable as error:  # listed as nobody, with the filter to fix named
        form.add_error("segment", error.message)
        return form, None
    return form, fans


@member_required()
def fan_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    rules = rules_for(membership.agency_id)
    form, fans = _filtered_fans(request, rules)
    listed = fans.prefetch_related("tags") if fans is not None else Fan.objects.none()
    page = CappedPaginator(listed, PAGE_SIZE, cap=COUNT_CAP).get_page(request.GET.get("page"))
    now = timezone.now()
    rows = [FanRow(fan, badges(fan, rules, now)) for fan in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "rows": rows,
        "query": query.urlencode(),
        "filtered": any(v for k, v in request.GET.items() if k != "page"),
        "can_export": has_perm(membership, Perm.EDIT),
        "can_save_segment": has_perm(membership, Perm.SEND_MESSAGES),
        "has_creators": bool(request.tenant.creators),
    }
    template = "messaging/fans/list.html#fan-results" if request.htmx else "messaging/fans/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@member_required(Perm.EDIT)
def fan_export(request: HttpRequest) -> HttpResponse:
    """The fan list's current filters or segment as CSV (docs/fans.md lists the columns)."""
    membership = request.tenant.membership
    rules = rules_for(membership.agency_id)
    _form, fans = _filtered_fans(request, rules)
    if fans is None:
        messages.error(request, "Fix the filters before exporting.")
        return redirect(f"{reverse('messaging:fan_list')}?{request.GET.urlencode()}")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(exports.fans_csv(fans, rules=rules), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="fans-{stamp}.csv"'
    return response


def _fan_context(request: HttpRequest, fan: Fan, **extra) -> dict:
    membership = request.tenant.membership
    rules = rules_for(membership.agency_id)
    purchases = Paginator(Purchase.objects.filter(fan=fan).order_by("-purchased_at", "-id"), PURCHASES_PAGE)
    context = {
        "fan": fan,
        "badges": badges(fan, rules),
        "purchases": purchases.get_page(request.GET.get("purchases")),
        "notes": list(FanNote.objects.filter(fan=fan).select_related("author")[:NOTES_SHOWN]),
        "tags": list(fan.tags.values_list("name", flat=True)),
        "conversation": Conversation.objects.filter(fan=fan).only("pk", "message_count").first(),
        "can_send": has_perm(membership, Perm.SEND_MESSAGES, fan.creator),
        "spend": [
            ("Subscriptions", fan.spent_subscriptions),
            ("Tips", fan.spent_tips),
            ("PPV", fan.spent_ppv),
            ("Paid messages", fan.spent_messages),
        ],
    }
    context.setdefault("note_form", FanNoteForm())
    context.setdefault("tags_form", FanTagsForm(initial={"tags": ", ".join(context["tags"])}))
    context.update(extra)
    return context


@member_required()
def fan_detail(request: HttpRequest, fan_id: int) -> HttpResponse:
    fan = selectors.fan_get_for_member(membership=request.tenant.membership, fan_id=fan_id)
    context = _fan_context(request, fan)
    if request.htmx and request.GET.get("purchases"):
        return render(request, "messaging/fans/detail.html#purchases", context)
    return render(request, "messaging/fans/detail.html", context)


@member_required()
@require_POST
def fan_note(request: HttpRequest, fan_id: int) -> HttpResponse:
    membership = request.tenant.membership
    fan = selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    require(membership, Perm.SEND_MESSAGES, fan.creator)
    form = FanNoteForm(request.POST)
    if form.is_valid():
        try:
            services.fan_note_add(membership=membership, fan=fan, text=form.cleaned_data["text"])
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, "Note added.")
            return redirect("messaging:fan_detail", fan_id=fan.pk)
    return render(request, "messaging/fans/detail.html", _fan_context(request, fan, note_form=form), status=400)


@member_required()
@require_POST
def fan_tags(request: HttpRequest, fan_id: int) -> HttpResponse:
    membership = request.tenant.membership
    fan = selectors.fan_get_for_member(membership=membership, fan_id=fan_id)
    require(membership, Perm.SEND_MESSAGES, fan.creator)
    form = FanTagsForm(request.POST)
    if form.is_valid():
        try:
            services.fan_tags_set(membership=membership, fan=fan, tags=form.cleaned_data["tags"])
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, "Tags saved.")
            return redirect("messaging:fan_detail", fan_id=fan.pk)
    return render(request, "messaging/fans/detail.html", _fan_context(request, fan, tags_form=form), status=400)


# --- Rules ------------------------------------------------------------------------------------------


@member_required()
def fan_rules(request: HttpRequest) -> HttpResponse:
    """Everyone reads the rules; owners and managers change them."""
    membership = request.tenant.membership
    rules = rules_for(membership.agency_id)
    can_edit = has_perm(membership, Perm.EDIT)
    names = list(FanRulesForm.base_fields)
    form = FanRulesForm(initial={name: getattr(rules, name) for name in names})
    status = 200
    if request.method == "POST":
        require(membership, Perm.EDIT)
        form = FanRulesForm(request.POST)
        if form.is_valid():
            try:
                library.fan_rules_update(membership=membership, **form.cleaned_data)
            except ApplicationError as error:
                form_add_error(form, error)
            else:
                messages.success(request, "Fan rules saved: tiers and lifecycle badges use them from now on.")
                return redirect("messaging:fan_rules")
        status = 400
    return render(request, "messaging/rules/edit.html", {"form": form, "can_edit": can_edit}, status=status)


# --- Imports ----------------------------------------------------------------------------------------


@member_required(Perm.EDIT)
def fan_import(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    kind = request.GET.get("kind")
    initial = {
        "creator": request.tenant.creator.pk if request.tenant.creator else None,
        "kind": kind if kind in ImportKind.values else ImportKind.FANS,
    }
    form = FanImportForm(initial=initial, creators=creators)
    status = 200
    if request.method == "POST":
        form = FanImportForm(request.POST, request.FILES, creators=creators)
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = imports.fan_import_start(
                    membership=membership, creator=form.creators[data["creator"]], kind=data["kind"], file=data["file"]
                )
            except ApplicationError as error:
                form_add_error(form, error)
            else:
                return redirect("messaging:fan-import-detail", import_id=job.pk)
        status = 400
    recent = (
        FanImport.objects.for_agency(membership.agency_id)
        .filter(creator__in=[c.pk for c in creators])
        .select_related("creator", "created_by")
        .defer("content")[:RECENT_IMPORTS]
    )
    context = {
        "form": form,
        "kinds": [(kind, label, imports.columns_for(kind)) for kind, label in ImportKind.choices],
        "recent": recent,
        "limits": {
            "max_mb": imports.MAX_FILE_BYTES // (1024 * 1024),
            "max_rows": imports.MAX_ROWS,
            "inline_rows": imports.INLINE_MAX_ROWS,
        },
        "has_creators": bool(creators),
    }
    return render(request, "messaging/imports/start.html", context, status=status)


@member_required(Perm.EDIT)
def fan_import_detail(request: HttpRequest, import_id: int) -> HttpResponse:
    job = selectors.fan_import_get_for_member(membership=request.tenant.membership, import_id=import_id)
    context = {"job": job, "running": job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)}
    if request.htmx:
        return render(request, "messaging/imports/detail.html#progress", context)
    return render(request, "messaging/imports/detail.html", context)


@member_required()
def fan_import_sample(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", ImportKind.FANS)
    if kind not in ImportKind.values:
        kind = ImportKind.FANS
    response = HttpResponse(imports.sample_csv(kind), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="huntaze-{kind}-sample.csv"'
    return response


urlpatterns = [
    path("fans/", fan_list, name="fan_list"),
    path("fans/export.csv", fan_export, name="fan_export"),
    path("fans/rules/", fan_rules, name="fan_rules"),
    path("fans/import/", fan_import, name="fan-import"),
    path("fans/import/sample.csv", fan_import_sample, name="fan-import-sample"),
    path("fans/import/<int:import_id>/", fan_import_detail, name="fan-import-detail"),
    path("fans/<int:fan_id>/", fan_detail, name="fan_detail"),
    path("fans/<int:fan_id>/notes/", fan_note, name="fan_note"),
    path("fans/<int:fan_id>/tags/", fan_tags, name="fan_tags"),
]
