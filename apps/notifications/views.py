"""Notification pages: the list, mark one as read, mark all as read; the user's notification
preferences (their own, across every agency: login only, no membership needed)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.notifications import preferences, selectors, services
from apps.notifications.forms import PreferencesForm


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


@login_required
def preferences_edit(request: HttpRequest) -> HttpResponse:
    current = {kind.key: channels for kind, channels in preferences.preferences_for_user(user_id=request.user.pk)}
    form = PreferencesForm(request.POST if request.method == "POST" else None, current=current)
    if request.method == "POST" and form.is_valid():
        preferences.preferences_set(
            user=request.user, choices=form.choices(), ip_address=request.META.get("REMOTE_ADDR")
        )
        messages.success(request, "Your notification preferences are saved.")
        return redirect("notifications:preferences")
    return render(request, "notifications/preferences.html", {"form": form})
