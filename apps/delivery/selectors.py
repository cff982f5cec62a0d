"""Reads for delivery. Every getter answers 404 for "missing" and "not yours" alike."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.delivery.models import Delivery


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
