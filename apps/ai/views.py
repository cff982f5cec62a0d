"""AI settings pages: the agency's provider connections (bring your own key) and provider status."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.ai import selectors, services
from apps.ai.forms import CredentialForm
from apps.core.errors import ApplicationError, form_add_error


@member_required()
def credential_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    can_edit = has_perm(membership, Perm.EDIT)
    form = CredentialForm(request.POST or None)
    if request.method == "POST":
        if not can_edit:
            messages.error(request, "Your role cannot change AI providers.")
            return redirect("ai:credential-list")
        if form.is_valid():
            try:
                credential = services.credential_create(membership=membership, data=form.cleaned_data)
            except ApplicationError as error:
                form_add_error(form, error)
            else:
                messages.success(request, f"{credential.label} added. Use “Test connection” to check the key.")
                return redirect("ai:credential-list")
    context = {
        "credentials": selectors.credential_list(agency_id=membership.agency_id),
        "providers": selectors.configured_providers(agency_id=membership.agency_id),
        "form": form,
        "can_edit": can_edit,
    }
    return render(request, "ai/credentials.html", context)


@member_required(Perm.EDIT)
def credential_edit(request: HttpRequest, credential_id: int) -> HttpResponse:
    membership = request.tenant.membership
    credential = selectors.credential_get(agency_id=membership.agency_id, credential_id=credential_id)
    form = CredentialForm(request.POST or None, initial=CredentialForm.initial_for(credential))
    if request.method == "POST" and form.is_valid():
        try:
            services.credential_update(membership=membership, credential=credential, data=form.cleaned_data)
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, f"{credential.label} saved.")
            return redirect("ai:credential-list")
    return render(request, "ai/credential_edit.html", {"form": form, "credential": credential})


@member_required(Perm.EDIT)
@require_POST
def credential_delete(request: HttpRequest, credential_id: int) -> HttpResponse:
    membership = request.tenant.membership
    credential = selectors.credential_get(agency_id=membership.agency_id, credential_id=credential_id)
    services.credential_delete(membership=membership, credential=credential)
    messages.success(request, f"{credential.label} removed. AI calls no longer use it.")
    return redirect("ai:credential-list")


@member_required(Perm.EDIT)
@require_POST
def credential_test(request: HttpRequest, credential_id: int) -> HttpResponse:
    membership = request.tenant.membership
    credential = selectors.credential_get(agency_id=membership.agency_id, credential_id=credential_id)
    credential = services.credential_test(membership=membership, credential=credential)
    if request.htmx:
        return render(request, "ai/credentials.html#test-result", {"credential": credential})
    level = messages.success if credential.last_test_ok else messages.error
    level(request, f"{credential.label}: {credential.last_test_message}")
    return redirect("ai:credential-list")


@member_required()
def provider_status(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    usage = selectors.usage_summary(agency_id=membership.agency_id)
    if not has_perm(membership, Perm.EDIT):
        usage["cost"] = None  # spend is for owners and managers, as on the cost page (docs/ai-cost.md)
    context = {"providers": selectors.provider_status(agency_id=membership.agency_id), "usage": usage}
    return render(request, "ai/status.html", context)
