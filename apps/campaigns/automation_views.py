"""Automation pages: the overview (each creator's four automations, on or off, with what they did
in the last 7 days) and one automation's page (its messages and delays, switched on or off, and
its recent runs with why each stopped). Thin: automations.py decides.

Owners and managers change automations; chatters and viewers read them."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm, has_perm
from apps.campaigns import automations
from apps.campaigns.forms import AutomationForm
from apps.campaigns.models import AutomationKind
from apps.core.errors import ApplicationError

RUNS_PAGE_SIZE = 25


@member_required()
def automation_list(request: HttpRequest) -> HttpResponse:
    creators = list(request.tenant.creators)
    context = {
        "overview": automations.automation_overview(creators=creators),
        "can_edit": has_perm(request.tenant.membership, Perm.EDIT),
    }
    return render(request, "campaigns/automations.html", context)


def _creator(request: HttpRequest, creator_id: int):
    creator = next((creator for creator in request.tenant.creators if creator.pk == creator_id), None)
    if creator is None:
        raise Http404("No such creator.")
    return creator


@member_required()
def automation_edit(request: HttpRequest, creator_id: int, kind: str) -> HttpResponse:
    if kind not in AutomationKind.values:
        raise Http404("No such automation.")
    membership = request.tenant.membership
    creator = _creator(request, creator_id)
    automation = automations.automation_for(creator=creator, kind=kind)
    can_edit = has_perm(membership, Perm.EDIT, creator=creator)
    status = 200
    if request.method == "POST":
        form = AutomationForm(request.POST)
        if form.is_valid():
            try:
                automations.automation_save(
                    membership=membership,
                    creator=creator,
                    kind=kind,
                    enabled=form.cleaned_data["enabled"],
                    steps=form.steps(),
                )
            except ApplicationError as error:
                form.add_service_error(error)
            except PermissionDenied:
                form.add_error(None, "Only owners and managers change automations.")
            else:
                state = "on" if form.cleaned_data["enabled"] else "off"
                messages.success(request, f"{AutomationKind(kind).label} saved; it is {state}.")
                return redirect("campaigns:automation", creator_id=creator.pk, kind=kind)
        status = 400
    else:
        form = AutomationForm(initial=AutomationForm.initial_for(automation))
    runs = (
        Paginator(automations.automation_runs(automation=automation), RUNS_PAGE_SIZE).get_page(request.GET.get("page"))
        if automation.pk
        else None
    )
    context = {
        "automation": automation,
        "creator": creator,
        "kind_label": AutomationKind(kind).label,
        "form": form,
        "can_edit": can_edit,
        "runs": runs,
        "step_numbers": range(1, automations.MAX_STEPS + 1),
    }
    return render(request, "campaigns/automation.html", context, status=status)


urlpatterns = [
    path("campaigns/automations/", automation_list, name="automations"),
    path("campaigns/automations/<int:creator_id>/<str:kind>/", automation_edit, name="automation"),
]
