"""The home dashboard (``/``): the agency's creators with every app's numbers, and every app's cards;
and ``/favicon.ico``, which browsers ask for on every page, templated or not.

It lives in the project package because it gathers all apps: tiles and cards come from each
app's ``dashboard.py`` through core's registry, the creators and the member check from accounts.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static

from apps.accounts.decorators import member_required
from apps.core import registry

DASHBOARD_CREATORS = 12


@member_required()
def dashboard(request: HttpRequest) -> HttpResponse:
    tenant = request.tenant
    creators = tenant.creators[:DASHBOARD_CREATORS]
    stats = registry.creator_stats(request, creators)
    context = {
        "creator_tiles": [(creator, stats.get(creator.pk, [])) for creator in creators],
        "more_creators": max(len(tenant.creators) - DASHBOARD_CREATORS, 0),
        "cards": registry.dashboard_cards(request),
    }
    return render(request, "dashboard.html", context)


def favicon(request: HttpRequest) -> HttpResponse:
    # Resolved per request: the hashed name exists only once collectstatic has written the manifest.
    return redirect(static("img/favicon.svg"), permanent=True)
