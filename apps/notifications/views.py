"""Notification pages: the list, mark one as read, mark all as read."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.notifications import selectors, services


@member_required()
def notification_list(request: HttpRequest) -> HttpResponse:
    items = selectors.notification_list(membership=request.tenant.membership)
    page = Paginator(items, 25).get_page(request.GET.get("page"))
    return render(request, "notifications/notification_list.html", {"page": page})


@member_required()
@require_POST
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    notification = selectors.notification_get(membership=request.tenant.membership, notification_id=notification_id)
    services.notifications_mark_read(membership=request.tenant.membership, notification_id=notification.pk)
    if request.htmx:
        return HttpResponse("")
    return redirect("notifications:notification-list")


@member_required()
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    count = services.notifications_mark_read(membership=request.tenant.membership)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked as read.")
    return redirect("notifications:notification-list")
