"""Accounts' contribution to the home dashboard: the team card and chatters per creator."""

from __future__ import annotations

from django.db.models import Count
from django.urls import reverse

from apps.accounts.models import CreatorAssignment
from apps.accounts.selectors import agency_counts
from apps.core.registry import Card, Stat


def cards(request) -> list[Card]:
    membership = request.tenant.membership
    return [Card("Team", "accounts/cards/team.html", agency_counts(agency_id=membership.agency_id), order=50)]


def creator_stats(request, creators) -> dict[int, list[Stat]]:
    counts = dict(
        CreatorAssignment.objects.for_agency(request.tenant.membership.agency_id)
        .filter(creator__in=[c.pk for c in creators])
        .values("creator")
        .annotate(n=Count("id"))
        .values_list("creator", "n")
    )
    url = reverse("accounts:member-list")
    return {c.pk: [Stat("Chatters assigned", str(counts.get(c.pk, 0)), url)] for c in creators}
