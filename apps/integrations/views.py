"""Integrations pages and the webhook endpoint. Thin: parse, authorise, call one service or
selector, render."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse, RawPostDataException
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.accounts.selectors import creator_get_for_member
from apps.core.errors import ApplicationError, form_add_error
from apps.integrations import selectors, services, webhooks
from apps.integrations.forms import ApiConnectionForm, OAuthConnectForm
from apps.integrations.models import API_PLATFORMS

logger = logging.getLogger(__name__)
PAGE_SIZE = 25


@member_required()
@vary_on_headers("HX-Request")
def overview(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    page = Paginator(selectors.creators_with_connections(membership=membership), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    template = "integrations/overview.html#creator-table" if request.htmx else "integrations/overview.html"
    return render(request, template, {"page": page})


def _creator_page(request: HttpRequest, creator_id: int, *, api_form=None, status: int = 200) -> HttpResponse:
    membership = request.tenant.membership
    creator, rows = selectors.platform_rows(membership=membership, creator_id=creator_id)
    forms = {}
    for row in rows:
        if row.uses_api:
            if api_form is not None and api_form.prefix == row.platform:
                forms[row.platform] = api_form
            else:
                initial = {}
                if row.connection is not None:
                    initial = {
                        "api_base_url": row.connection.api_base_url,
                        "api_account_id": row.connection.api_account_id,
                    }
                forms[row.platform] = ApiConnectionForm(initial=initial, prefix=row.platform)
    context = {
        "creator": creator,
        "rows": [(row, forms.get(row.platform)) for row in rows],
        "can_edit": has_perm(membership, Perm.EDIT, creator),
    }
    return render(request, "integrations/creator.html", context, status=status)


@member_required()
def creator_connections(request: HttpRequest, creator_id: int) -> HttpResponse:
    return _creator_page(request, creator_id)


@member_required(Perm.EDIT)
@require_POST
def oauth_connect(request: HttpRequest, creator_id: int) -> HttpResponse:
    membership = request.tenant.membership
    creator = creator_get_for_member(membership=membership, creator_id=creator_id)
    form = OAuthConnectForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a platform to connect.")
        return redirect("integrations:creator", creator_id=creator.pk)
    try:
        url = services.oauth_start(
            membership=membership, creator=creator, platform=form.cleaned_data["platform"], session=request.session
        )
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect("integrations:creator", creator_id=creator.pk)
    return redirect(url)


@member_required(Perm.EDIT)
@require_POST
def api_connect(request: HttpRequest, creator_id: int) -> HttpResponse:
    membership = request.tenant.membership
    creator = creator_get_for_member(membership=membership, creator_id=creator_id)
    platform = request.POST.get("platform", "")
    if platform not in API_PLATFORMS:
        messages.error(request, "Choose OnlyFans or Fansly.")
        return redirect("integrations:creator", creator_id=creator.pk)
    form = ApiConnectionForm(request.POST, prefix=platform)
    if form.is_valid():
        try:
            connection, secret = services.api_connection_configure(
                membership=membership, creator=creator, platform=platform, **form.cleaned_data
            )
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            webhook_url = request.build_absolute_uri(
                reverse(f"integrations:webhook-{connection.platform}", kwargs={"connection_key": connection.public_id})
            )
            return render(
                request,
                "integrations/api_saved.html",
                {"connection": connection, "webhook_secret": secret, "webhook_url": webhook_url,
                 "timestamp_header": webhooks.TIMESTAMP_HEADER, "signature_header": webhooks.SIGNATURE_HEADER},
            )  # fmt: skip
    return _creator_page(request, creator.pk, api_form=form, status=400)


def _oauth_error(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "integrations/oauth_error.html", {"message": message}, status=400)


@member_required()
def oauth_callback(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    try:
        pending = services.oauth_pending_pop(session=request.session, state=request.GET.get("state", "")[:200])
    except ApplicationError as error:
        return _oauth_error(request, error.message)
    if pending.get("agency_id") != membership.agency_id:
        return _oauth_error(request, "This sign-in was started for another agency. Switch to it and start again.")
    creator = creator_get_for_member(membership=membership, creator_id=pending["creator_id"])
    label = services.provider_label(pending["platform"])
    error = request.GET.get("error", "")
    if error:
        if error == "access_denied":
            messages.info(request, f"{label} was not connected: the sign-in was cancelled or access was refused.")
            return redirect("integrations:creator", creator_id=creator.pk)
        return _oauth_error(request, f"{label} did not complete the sign-in ({error[:80]}). Try again.")
    try:
        services.oauth_complete(
            membership=membership, creator=creator, pending=pending, code=request.GET.get("code", "")[:2000]
        )
    except ApplicationError as error:
        return _oauth_error(request, error.message)
    messages.success(request, f"{creator.display_name} is connected to {label}.")
    return redirect("integrations:creator", creator_id=creator.pk)


@member_required()
def connection_detail(request: HttpRequest, connection_id: int) -> HttpResponse:
    membership = request.tenant.membership
    connection = selectors.connection_get_for_member(membership=membership, connection_id=connection_id)
    context = {
        "connection": connection,
        "events": selectors.connection_events(connection=connection),
        "webhook_events": selectors.webhook_events_recent(connection=connection) if connection.uses_api else [],
        "can_edit": has_perm(membership, Perm.EDIT, connection.creator),
    }
    return render(request, "integrations/connection.html", context)


@member_required(Perm.EDIT)
def connection_disconnect(request: HttpRequest, connection_id: int) -> HttpResponse:
    membership = request.tenant.membership
    connection = selectors.connection_get_for_member(membership=membership, connection_id=connection_id)
    if request.method == "POST":
        services.connection_disconnect(membership=membership, connection=connection)
        messages.success(
            request, f"{connection.creator.display_name} is disconnected from {connection.get_platform_display()}."
        )
        return redirect("integrations:creator", creator_id=connection.creator_id)
    return render(request, "integrations/disconnect.html", {"connection": connection})


FORM_CONTENT_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, platform: str, connection_key) -> HttpResponse:
    """The third-party API's webhooks: no session, no member, JSON answers only (a hot path:
    bench/sync.py ``webhooks_per_s``; webhooks.py says what a request costs)."""
    connection = selectors.connection_for_webhook(platform=platform, public_id=connection_key)
    if connection is None:
        return JsonResponse({"error": "not_found", "message": "No such webhook."}, status=404)
    if request.content_type in FORM_CONTENT_TYPES:  # a form, not a webhook: never parsed
        return JsonResponse({"error": "unsupported_media_type", "message": "Send application/json."}, status=415)
    try:
        body = request.body
    except RawPostDataException:  # already parsed as a form by something upstream
        return JsonResponse({"error": "unsupported_media_type", "message": "Send application/json."}, status=415)
    if len(body) > webhooks.MAX_BODY_BYTES:
        return JsonResponse({"error": "too_large", "message": "The body is too large."}, status=413)
    try:
        webhooks.webhook_verify(
            connection=connection,
            timestamp=request.headers.get(webhooks.TIMESTAMP_HEADER),
            signature=request.headers.get(webhooks.SIGNATURE_HEADER),
            body=body,
        )
    except webhooks.WebhookRejected as error:
        logger.warning(
            "integrations.webhook.rejected",
            extra={"connection_id": connection.pk, "platform": platform, "reason": error.message},
        )
        return JsonResponse({"error": error.code, "message": error.message}, status=401)
    try:
        stored = webhooks.webhook_receive(connection=connection, body=body)
    except ApplicationError as error:
        return JsonResponse({"error": error.code, "message": error.message}, status=400)
    # Stored: a worker applies it after this response (webhooks.py).
    return JsonResponse({"id": stored.event_id, "status": stored.status, "duplicate": not stored.created})


# --- Sync (apps/integrations/sync.py) ---------------------------------------------------------------


@member_required()
@vary_on_headers("HX-Request")
def sync_history(request: HttpRequest, connection_id: int) -> HttpResponse:
    from apps.integrations.sync import connection_is_live

    membership = request.tenant.membership
    connection = selectors.connection_get_for_member(membership=membership, connection_id=connection_id)
    page = Paginator(selectors.sync_runs(connection=connection), PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "connection": connection,
        "page": page,
        "live": connection_is_live(connection),
        "can_edit": has_perm(membership, Perm.EDIT, connection.creator),
    }
    template = "integrations/sync_history.html#sync-runs" if request.htmx else "integrations/sync_history.html"
    return render(request, template, context)


@member_required(Perm.EDIT)
@require_POST
def sync_start(request: HttpRequest, connection_id: int) -> HttpResponse:
    from apps.integrations.sync import sync_request

    membership = request.tenant.membership
    connection = selectors.connection_get_for_member(membership=membership, connection_id=connection_id)
    try:
        sync_request(membership=membership, connection=connection)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Sync started. Refresh this page to follow its progress.")
    return redirect("integrations:sync-history", connection_id=connection.pk)
