"""Monitoring pages, for operators only (staff users): the overview (SLOs, open alerts, metrics
sinks, and the API and queue tables of apps.monitoring.api_stats), the alert history, SLO forms,
alert webhooks and their delivery log.

Signed-in users who are not staff get 404, as for an object of another agency: the pages are
not theirs and need not be advertised. The overview's tables refresh every 15 s by polling the
``tables`` partial of the same URL (django-template-partials), and its query count does not grow
with the number of SLOs, alerts or webhooks (reads are shared, lists are paged).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from apps.core.metrics import sink_status
from apps.monitoring import slo as slo_module
from apps.monitoring import webhooks
from apps.monitoring.api_stats import api_overview
from apps.monitoring.capacity import capacity_context
from apps.monitoring.forms import SLOForm, WebhookForm
from apps.monitoring.models import SLO, Alert, AlertWebhook, WebhookAttempt

ALERT_PAGE_SIZE = 25
ATTEMPT_PAGE_SIZE = 50
RECENT_RESOLVED = 10
OPEN_ALERTS_SHOWN = 50  # the newest; the rest are on the alert history, filtered to firing
SESSION_NEW_SECRET = "monitoring.new_webhook_secret"  # a new webhook's secret, until its page shows it


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not (request.user.is_active and request.user.is_staff):
            raise Http404
        return view(request, *args, **kwargs)

    return wrapped


@staff_required
@vary_on_headers("HX-Request")
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    statuses = slo_module.slo_status(list(SLO.objects.all()), now=now)
    firing = Alert.objects.filter(state=Alert.State.FIRING)
    open_alerts = list(firing.select_related("slo", "agency").order_by("-fired_at", "-id")[:OPEN_ALERTS_SHOWN])
    resolved = list(
        Alert.objects.filter(state=Alert.State.RESOLVED)
        .select_related("slo", "agency")
        .order_by("-resolved_at")[:RECENT_RESOLVED]
    )
    context = {
        "statuses": statuses,
        "windows": slo_module.DISPLAYED_WINDOWS,
        "open_alerts": open_alerts,
        "open_total": firing.count() if len(open_alerts) == OPEN_ALERTS_SHOWN else len(open_alerts),
        "resolved": resolved,
        "sinks": sink_status(),
        "now": now,
        **api_overview(now=now),
        **capacity_context(now=now),
    }
    template = "monitoring/overview.html#tables" if request.htmx else "monitoring/overview.html"
    return render(request, template, context)


@staff_required
def alert_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state") or ""
    alerts = Alert.objects.select_related("slo", "agency").order_by("-fired_at", "-id")
    if state in Alert.State.values:
        alerts = alerts.filter(state=state)
    else:
        state = ""
    page = Paginator(alerts, ALERT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "monitoring/alerts.html", {"page": page, "state": state, "states": Alert.State.choices})


def _slo_form(request: HttpRequest, slo: SLO | None) -> HttpResponse:
    form = SLOForm(request.POST or None, instance=slo)
    if request.method == "POST" and form.is_valid():
        saved = slo_module.slo_save(slo=form.save(commit=False))
        messages.success(request, f"SLO “{saved.name}” saved.")
        return redirect("monitoring:overview")
    status = 400 if request.method == "POST" else 200
    return render(request, "monitoring/slo_form.html", {"form": form, "slo": slo}, status=status)


@staff_required
def slo_create(request: HttpRequest) -> HttpResponse:
    return _slo_form(request, None)


@staff_required
def slo_edit(request: HttpRequest, slo_id: int) -> HttpResponse:
    return _slo_form(request, get_object_or_404(SLO, pk=slo_id))


@staff_required
@require_POST
def slo_delete(request: HttpRequest, slo_id: int) -> HttpResponse:
    slo = get_object_or_404(SLO, pk=slo_id)
    slo_module.slo_delete(slo=slo)
    messages.success(request, f"SLO “{slo.name}” deleted.")
    return redirect("monitoring:overview")


@staff_required
def webhook_list(request: HttpRequest) -> HttpResponse:
    """The receivers and the form adding one. A webhook added redirects back here (post, redirect,
    get: reloading the page cannot add it twice); its secret waits in the session for that one
    page, which shows it and forgets it."""
    form = WebhookForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            webhook, secret = webhooks.webhook_create(
                url=data["url"],
                description=data["description"],
                agency_id=data["agency"].pk if data["agency"] else None,
            )
            request.session[SESSION_NEW_SECRET] = secret
            messages.success(request, f"Webhook to {webhook.url} added.")
            return redirect("monitoring:webhooks")
        status = 400
    new_secret = request.session.pop(SESSION_NEW_SECRET, None) if request.method == "GET" else None
    page = Paginator(
        AlertWebhook.objects.select_related("agency").order_by("agency_id", "id"), ALERT_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "new_secret": new_secret}
    response = render(request, "monitoring/webhooks.html", context, status=status)
    if new_secret:
        response["Cache-Control"] = "no-store"  # the secret is shown once and must not be kept
    return response


@staff_required
@require_POST
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(AlertWebhook, pk=webhook_id)
    webhooks.webhook_delete(webhook=webhook)
    messages.success(request, f"Webhook to {webhook.url} deleted.")
    return redirect("monitoring:webhooks")


@staff_required
def webhook_attempts(request: HttpRequest, webhook_id: int) -> HttpResponse:
    webhook = get_object_or_404(AlertWebhook.objects.select_related("agency"), pk=webhook_id)
    attempts = WebhookAttempt.objects.filter(webhook=webhook).select_related("alert").order_by("-created_at", "-id")
    page = Paginator(attempts, ATTEMPT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "monitoring/webhook_attempts.html", {"webhook": webhook, "page": page})
