"""Optimization pages: the overview (pricing, best times, anomalies, open recommendations and the
track record of one creator), the recommendation and anomaly lists, settings, and CSV import.

Views parse, authorise, call one service or selector and render; the engines run in
services.comprehensive. Creators are the member's own (``request.tenant.creators``: chatters see
their assigned creators only); another agency's creator, recommendation or anomaly answers 404.
Each page runs a fixed number of queries whatever the number of creators or rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.decorators import member_required
from apps.accounts.models import Creator, Membership, Role
from apps.accounts.permissions import Perm, has_perm, sees_all_creators
from apps.accounts.selectors import creator_get_for_member
from apps.core.errors import ApplicationError, form_add_error
from apps.optimization import charts, imports, pricing, selectors, services, timing
from apps.optimization.forms import (
    AdviceOptionsForm,
    AnomalyFilterForm,
    DismissForm,
    ImportForm,
    RecommendationFilterForm,
    SettingsForm,
)
from apps.optimization.models import ANOMALY_LABELS, METRIC_LABELS, MONEY_METRICS, Recommendation, Risk, Strategy

PAGE_SIZE = 25
SERVICE_SHOWN = 20  # service anomalies listed under the creators' ones
CHART_DAYS = 90
OWN_OFFERS_SHOWN = 60


def _visible_creator_ids(membership: Membership, creators: list[Creator]) -> list[int] | None:
    """None (every creator of the agency) for roles that see all, else the chatter's creators."""
    return None if sees_all_creators(membership) else [creator.pk for creator in creators]


def _creator_from_query(request: HttpRequest, name: str = "creator") -> Creator | None:
    """The creator named in the query string (404 when it is not the member's), else the one
    chosen in the switcher."""
    raw = request.GET.get(name, "")
    if raw:
        try:
            creator_id = int(raw)
        except ValueError:
            raise Http404("No such creator.") from None
        for creator in request.tenant.creators:
            if creator.pk == creator_id:
                return creator
        return creator_get_for_member(membership=request.tenant.membership, creator_id=creator_id)
    return request.tenant.creator


def _can_acknowledge(membership: Membership) -> bool:
    """Whether to show Acknowledge buttons: every role but viewer (services.anomaly_acknowledge)."""
    return membership.role != Role.VIEWER


def _safe_next(request: HttpRequest, fallback: str) -> str:
    """The page to go back to after a form post: a path on this site, else ``fallback`` (a bare
    word would be taken by ``redirect`` for a view name, and another host is an open redirect)."""
    target = request.POST.get("next", "")
    if (
        target.startswith("/")
        and not target.startswith("//")
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    ):
        return target
    return fallback


# --- overview ---------------------------------------------------------------------------------


def _timing_card(result: Any, unit: str) -> dict[str, Any]:
    if isinstance(result, timing.TimingAdvice):
        slots = [
            {"day": timing.WEEKDAYS[slot.weekday], "hour": f"{slot.hour:02d}:00", "lift": slot.lift * 100,
             "confidence": slot.confidence * 100, "rate": slot.expected_rate}
            for slot in result.slots
        ]  # fmt: skip
        return {"advice": result, "slots": slots, "chart": charts.heat_map(result.rates, result.slots, unit=unit)}
    return {"advice": None, "message": getattr(result, "message", "No advice yet.")}


def _advice_context(
    request: HttpRequest, creator: Creator, options: dict[str, str], metric: str | None
) -> dict[str, Any]:
    membership = request.tenant.membership
    result = services.comprehensive(
        creator=creator,
        strategy=options.get("strategy") or None,
        risk=options.get("risk") or None,
        sensitivity=options.get("sensitivity") or None,
    )
    offers = list(
        selectors.offer_list(agency_id=creator.agency_id, creator_ids=[creator.pk]).values_list(
            "price", "recipients", "unlocks"
        )[:OWN_OFFERS_SHOWN]
    )
    offers = [(float(price), recipients, unlocks) for price, recipients, unlocks in offers]
    context: dict[str, Any] = {"result": result, "offer_count": len(offers)}
    if isinstance(result.pricing, pricing.Recommendation):
        advice = result.pricing
        context["pricing_chart"] = charts.demand_curve(advice.curve, recommended_price=advice.price, own_offers=offers)
        context["pricing_rows"] = [
            {"price": charts.money_label(point.price), "rate": f"{point.mean:.1%}",
             "range": f"{point.lower:.1%} to {point.upper:.1%}", "revenue": f"${point.price * point.mean:.2f}"}
            for point in advice.curve
        ]  # fmt: skip
        context["pricing_rate"] = f"{advice.expected_unlock_rate:.1%}"
        context["pricing_strategy"] = Strategy(str(advice.strategy)).label
        context["pricing_risk"] = Risk(str(advice.risk)).label.lower()
    context["timing_cards"] = [
        (_timing_card(result.post_timing, "engagement per post"), "Best times to post", "post"),
        (_timing_card(result.message_timing, "replies per fan messaged"), "Best times to message", "message"),
    ]

    stored = list(
        selectors.recent_anomalies(agency_id=membership.agency_id, creator_ids=[creator.pk], days=CHART_DAYS)[:50]
    )
    if metric not in METRIC_LABELS:
        latest = stored[0].metric if stored else None
        metric = latest if latest in METRIC_LABELS else "revenue_total"
    series = selectors.daily_series(creator, days=CHART_DAYS)
    zone = ZoneInfo(creator.timezone or "UTC")
    detected = {(point.metric, point.day): _Mark(point.day, point) for point in result.anomalies}
    for anomaly in stored:
        if anomaly.granularity == "day":
            day = anomaly.at.astimezone(zone).date()
            detected[(anomaly.metric, day)] = _Mark(day, anomaly)
    marks = [mark for (name, _), mark in detected.items() if name == metric]
    context.update(
        stored_anomalies=stored[:8],
        anomaly_metric=metric,
        anomaly_metric_label=METRIC_LABELS[metric],
        metric_labels=ANOMALY_LABELS,
        metric_choices=sorted(METRIC_LABELS.items(), key=lambda item: item[1]),
        anomaly_chart=charts.anomaly_series(
            series.days, series.values[metric], marks, money=metric in MONEY_METRICS or metric == "revenue_total"
        ),
        anomaly_points=bool(marks),
        can_acknowledge=_can_acknowledge(membership),
    )
    return context


@dataclass(frozen=True)
class _Mark:
    """A flagged day for the series chart: a stored Anomaly or one just detected."""

    day: date
    point: Any

    @property
    def value(self) -> float:
        return self.point.value

    @property
    def expected_low(self) -> float:
        return self.point.expected_low

    @property
    def expected_high(self) -> float:
        return self.point.expected_high

    @property
    def severity(self) -> str:
        return self.point.severity


@member_required()
@vary_on_headers("HX-Request")
def overview(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    creator = _creator_from_query(request)
    context: dict[str, Any] = {"creators": creators, "creator": creator}
    if creator is None:
        return render(request, "optimization/overview.html", context)
    form = AdviceOptionsForm(request.GET)
    options = form.cleaned_data if form.is_valid() else {}
    settings_in_force = selectors.effective_settings(creator)
    context.update(
        form=form,
        settings=settings_in_force,
        can_edit=has_perm(membership, Perm.EDIT, creator),
        **_advice_context(request, creator, options, request.GET.get("metric")),
    )
    if request.htmx and request.GET.get("part") == "advice":
        return render(request, "optimization/overview.html#advice", context)
    context.update(
        recommendations=list(selectors.open_recommendations(agency_id=membership.agency_id, creator_ids=[creator.pk])),
        track_record=selectors.track_record(agency_id=membership.agency_id, creator_id=creator.pk),
    )
    return render(request, "optimization/overview.html", context)


# --- recommendations --------------------------------------------------------------------------


@member_required()
def recommendation_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    form = RecommendationFilterForm(request.GET, creators=creators)
    filters = form.cleaned_data if form.is_valid() else {}
    creator_ids = _visible_creator_ids(membership, creators)
    if filters.get("creator"):
        creator_ids = [filters["creator"]]
    items = selectors.recommendation_list(
        agency_id=membership.agency_id,
        creator_ids=creator_ids,
        status=filters.get("status") or None,
        kind=filters.get("kind") or None,
    ).select_related("decided_by")
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "optimization/recommendations.html", {
        "page": page, "form": form, "query": query.urlencode(),
        "can_edit": has_perm(membership, Perm.EDIT),
    })  # fmt: skip


def _decision_response(request: HttpRequest, recommendation: Recommendation, error: str | None) -> HttpResponse:
    if request.htmx:
        response = render(request, "optimization/partials/recommendation.html", {
            "rec": recommendation, "can_edit": True, "error": error,
        })  # fmt: skip
        return response
    if error:
        messages.error(request, error)
    return redirect(_safe_next(request, "optimization:overview"))


@member_required(Perm.EDIT)
@require_POST
def recommendation_accept(request: HttpRequest, recommendation_id: int) -> HttpResponse:
    membership = request.tenant.membership
    recommendation = services.recommendation_get_for_member(membership=membership, recommendation_id=recommendation_id)
    error = None
    try:
        services.recommendation_accept(membership=membership, recommendation_id=recommendation.pk)
    except ApplicationError as exc:
        error = exc.message
    else:
        if not request.htmx:
            messages.success(request, f"Accepted: {recommendation.headline}")
    recommendation.refresh_from_db()
    return _decision_response(request, recommendation, error)


@member_required(Perm.EDIT)
@require_POST
def recommendation_dismiss(request: HttpRequest, recommendation_id: int) -> HttpResponse:
    membership = request.tenant.membership
    recommendation = services.recommendation_get_for_member(membership=membership, recommendation_id=recommendation_id)
    form = DismissForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    error = None
    try:
        services.recommendation_dismiss(membership=membership, recommendation_id=recommendation.pk, reason=reason)
    except ApplicationError as exc:
        error = exc.message
    else:
        if not request.htmx:
            messages.success(request, f"Dismissed: {recommendation.headline}")
    recommendation.refresh_from_db()
    return _decision_response(request, recommendation, error)


# --- anomalies --------------------------------------------------------------------------------


@member_required()
def anomaly_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    form = AnomalyFilterForm(request.GET, creators=creators)
    filters = form.cleaned_data if form.is_valid() else {}
    creator_ids = _visible_creator_ids(membership, creators)
    if filters.get("creator"):
        creator_ids = [filters["creator"]]
    items = selectors.recent_anomalies(agency_id=membership.agency_id, creator_ids=creator_ids, days=366)
    if filters.get("status"):
        items = items.filter(status=filters["status"])
    if filters.get("severity"):
        items = items.filter(severity=filters["severity"])
    page = Paginator(items.select_related("acknowledged_by"), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    # The agency's AI cost per hour for owners and managers, the platform's request rate, errors and
    # latency for staff: whom monitoring's alerts on them reach (the API answers the same).
    service = []
    agency, platform = selectors.service_anomaly_scope(membership=membership, user=request.user)
    if agency or platform:
        service = list(
            selectors.service_anomaly_list(
                agency_id=membership.agency_id, include_agency=agency, include_platform=platform
            )[:SERVICE_SHOWN]
        )
    return render(request, "optimization/anomalies.html", {
        "page": page, "form": form, "query": query.urlencode(), "can_acknowledge": _can_acknowledge(membership),
        "labels": ANOMALY_LABELS, "service_anomalies": service,
    })  # fmt: skip


@member_required()
@require_POST
def anomaly_acknowledge(request: HttpRequest, anomaly_id: int) -> HttpResponse:
    """Chatters may acknowledge their creators' anomalies, viewers may not (services.anomaly_acknowledge)."""
    membership = request.tenant.membership
    anomaly = services.anomaly_get_for_member(membership=membership, anomaly_id=anomaly_id)
    error = None
    try:
        services.anomaly_acknowledge(membership=membership, anomaly_id=anomaly.pk)
    except ApplicationError as exc:
        error = exc.message
    anomaly.refresh_from_db()
    if request.htmx:
        return render(request, "optimization/partials/anomaly_row.html", {
            "anomaly": anomaly, "can_acknowledge": True, "error": error, "labels": ANOMALY_LABELS,
            "show_creator": request.POST.get("show_creator") == "1",
        })  # fmt: skip
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Anomaly acknowledged.")
    return redirect(_safe_next(request, "optimization:anomalies"))


# --- settings ---------------------------------------------------------------------------------


@member_required(Perm.EDIT)
def settings_edit(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    data = request.POST if request.method == "POST" else None
    form = SettingsForm(data, creators=creators)
    if request.method == "POST" and form.is_valid():
        chosen = form.cleaned_data["creator"]
        creator = creator_get_for_member(membership=membership, creator_id=chosen) if chosen else None
        try:
            services.settings_update(
                membership=membership,
                creator=creator,
                strategy=form.cleaned_data["strategy"],
                risk=form.cleaned_data["risk"],
                sensitivity=form.cleaned_data["sensitivity"],
                explore_prices=form.cleaned_data["explore_prices"],
            )
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, f"Settings saved for {creator.display_name if creator else 'the agency'}.")
            return redirect("optimization:settings")
    default, overrides = selectors.settings_for_agency(membership.agency_id)
    if data is None:
        creator = _creator_from_query(request) if request.GET.get("creator") else None
        current = overrides.get(creator.pk) if creator else default
        if current is None and creator is not None:
            current = default
        initial = {"creator": creator.pk if creator else ""}
        if current is not None:
            initial.update(strategy=current.strategy, risk=current.risk, sensitivity=current.sensitivity,
                           explore_prices=current.explore_prices)  # fmt: skip
        form = SettingsForm(initial=initial, creators=creators)
    names = {creator.pk: creator.display_name for creator in creators}
    rows = [(names[creator_id], row) for creator_id, row in overrides.items() if creator_id in names]
    return render(request, "optimization/settings.html", {
        "form": form, "default": default, "overrides": sorted(rows, key=lambda item: item[0].lower()),
    })  # fmt: skip


# --- import -----------------------------------------------------------------------------------


IMPORT_REPORT = "optimization_import_report"  # session: a finished import's counts, shown once


@member_required(Perm.EDIT)
def import_csv(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    report = None
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES, creators=creators)
        if form.is_valid():
            creator = creator_get_for_member(membership=membership, creator_id=form.cleaned_data["creator"])
            kind = form.cleaned_data["kind"]
            run = imports.daily_import_csv if kind == "daily" else imports.offers_import_csv
            try:
                report = run(membership=membership, creator=creator, file=form.cleaned_data["file"])
            except ApplicationError as error:
                form_add_error(form, error)
            if report is not None and report.ok:
                # Redirect, so reloading the page cannot post the file again: offers without an
                # external_id would be added twice.
                counts = {name: getattr(report, name) for name in ("rows", "created", "updated", "duplicates")}
                request.session[IMPORT_REPORT] = counts
                return redirect(f"{reverse('optimization:import')}?kind={kind}")
    else:
        creator = request.tenant.creator
        initial = {"creator": creator.pk if creator else None, "kind": request.GET.get("kind", "daily")}
        form = ImportForm(initial=initial, creators=creators)
        if counts := request.session.pop(IMPORT_REPORT, None):
            report = imports.ImportReport(**counts)
    return render(request, "optimization/import.html", {
        "form": form, "report": report, "daily_columns": imports.DAILY_COLUMNS, "offer_columns": imports.OFFER_COLUMNS,
    })  # fmt: skip
