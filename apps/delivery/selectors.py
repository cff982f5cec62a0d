"""Reads for delivery. Every getter answers 404 for "missing" and "not yours" alike."""

from __future__ import annotations

from datetime import datetime

from django.db.models import CharField, Count, F, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.delivery.models import Delivery, DeliveryKind, DeliveryStatus, MassRecipient


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


def delivery_recipient_counts_by_source(
    *, agency_id: int, source: str, source_ids: list[int], sent_since: datetime | None = None
) -> dict[int, dict[str, int]]:
    """``delivery_counts_by_source`` counting *fans* rather than deliveries, for sources that
    send mass messages (a mass delivery counts its ``recipient_count``, a direct one 1), plus
    ``"rejected"``: fans the platform refused in sent mass messages (counted in ``"sent"`` too).
    It reads each delivery row, so it is meant for sources with few of them (one mass message
    per platform account), not for 100,000 direct ones (``delivery_counts_by_source``)."""
    if not source_ids:
        return {}
    counts: dict[int, dict[str, int]] = {
        source_id: {**dict.fromkeys(DeliveryStatus.values, 0), "rejected": 0} for source_id in source_ids
    }
    if sent_since is not None:
        for source_id in source_ids:
            counts[source_id]["sent_recently"] = 0
    rows = (
        Delivery.objects.for_agency(agency_id)
        .filter(source=source, source_id__in=source_ids)
        .order_by()
        .values("source_id", "status", "sent_at", "recipient_count", "rejected_count")
    )
    for row in rows:
        of = counts[row["source_id"]]
        of[row["status"]] += row["recipient_count"]
        if row["status"] == DeliveryStatus.SENT:
            of["rejected"] += row["rejected_count"]
            if sent_since is not None and row["sent_at"] >= sent_since:
                of["sent_recently"] += row["recipient_count"]
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


def delivery_counting_since(
    *, agency_id: int, creator_id: int, sources: tuple[str, ...], since: datetime
) -> QuerySet[Delivery]:
    """The creator's deliveries from these sources made since then that are or will be sent
    (neither cancelled nor dead), for a per-fan frequency cap (grouped by platform and recipient)."""
    return (
        Delivery.objects.for_agency(agency_id)
        .filter(creator_id=creator_id, source__in=sources, created_at__gte=since)
        .exclude(status__in=[DeliveryStatus.CANCELLED, DeliveryStatus.DEAD])
    )


def delivery_counts_to(
    *, agency_id: int, creator_id: int, sources: tuple[str, ...], since: datetime, recipient_ids: list[str]
) -> dict[tuple[str, str], int]:
    """How many of the creator's deliveries from these sources made since then are or will be
    sent to each of these fans, by (platform, recipient id), mass messages' fans included: a
    frequency cap checked for many fans at once, in one or two queries."""
    direct = (
        delivery_counting_since(agency_id=agency_id, creator_id=creator_id, sources=sources, since=since)
        .filter(recipient_id__in=recipient_ids)
        .order_by()
        .values_list("platform", "recipient_id")
        .annotate(count=Count("pk"))
    )
    counts = {(platform, recipient): count for platform, recipient, count in direct}
    mass = (
        mass_recipients_counting_since(agency_id=agency_id, creator_id=creator_id, sources=sources, since=since)
        .filter(recipient_id__in=recipient_ids)
        .order_by()
        .values_list("platform", "recipient_id")
        .annotate(count=Count("pk"))
    )
    for platform, recipient, count in mass:
        counts[(platform, recipient)] = counts.get((platform, recipient), 0) + count
    return counts


def mass_recipients_counting_since(
    *, agency_id: int, creator_id: int, sources: tuple[str, ...], since: datetime
) -> QuerySet[MassRecipient]:
    """The fans of the creator's mass messages from these sources made since then that are or
    will be sent (not cancelled, dead or refused by the platform), each with its ``platform``:
    the mass half of a per-fan frequency cap."""
    return (
        MassRecipient.objects.for_agency(agency_id)
        .filter(
            rejected=False,
            delivery__creator_id=creator_id,
            delivery__source__in=sources,
            delivery__created_at__gte=since,
        )
        .exclude(delivery__status__in=[DeliveryStatus.CANCELLED, DeliveryStatus.DEAD])
        .annotate(platform=F("delivery__platform"))
    )


def delivery_sent_by_source_since(*, source: str, since: datetime) -> QuerySet[Delivery]:
    """Every agency's deliveries from one source sent since then (a background job's catch-up
    pass, such as recording automation messages into conversations)."""
    return Delivery.objects.filter(source=source, status=DeliveryStatus.SENT, sent_at__gte=since)


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


def mass_recipients_sent_since(*, agency_id: int, creator_id: int, since: datetime) -> QuerySet[MassRecipient]:
    """The fans the creator's mass messages sent since then reached (the platform did not reject
    them), each with its ``platform``: the mass-message half of a campaign's "messaged in the last
    N hours" exclusion (``Exists`` over ``platform`` and ``recipient_id``, one index look-up per
    fan)."""
    return (
        MassRecipient.objects.for_agency(agency_id)
        .filter(
            rejected=False,
            delivery__creator_id=creator_id,
            delivery__status=DeliveryStatus.SENT,
            delivery__sent_at__gte=since,
        )
        .annotate(platform=F("delivery__platform"))
    )


def mass_recipients_sent(*, agency_id: int, source: str, source_id: int) -> QuerySet[MassRecipient]:
    """The fans one higher-layer row's sent mass messages reached (not rejected),
    each with what its conversation records: ``platform``, ``text``, ``ppv_price``,
    ``media_count``, ``platform_message_id``, ``sent_at`` (the mass message's) and its own
    ``idempotency_key`` (``models.mass_message_key``: the mass key and the row's id). Scoped by
    the delivery's agency, and read in the (delivery, fan) index's order, so the database starts
    from the source's few deliveries and stops at a batch's end, instead of reading every
    recipient of the agency's mass messages and sorting them."""
    return (
        MassRecipient.objects.filter(
            delivery__agency_id=agency_id,
            rejected=False,
            delivery__source=source,
            delivery__source_id=source_id,
            delivery__kind=DeliveryKind.MASS,
            delivery__status=DeliveryStatus.SENT,
        )
        .annotate(
            platform=F("delivery__platform"),
            text=F("delivery__text"),
            ppv_price=F("delivery__ppv_price"),
            media_count=F("delivery__media_count"),
            platform_message_id=F("delivery__platform_message_id"),
            sent_at=F("delivery__sent_at"),
            idempotency_key=Concat(
                F("delivery__idempotency_key"), Value(":"), Cast("id", CharField()), output_field=CharField()
            ),
        )
        .order_by("delivery_id", "recipient_id")
    )
