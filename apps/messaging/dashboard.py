"""The fan CRM's contribution to the home dashboard: the "Unanswered conversations" and
"Revenue today" cards, and per creator tile "Waiting", "Fans" and "Revenue 30 d".

Everything is scoped to the creators the member may see (``request.tenant.creators``: a
chatter's assigned ones), which the dashboard has already loaded, so no query here depends on the
number of creators: the cards cost three queries and the tile stats one aggregate each (three).
"Today" is the agency's day in its timezone. Amounts are summed per currency, never mixed.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Min, Sum
from django.urls import reverse
from django.utils import timezone

from apps.core.registry import Card, Stat
from apps.core.timezones import zone_or_utc
from apps.messaging.models import Conversation, Fan, Purchase, PurchaseKind

TOP_WAITING = 5
REVENUE_DAYS = 30


def _creator_ids(request) -> list[int]:
    return [creator.pk for creator in request.tenant.creators]


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _agency_zone(request) -> zoneinfo.ZoneInfo:
    return zone_or_utc(request.tenant.agency.timezone)


def cards(request) -> list[Card]:
    membership = request.tenant.membership
    creator_ids = _creator_ids(request)
    return [
        Card("Unanswered conversations", "messaging/cards/unanswered.html", _unanswered(membership, creator_ids), 20),
        Card("Revenue today", "messaging/cards/revenue.html", _revenue_today(request, membership, creator_ids), 25),
    ]


def _unanswered(membership, creator_ids: list[int]) -> dict:
    waiting = Conversation.objects.for_agency(membership.agency_id).filter(creator__in=creator_ids, needs_reply=True)
    totals = waiting.aggregate(count=Count("id"), oldest=Min("waiting_since"))
    top = list(waiting.select_related("fan", "creator").order_by("-fan_value", "waiting_since", "-id")[:TOP_WAITING])
    for conversation in top:
        conversation.url = reverse("messaging:conversation", args=[conversation.pk])
    return {
        "count": totals["count"],
        "oldest": totals["oldest"],
        "top": top,
        "inbox_url": reverse("messaging:inbox") + "?waiting=on",
    }


def _revenue_today(request, membership, creator_ids: list[int]) -> dict:
    zone = _agency_zone(request)
    today = timezone.now().astimezone(zone).date()
    start = datetime.combine(today, time.min, tzinfo=zone)
    rows = (
        Purchase.objects.for_agency(membership.agency_id)
        .filter(creator__in=creator_ids, purchased_at__gte=start, purchased_at__lt=start + timedelta(days=1))
        .values("currency", "kind")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by("currency", "kind")
    )
    labels = dict(PurchaseKind.choices)
    by_currency: dict[str, dict] = {}
    for row in rows:
        entry = by_currency.setdefault(row["currency"], {"currency": row["currency"], "total": Decimal(0), "kinds": []})
        entry["total"] += row["total"]
        amount = _money(row["total"], row["currency"])
        entry["kinds"].append({"label": labels.get(row["kind"], row["kind"]), "amount": amount, "count": row["n"]})
    for entry in by_currency.values():
        entry["total"] = _money(entry["total"], entry["currency"])
    return {"currencies": list(by_currency.values()), "day": today, "timezone": str(zone)}


def creator_stats(request, creators) -> dict[int, list[Stat]]:
    agency_id = request.tenant.membership.agency_id
    ids = [creator.pk for creator in creators]
    waiting = dict(
        Conversation.objects.for_agency(agency_id)
        .filter(creator__in=ids, needs_reply=True)
        .values("creator")
        .annotate(n=Count("id"))
        .values_list("creator", "n")
    )
    fans = dict(
        Fan.objects.for_agency(agency_id)
        .filter(creator__in=ids)
        .values("creator")
        .annotate(n=Count("id"))
        .values_list("creator", "n")
    )
    revenue: dict[int, list[str]] = defaultdict(list)
    since = timezone.now() - timedelta(days=REVENUE_DAYS)
    rows = (
        Purchase.objects.for_agency(agency_id)
        .filter(creator__in=ids, purchased_at__gte=since)
        .values("creator", "currency")
        .annotate(total=Sum("amount"))
        .order_by("creator", "currency")
    )
    for row in rows:
        revenue[row["creator"]].append(_money(row["total"], row["currency"]))
    inbox, fan_list = reverse("messaging:inbox"), reverse("messaging:fan_list")
    return {
        creator.pk: [
            Stat("Waiting", str(waiting.get(creator.pk, 0)), f"{inbox}?creator={creator.pk}&waiting=on"),
            Stat("Fans", f"{fans.get(creator.pk, 0):,}", f"{fan_list}?creator={creator.pk}"),
            Stat(f"Revenue {REVENUE_DAYS} d", " + ".join(revenue[creator.pk]) or _money(Decimal(0), creator.currency)),
        ]
        for creator in creators
    }
