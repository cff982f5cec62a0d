"""CSV exports of the fan CRM: fans (a segment, or the fan list's current filters) and the audit
log. Rows are streamed (``StreamingHttpResponse`` over ``iterator()``), so an export of 200,000
fans never holds them all in memory, and every text cell goes through ``csv_safe`` so a fan who
calls themself ``=HYPERLINK(…)`` is shown as text by the spreadsheet, never run.

The fan columns are those of the fan import plus the computed ones (``FAN_COLUMNS``); the import
accepts and ignores the computed ones, so an exported file can be edited and imported back.
Who may export is the views' rule (owners and managers: an export leaves the product).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from apps.core.csvfiles import Echo, csv_safe
from apps.messaging.models import Fan, FanRules, FanTag, Message
from apps.messaging.tiers import badges

CHUNK = 2_000

FAN_COLUMNS = (
    "creator", "platform", "platform_fan_id", "username", "display_name", "tier", "lifecycle",
    "subscription_state", "renew_on", "subscribed_since", "subscription_expires_at", "total_spent",
    "spent_subscriptions", "spent_tips", "spent_ppv", "spent_messages", "currency", "ppv_offered", "ppv_bought",
    "last_purchase_at", "last_active_at", "timezone", "tags",
)  # fmt: skip
AUDIT_COLUMNS = (
    "time", "creator", "fan_username", "fan_platform_id", "sent_by", "source", "edit_ratio_percent",
    "status", "text", "suggested_text", "ppv_price",
)  # fmt: skip


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value else ""


def _lines(header: Iterable[str], rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([csv_safe(value) for value in row])


def fans_csv(fans: QuerySet[Fan], *, rules: FanRules, now: datetime | None = None) -> Iterator[str]:
    """The lines of a CSV of ``fans`` (already scoped to what the member may see)."""
    now = now or timezone.now()
    tags = Prefetch("tags", queryset=FanTag.objects.order_by("name").only("fan_id", "name"))
    query = fans.select_related("creator").prefetch_related(tags).order_by("-total_spent", "id")

    def rows() -> Iterator[list]:
        for fan in query.iterator(chunk_size=CHUNK):
            badge = badges(fan, rules, now)
            yield [
                fan.creator.display_name, fan.platform, fan.platform_fan_id, fan.username, fan.display_name,
                badge.tier.value, badge.lifecycle.value, fan.subscription_state, "yes" if fan.renew_on else "no",
                _when(fan.subscribed_since), _when(fan.subscription_expires_at), fan.total_spent,
                fan.spent_subscriptions, fan.spent_tips, fan.spent_ppv, fan.spent_messages, fan.creator.currency,
                fan.ppv_offered, fan.ppv_bought, _when(fan.last_purchase_at), _when(fan.last_active_at),
                fan.timezone, ";".join(tag.name for tag in fan.tags.all()),
            ]  # fmt: skip

    return _lines(FAN_COLUMNS, rows())


def audit_csv(messages: QuerySet[Message]) -> Iterator[str]:
    """The lines of a CSV of the audit log (outbound messages, already scoped and filtered)."""

    def rows() -> Iterator[list]:
        for message in messages.iterator(chunk_size=CHUNK):
            ratio = "" if message.edit_ratio is None else f"{message.edit_ratio * 100:.1f}"
            sender = message.sent_by_email or (message.sent_by.email if message.sent_by else "")
            yield [
                _when(message.created_at), message.creator.display_name, message.fan.username,
                message.fan.platform_fan_id, sender,
                message.source, ratio, message.status, message.text, message.suggested_text,
                message.ppv_price if message.ppv_price is not None else "",
            ]  # fmt: skip

    return _lines(AUDIT_COLUMNS, rows())
