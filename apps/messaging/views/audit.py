"""The audit log: every message sent in a creator's name, who sent it, where its text came from
(typed, AI draft, template, automation) and how much the member edited it, with filters and a
CSV export.

Owners and managers only (``Perm.EDIT``): the log is how those who run the agency check the
chatters' work, so chatters and viewers get 403 (a chatter's own sent messages are in the inbox).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm
from apps.accounts.selectors import member_list
from apps.messaging import exports, selectors
from apps.messaging.forms.fans import AuditFilterForm
from apps.messaging.models import Message

PAGE_SIZE = 50


def _filtered(request: HttpRequest):
    membership = request.tenant.membership
    members = list(member_list(agency_id=membership.agency_id).prefetch_related(None))
    form = AuditFilterForm(request.GET, creators=request.tenant.creators, members=members)
    if not form.is_valid():
        return form, Message.objects.none()
    data = form.cleaned_data
    zone = timezone.get_current_timezone()
    since = datetime.combine(data["since"], time.min, tzinfo=zone) if data["since"] else None
    until = datetime.combine(data["until"] + timedelta(days=1), time.min, tzinfo=zone) if data["until"] else None
    messages = selectors.audit_list(
        membership=membership,
        creator_id=data["creator"],
        sent_by_id=data["member"],
        source=data["source"],
        since=since,
        until=until,
    )
    return form, messages


@member_required(Perm.EDIT)
def audit(request: HttpRequest) -> HttpResponse:
    form, messages = _filtered(request)
    page = Paginator(messages, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(),
               "filtered": any(v for k, v in request.GET.items() if k != "page")}  # fmt: skip
    template = "messaging/audit/list.html#audit-results" if request.htmx else "messaging/audit/list.html"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


@member_required(Perm.EDIT)
def audit_export(request: HttpRequest) -> HttpResponse:
    form, messages = _filtered(request)
    if form.errors:
        return HttpResponse("Fix the filters before exporting: " + "; ".join(
            f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()), status=400,
            content_type="text/plain; charset=utf-8")  # fmt: skip
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(exports.audit_csv(messages), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response


urlpatterns = [
    path("audit/", audit, name="audit"),
    path("audit/export.csv", audit_export, name="audit_export"),
]
