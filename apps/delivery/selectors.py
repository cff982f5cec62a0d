"""Reads for delivery. Every getter answers 404 for "missing" and "not yours" alike."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.delivery.models import Delivery, DeliveryStatus


def delivery_list(*, membership: Membership, status: str | None = None) -> QuerySet[Delivery]:
    """The deliveries of the creators this member may see, newest first."""
    deliveries = Delivery.objects.for_agency(membership.agency_id).filter(
        creator__in=creator_list(membership=membership, include_archived=True)
    )
    if status is not None:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("-created_at", "-id")


def delivery_get_for_member(*, membership: Membership, delivery_id: int) -> Delivery:
    delivery = delivery_list(membership=membership).select_related("creator").filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404("No such delivery.")
    return delivery


def delivery_find_by_source(*, agency_id: int, source: str, source_id: int) -> Delivery | None:
    """The delivery a higher layer's row created (e.g. ``source="messaging.message"``), if any."""
    return (
        Delivery.objects.for_agency(agency_id)
        .filter(source=source, source_id=source_id)
        .order_by("-created_at", "-id")
        .first()
    )


def delivery_counts_by_source(
    *, agency_id: int, source: str, source_ids: list[int], sent_since: datetime | None = None
) -> dict[int, dict[str, int]]:
    """Per source id: how many of its deliveries are in each status, and (with ``sent_since``)
    ``"sent_recently"``: how many were sent since then. One aggregate query for all ids, answered
    from the (source, source_id, status, sent_at) index."""
    if not source_ids:
        return {}
    counts: dict[int, dict[str, int]] = {source_id: dict.fromkeys(DeliveryStatus.values, 0) for source_id in source_ids}
    rows = (
        Delivery.objects.for_agency(agency_id)
        .filter(source=source, source_id__in=source_ids)
        .order_by()
        .values("source_id", "status")
        .annotate(count=Count("id"))
    )
    for row in rows:
        counts[row["source_id"]][row["status"]] = row["count"]
    if sent_since is not None:
        for source_id in source_ids:
            counts[source_id]["sent_recently"] = 0
        recent = (
            Delivery.objects.for_agency(agency_id)
            .filter(source=source, source_id__in=source_ids, status=DeliveryStatus.SENT, sent_at__gte=sent_since)
            .order_by()
            .values("source_id")
            .annotate(count=Count("id"))
        )
        for row in recent:
            counts[row["source_id"]]["sent_recently"] = row["count"]
    return counts


def delivery_list_by_source(
    *, agency_id: int, source: str, source_id: int, status: str | None = None
) -> QuerySet[Delivery]:
    """One higher-layer row's deliveries (a campaign's), oldest first."""
    deliveries = Delivery.objects.for_agency(agency_id).filter(source=source, source_id=source_id)
    if status:
        deliveries = deliveries.filter(status=status)
    return deliveries.order_by("id")


def delivery_sent_to_since(*, agency_id: int, creator_id: int, since: datetime) -> QuerySet[Delivery]:
    """The creator's deliveries sent since then (any source: inbox replies and campaigns), for a
    campaign's "messaged in the last N hours" exclusion (``Exists`` over platform and recipient)."""
    return Delivery.objects.for_agency(agency_id).filter(
        creator_id=creator_id, status=DeliveryStatus.SENT, sent_at__gte=since
    )


def delivery_sent_count(
    *, agency_id: int, creator_ids: list[int], source: str, sent_from: datetime, sent_before: datetime
) -> int:
    """How many of these creators' deliveries from one source (``"campaigns.campaign"``) were
    sent in [sent_from, sent_before): one count, whatever the number of creators."""
    return (
        Delivery.objects.for_agency(agency_id)
        .filter(
            creator__in=creator_ids,
            source=source,
            status=DeliveryStatus.SENT,
            sent_at__gte=sent_from,
            sent_at__lt=sent_before,
        )
        .count()
    )
