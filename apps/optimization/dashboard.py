"""Optimization's contribution to the home dashboard: the "Optimization" card, with how many
recommendations are open, the three newest (headline and creator), and how many anomalies of
the last week are still open.

Scoped to the creators the member may see (``request.tenant.creators``, which the dashboard has
already loaded: a chatter's assigned ones): two queries whatever the number of creators,
recommendations or anomalies (the three newest open recommendations carrying the count of all
open ones as a window, and one aggregate over the week's anomalies). No per-creator tile stats.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q, Window
from django.utils import timezone

from apps.core.registry import Card
from apps.optimization.models import Anomaly
from apps.optimization.selectors import open_recommendations

CARD_ORDER = 40  # after campaigns (30), before the team (50)
SHOWN = 3
ANOMALY_DAYS = 7


def cards(request) -> list[Card]:
    membership = request.tenant.membership
    if membership is None:
        return []
    creator_ids = [creator.pk for creator in request.tenant.creators]
    if not creator_ids:
        return []
    newest = list(
        open_recommendations(agency_id=membership.agency_id, creator_ids=creator_ids).annotate(
            open_total=Window(Count("id"))
        )[:SHOWN]
    )
    since = timezone.now() - timedelta(days=ANOMALY_DAYS)
    anomalies = (
        Anomaly.objects.for_agency(membership.agency_id)
        .filter(creator_id__in=creator_ids, at__gte=since)
        .aggregate(open=Count("id", filter=Q(status=Anomaly.Status.OPEN)), high=Count(
            "id", filter=Q(status=Anomaly.Status.OPEN, severity="high")))
    )  # fmt: skip
    data = {
        "recommendations": newest,
        "open_count": newest[0].open_total if newest else 0,
        "anomalies": anomalies["open"],
        "high_anomalies": anomalies["high"],
        "days": ANOMALY_DAYS,
    }
    return [Card("Optimization", "optimization/cards/optimization.html", data, CARD_ORDER)]
