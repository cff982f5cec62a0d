"""CRM connection pages (list, create, edit, rotate, delete, delivery log with replay) and the
inbound CRM webhook. Thin: parse, authorise, call one function of apps/integrations/crm.py, render."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, RawPostDataException
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.core.errors import ApplicationError, form_add_error
from apps.integrations import crm
from apps.integrations.forms import CRMConnectionForm
from apps.integrations.models import WebhookStatus

logger = logging.getLogger(__name__)


def _saved(request: HttpRequest, connection, secret: str, *, rotated: bool = False) -> HttpResponse:
    context = {
        "crm": connection,
        "secret": secret,
        "rotated": rotated,
        "inbound_url": crm.inbound_url(connection),
        "signature_header": crm.SIGNATURE_HEADER,
        "event_id_header": crm.EVENT_ID_HEADER,
    }
    return render(request, "integrations/crm_saved.html", context)


@member_required()
def crm_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    context = {"crms": list(crm.crm_list(membership=membership)), "can_edit": has_perm(membership, Perm.EDIT)}
    return render(request, "integrations/crm_list.html", context)


@member_required(Perm.EDIT)
def crm_create(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    form = CRMConnectionForm(request.POST or None, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        try:
            connection, secret = crm.crm_create(membership=membership, **form.cleaned_data)
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            return _saved(request, connection, secret)
    status = 400 if request.method == "POST" else 200
    return render(request, "integrations/crm_form.html", {"form": form, "crm": None}, status=status)


@member_required()
@vary_on_headers("HX-Request")
def crm_detail(request: HttpRequest, crm_id: int) -> HttpResponse:
    membership = request.tenant.membership
    connection = crm.crm_get_for_member(membership=membership, crm_id=crm_id)
    can_edit = has_perm(membership, Perm.EDIT)
    form = None
    status = 200
    if can_edit:
        initial = {
            "name": connection.name, "target_url": connection.target_url, "event_kinds": connection.event_kinds,
            "active": connection.active, "field_mapping": CRMConnectionForm.mapping_text(connection.field_mapping),
        }  # fmt: skip
        form = CRMConnectionForm(request.POST or None, initial=initial)
        if request.method == "POST":
            status = 400
            if form.is_valid():
                try:
                    crm.crm_update(membership=membership, crm=connection, **form.cleaned_data)
                except ApplicationError as error:
                    form_add_error(form, error)
                else:
                    messages.success(request, f"{connection.name} is saved.")
                    return redirect("integrations:crm-detail", crm_id=connection.pk)
    elif request.method == "POST":
        raise PermissionDenied("Your role does not allow this (edit).")
    page = crm.crm_deliveries_page(crm=connection, page=request.GET.get("page"))
    context = {
        "crm": connection,
        "form": form,
        "page": page,
        "inbound": crm.crm_inbound_recent(crm=connection),
        "inbound_url": crm.inbound_url(connection),
        "can_edit": can_edit,
    }
    template = "integrations/crm_detail.html#deliveries" if request.htmx else "integrations/crm_detail.html"
    return render(request, template, context, status=status)


@member_required(Perm.EDIT)
@require_POST
def crm_rotate(request: HttpRequest, crm_id: int) -> HttpResponse:
    membership = request.tenant.membership
    connection = crm.crm_get_for_member(membership=membership, crm_id=crm_id)
    secret = crm.crm_rotate_secret(membership=membership, crm=connection)
    return _saved(request, connection, secret, rotated=True)


@member_required(Perm.EDIT)
def crm_delete(request: HttpRequest, crm_id: int) -> HttpResponse:
    membership = request.tenant.membership
    connection = crm.crm_get_for_member(membership=membership, crm_id=crm_id)
    if request.method == "POST":
        crm.crm_delete(membership=membership, crm=connection)
        messages.success(request, f"{connection.name} is deleted.")
        return redirect("integrations:crm-list")
    return render(request, "integrations/crm_delete.html", {"crm": connection})


@member_required(Perm.EDIT)
@require_POST
def crm_replay(request: HttpRequest, crm_delivery_id: int) -> HttpResponse:
    membership = request.tenant.membership
    delivery = crm.crm_delivery_get_for_member(membership=membership, delivery_id=crm_delivery_id)
    try:
        crm.crm_delivery_replay(membership=membership, delivery=delivery)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Event {delivery.event_id} is queued to be sent again.")
    return redirect("integrations:crm-detail", crm_id=delivery.crm_id)


@csrf_exempt
@require_POST
def crm_inbound(request: HttpRequest, crm_key) -> HttpResponse:
    connection = crm.crm_for_inbound(public_id=crm_key)
    if connection is None:
        raise Http404("No such webhook.")
    try:
        body = request.body
    except RawPostDataException:
        return JsonResponse({"error": "unsupported_media_type", "message": "Send application/json."}, status=415)
    if len(body) > crm.MAX_INBOUND_BYTES:
        return JsonResponse({"error": "too_large", "message": "The body is too large."}, status=413)
    try:
        crm.crm_inbound_verify(crm=connection, header=request.headers.get(crm.SIGNATURE_HEADER), body=body)
    except crm.InboundRejected as error:
        logger.warning("integrations.crm.inbound_rejected", extra={"crm_id": connection.pk, "reason": error.message})
        return JsonResponse({"error": error.code, "message": error.message}, status=401)
    try:
        event, created = crm.crm_inbound_store(crm=connection, body=body)
    except ApplicationError as error:
        return JsonResponse({"error": error.code, "message": error.message}, status=400)
    status = (
        crm.crm_inbound_process(event_id=event.pk) if created or event.status == WebhookStatus.PENDING else event.status
    )
    return JsonResponse({"id": event.event_id, "status": status, "duplicate": not created})
