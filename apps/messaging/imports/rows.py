"""Row validation and bulk writes of the CSV imports, one class per kind (see the package's
docstring for the steps): ``row()`` checks one row and records its problems, ``finish()`` the
checks that need the whole file, ``write()`` writes every row inside the import's transaction."""

from __future__ import annotations

import re
import zoneinfo
from collections import defaultdict
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from functools import cache
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, Subquery
from django.utils import timezone

from apps.accounts.models import Creator
from apps.core.csvfiles import DATETIME_EXPECTED, parse_count, parse_datetime, parse_money
from apps.delivery.connectors import text_limit
from apps.messaging.models import (
    Conversation,
    Direction,
    Fan,
    FanTag,
    ImportKind,
    Message,
    MessageStatus,
    Platform,
    Purchase,
    PurchaseKind,
    Source,
    SubscriptionState,
)
from apps.messaging.services import PREVIEW_LENGTH, SPEND_FIELD

BATCH = 1_000
FUTURE_SLACK = timedelta(days=1)
MAX_AMOUNT = Decimal("99999999.99")  # Purchase.amount: max_digits=10
MAX_PPV_PRICE = Decimal("999999.99")  # Message.ppv_price: max_digits=8
MAX_MEDIA = 32_767
MAX_TAGS = 50
MAX_ERRORS_KEPT = 500
PLATFORM_ALIASES = {"of": "onlyfans", "twitter": "x", "ig": "instagram"}
DIRECTION_ALIASES = {
    **dict.fromkeys(("in", "inbound", "fan"), Direction.INBOUND),
    **dict.fromkeys(("out", "outbound", "creator"), Direction.OUTBOUND),
}
KIND_ALIASES = {"sub": "subscription", "subscription": "subscription", "tip": "tip", "ppv": "ppv",
                "message": "message", "paid_message": "message"}  # fmt: skip
BOOLEANS = {"yes": True, "true": True, "1": True, "on": True, "no": False, "false": False, "0": False, "off": False}
OUT_SOURCES = (Source.HUMAN, Source.AI_DRAFT, Source.TEMPLATE, Source.AUTOMATION)


class Report:
    """The problems found, as {row, field, message}; the first MAX_ERRORS_KEPT are kept."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []
        self.count = 0

    def add(self, row: int, field: str | None, message: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"row": row, "field": field or "", "message": message})


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class _Rows:
    """Validation of one kind's rows: ``row()`` per row, ``finish()`` after the last (checks that
    need the whole file, such as fans that must exist), ``write()`` inside the transaction."""

    def __init__(self, creator: Creator, zone: tzinfo, now: datetime, report: Report) -> None:
        self.creator, self.zone, self.now, self.report = creator, zone, now, report
        self.number = 0

    def fail(self, field: str | None, message: str) -> None:
        self.report.add(self.number, field, message)

    def text(self, row: dict[str, str], name: str, max_length: int, *, required: bool = False) -> str:
        value = row.get(name, "")
        if required and not value:
            self.fail(name, "Required.")
        elif len(value) > max_length:
            self.fail(name, f"At most {max_length} characters (this has {len(value)}).")
        return value

    def platform(self, row: dict[str, str]) -> str:
        value = row.get("platform", "").lower()
        value = PLATFORM_ALIASES.get(value, value)
        if value not in Platform.values:
            self.fail(
                "platform", f"Unknown platform “{row.get('platform', '')}”: use one of {', '.join(Platform.values)}."
            )
        return value

    def when(self, row: dict[str, str], name: str, *, required: bool = False, past: bool = True) -> datetime | None:
        value = row.get(name, "")
        if not value:
            if required:
                self.fail(name, "Required: a date and time such as 2026-03-01T20:30:00.")
            return None
        parsed = parse_datetime(value, self.zone)
        if parsed is None:
            self.fail(name, f"“{value}” is not {DATETIME_EXPECTED}.")
        elif past and parsed > self.now + FUTURE_SLACK:
            self.fail(name, "This date is in the future.")
        return parsed

    def row(self, number: int, row: dict[str, str]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Checks that need every row; nothing by default."""

    def write(self) -> tuple[int, int]:
        raise NotImplementedError

    def _fan_ids(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """(platform, platform_fan_id) → fan id for the creator's fans among ``keys``."""
        found: dict[tuple[str, str], int] = {}
        ids = sorted({key[1] for key in keys})
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            rows = Fan.objects.filter(creator=self.creator, platform_fan_id__in=chunk).values_list(
                "platform", "platform_fan_id", "pk"
            )
            for platform, platform_fan_id, pk in rows:
                found[(platform, platform_fan_id)] = pk
        return found


class _FanRows(_Rows):
    FIELDS = ("username", "display_name", "subscribed_since", "subscription_state", "renew_on",
              "subscription_expires_at", "last_active_at", "timezone")  # fmt: skip

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.first_row: dict[tuple[str, str], int] = {}
        self.tags: dict[tuple[str, str], list[str]] = {}

    def row(self, number: int, row: dict[str, str]) -> None:
        self.number = number
        before = self.report.count
        platform = self.platform(row)
        platform_fan_id = self.text(row, "platform_fan_id", 64, required=True)
        data: dict[str, Any] = {"username": self.text(row, "username", 80, required=True)}
        if "display_name" in row:
            data["display_name"] = self.text(row, "display_name", 120)
        for name in ("subscribed_since", "last_active_at"):
            if name in row:
                data[name] = self.when(row, name)
        if "subscription_expires_at" in row:
            data["subscription_expires_at"] = self.when(row, "subscription_expires_at", past=False)
        state = row.get("subscription_state", "").lower()
        if state:
            if state not in SubscriptionState.values:
                self.fail("subscription_state", f"“{state}” is not active, expired or none.")
            data["subscription_state"] = state
        renew = row.get("renew_on", "").lower()
        if renew:
            if renew not in BOOLEANS:
                self.fail("renew_on", f"“{row['renew_on']}” is not yes or no.")
            data["renew_on"] = BOOLEANS.get(renew, True)
        if "timezone" in row:
            zone = row["timezone"]
            if zone and zone not in _zones():
                self.fail("timezone", f"“{zone[:64]}” is not a time zone (use a name such as Europe/Paris).")
            data["timezone"] = zone
        if "tags" in row:
            tags = sorted({t.strip().lower() for t in re.split(r"[;|]", row["tags"]) if t.strip()})
            if any(len(t) > 40 for t in tags):
                self.fail("tags", "A tag holds at most 40 characters.")
            if len(tags) > MAX_TAGS:
                self.fail("tags", f"At most {MAX_TAGS} tags per fan.")
        key = (platform, platform_fan_id)
        if platform_fan_id and key in self.first_row:
            self.fail("platform_fan_id", f"The same fan ({platform_fan_id}) is already on row {self.first_row[key]}.")
        elif platform_fan_id:
            self.first_row[key] = number
        if self.report.count == before:
            self.records[key] = data
            if "tags" in row:
                self.tags[key] = tags

    def write(self) -> tuple[int, int]:
        existing = self._existing()
        stamp = timezone.now()
        new, changed, fields = [], [], {"updated_at"}
        for key, data in self.records.items():
            fan = existing.get(key)
            if fan is None:
                new.append(Fan(agency_id=self.creator.agency_id, creator=self.creator, platform=key[0],
                               platform_fan_id=key[1], **data))  # fmt: skip
            else:
                for name, value in data.items():
                    setattr(fan, name, value)
                fan.updated_at = stamp
                fields.update(data)
                changed.append(fan)
        Fan.objects.bulk_create(new, batch_size=BATCH)
        if changed:
            Fan.objects.bulk_update(changed, sorted(fields), batch_size=BATCH)
        if self.tags:
            by_key = {(f.platform, f.platform_fan_id): f.pk for f in [*new, *changed]}
            fan_ids = [by_key[key] for key in self.tags]
            for start in range(0, len(fan_ids), BATCH):
                FanTag.objects.filter(fan_id__in=fan_ids[start : start + BATCH]).delete()
            FanTag.objects.bulk_create(
                [
                    FanTag(agency_id=self.creator.agency_id, creator=self.creator, fan_id=by_key[key], name=name)
                    for key, names in self.tags.items()
                    for name in names
                ],
                batch_size=BATCH,
            )
        return len(new), len(changed)

    def _existing(self) -> dict[tuple[str, str], Fan]:
        found: dict[tuple[str, str], Fan] = {}
        ids = sorted({key[1] for key in self.records})
        for start in range(0, len(ids), BATCH):
            for fan in Fan.objects.filter(creator=self.creator, platform_fan_id__in=ids[start : start + BATCH]):
                found[(fan.platform, fan.platform_fan_id)] = fan
        return found


class _MessageRows(_Rows):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.records: list[dict[str, Any]] = []
        self.first_row: dict[tuple[str, str, str], int] = {}

    def row(self, number: int, row: dict[str, str]) -> None:
        self.number = number
        before = self.report.count
        platform = self.platform(row)
        platform_fan_id = self.text(row, "platform_fan_id", 64, required=True)
        message_id = self.text(row, "platform_message_id", 64, required=True)
        direction = DIRECTION_ALIASES.get(row.get("direction", "").lower())
        if direction is None:
            self.fail("direction", f"“{row.get('direction', '')}” is not in or out.")
        text = row.get("text", "")
        media = row.get("media_count", "")
        media_count, problem = parse_count(media, max_value=MAX_MEDIA)
        if problem:
            self.fail("media_count", f"“{media}” is not a whole number from 0 to {MAX_MEDIA}.")
        if not text and not media_count:
            self.fail("text", "The message is empty (no text and no media).")
        if platform in Platform.values and len(text) > text_limit(platform):
            self.fail("text", f"This message is {len(text):,} characters; {Platform(platform).label} allows "
                      f"{text_limit(platform):,}.")  # fmt: skip
        sent_at = self.when(row, "sent_at", required=True)
        price, problem = parse_money(row.get("ppv_price", ""), max_value=MAX_PPV_PRICE)
        if problem:
            self.fail("ppv_price", problem)
        elif price is not None and price <= 0:
            self.fail("ppv_price", "A PPV price must be above zero.")
        elif price is not None and direction == Direction.INBOUND:
            self.fail("ppv_price", "Only messages to the fan (out) carry a PPV price.")
        unlocked_at = self.when(row, "unlocked_at")
        if unlocked_at is not None and price is None:
            self.fail("unlocked_at", "Only a PPV message (with a ppv_price) can be unlocked.")
        source = row.get("source", "").lower()
        if direction == Direction.INBOUND:
            if source not in ("", Source.FAN):
                self.fail("source", "A message from the fan has no source (leave it empty).")
            source = Source.FAN
        elif direction == Direction.OUTBOUND:
            source = source or Source.HUMAN
            if source not in OUT_SOURCES:
                self.fail("source", f"“{source}” is not one of {', '.join(OUT_SOURCES)}.")
        key = (platform, platform_fan_id, message_id)
        if message_id and key in self.first_row:
            self.fail(
                "platform_message_id", f"The same message ({message_id}) is already on row {self.first_row[key]}."
            )
        elif message_id:
            self.first_row[key] = number
        if self.report.count == before:
            self.records.append({
                "number": number, "fan": (platform, platform_fan_id), "platform_message_id": message_id,
                "direction": direction, "text": text, "media_count": media_count, "ppv_price": price,
                "unlocked_at": unlocked_at, "source": source, "at": sent_at,
            })  # fmt: skip

    def finish(self) -> None:
        self.fans = self._fan_ids({r["fan"] for r in self.records})
        for record in self.records:
            if record["fan"] not in self.fans:
                self.number = record["number"]
                self.fail("platform_fan_id", f"No fan {record['fan'][1]} on {record['fan'][0]} for "
                          f"{self.creator.display_name}: import the fans first.")  # fmt: skip

    def write(self) -> tuple[int, int]:
        creator, agency_id = self.creator, self.creator.agency_id
        fan_ids = sorted(set(self.fans.values()))
        conversations: dict[int, int] = {}
        for start in range(0, len(fan_ids), BATCH):
            chunk = fan_ids[start : start + BATCH]
            conversations.update(Conversation.objects.filter(fan_id__in=chunk).values_list("fan_id", "pk"))
        missing = [pk for pk in fan_ids if pk not in conversations]
        if missing:
            values = dict(Fan.objects.filter(pk__in=missing).values_list("pk", "total_spent"))
            Conversation.objects.bulk_create(
                [Conversation(agency_id=agency_id, creator=creator, fan_id=pk, fan_value=values[pk]) for pk in missing],
                batch_size=BATCH,
            )
            for start in range(0, len(missing), BATCH):
                chunk = missing[start : start + BATCH]
                conversations.update(Conversation.objects.filter(fan_id__in=chunk).values_list("fan_id", "pk"))
        # (conversation, platform id) → (pk, sent through Huntaze, unlocked_at), read through the
        # unique index on (conversation, platform_message_id).
        existing: dict[tuple[int, str], tuple[int, bool, datetime | None]] = {}
        conversation_ids = sorted({conversations[pk] for pk in fan_ids})
        for start in range(0, len(conversation_ids), BATCH):
            rows = (
                Message.objects.filter(conversation_id__in=conversation_ids[start : start + BATCH])
                .exclude(platform_message_id="")
                .values_list("conversation_id", "platform_message_id", "pk", "idempotency_key", "unlocked_at")
            )
            for conversation_id, platform_id, pk, key, unlocked_at in rows:
                existing[(conversation_id, platform_id)] = (pk, bool(key), unlocked_at)
        fields = ["direction", "text", "media_count", "ppv_price", "unlocked_at", "source", "created_at", "sent_at",
                  "status"]  # fmt: skip
        new, changed, unlocked = [], [], []
        for r in self.records:
            fan_id = self.fans[r["fan"]]
            conversation_id = conversations[fan_id]
            values = {
                "direction": r["direction"], "text": r["text"], "media_count": r["media_count"],
                "ppv_price": r["ppv_price"], "unlocked_at": r["unlocked_at"], "source": r["source"],
                "created_at": r["at"], "sent_at": r["at"],
                "status": MessageStatus.RECEIVED if r["direction"] == Direction.INBOUND else MessageStatus.SENT,
            }  # fmt: skip
            found = existing.get((conversation_id, r["platform_message_id"]))
            if found is None:
                new.append(Message(agency_id=agency_id, creator=creator, conversation_id=conversation_id, fan_id=fan_id,
                                   platform_message_id=r["platform_message_id"], **values))  # fmt: skip
            elif found[1]:
                # Sent through Huntaze: its text, sender, source and edit ratio are the audit
                # record and stay; the platform may only tell us it was unlocked since.
                if found[2] is None and r["unlocked_at"] is not None:
                    unlocked.append(Message(pk=found[0], unlocked_at=r["unlocked_at"]))
                changed.append(found[0])
            else:
                changed.append(Message(pk=found[0], **values))
        Message.objects.bulk_create(new, batch_size=BATCH)
        updates = [m for m in changed if isinstance(m, Message)]
        if updates:
            Message.objects.bulk_update(updates, fields, batch_size=BATCH)
        if unlocked:
            Message.objects.bulk_update(unlocked, ["unlocked_at"], batch_size=BATCH)
        _conversations_refresh(sorted({conversations[pk] for pk in fan_ids}))
        _fans_refresh_activity(fan_ids)
        return len(new), len(changed)


def _conversations_refresh(conversation_ids: list[int]) -> None:
    """Recompute the inbox's denormalised columns of these conversations from their messages."""
    for start in range(0, len(conversation_ids), BATCH):
        chunk = conversation_ids[start : start + BATCH]
        messages = Message.objects.filter(conversation=OuterRef("pk"))
        latest = messages.order_by("-created_at", "-id")
        later_out = Message.objects.filter(
            conversation=OuterRef("conversation"), direction=Direction.OUTBOUND, created_at__gte=OuterRef("created_at")
        )
        rows = (
            Conversation.objects.filter(pk__in=chunk)
            .annotate(
                n=Subquery(messages.order_by().values("conversation").annotate(c=Count("id")).values("c")[:1]),
                last_at=Subquery(latest.values("created_at")[:1]),
                last_text=Subquery(latest.values("text")[:1]),
                last_media=Subquery(latest.values("media_count")[:1]),
                last_direction=Subquery(latest.values("direction")[:1]),
                first_waiting=Subquery(
                    Message.objects.filter(conversation=OuterRef("pk"), direction=Direction.INBOUND)
                    .filter(~Exists(later_out))
                    .order_by("created_at")
                    .values("created_at")[:1]
                ),
            )
        )  # fmt: skip
        updated = []
        for conversation in rows:
            conversation.message_count = conversation.n or 0
            conversation.last_message_at = conversation.last_at
            conversation.last_message_direction = conversation.last_direction or ""
            text = " ".join((conversation.last_text or "").split())
            conversation.last_message_preview = (text or ("📎 media" if conversation.last_media else ""))[
                :PREVIEW_LENGTH
            ]
            conversation.needs_reply = conversation.last_direction == Direction.INBOUND
            conversation.waiting_since = (
                (conversation.first_waiting or conversation.last_at) if conversation.needs_reply else None
            )
            updated.append(conversation)
        Conversation.objects.bulk_update(
            updated,
            ["message_count", "last_message_at", "last_message_direction", "last_message_preview", "needs_reply",
             "waiting_since"],
            batch_size=BATCH,
        )  # fmt: skip


def _fans_refresh_activity(fan_ids: list[int]) -> None:
    """Last activity from the fan's latest message, PPV counters from the PPV messages sent and
    unlocked (never lowered: they may count offers made before the imported history)."""
    for start in range(0, len(fan_ids), BATCH):
        chunk = fan_ids[start : start + BATCH]
        stats = {
            row["fan_id"]: row
            for row in Message.objects.filter(fan_id__in=chunk)
            .values("fan_id")
            .annotate(
                last_in=Max("created_at", filter=Q(direction=Direction.INBOUND)),
                offered=Count("id", filter=Q(direction=Direction.OUTBOUND, ppv_price__isnull=False)),
                bought=Count("id", filter=Q(direction=Direction.OUTBOUND, unlocked_at__isnull=False)),
            )
        }
        fans = list(Fan.objects.filter(pk__in=chunk).only("pk", "last_active_at", "ppv_offered", "ppv_bought"))
        for fan in fans:
            row = stats.get(fan.pk)
            if row is None:
                continue
            if row["last_in"] is not None and (fan.last_active_at is None or row["last_in"] > fan.last_active_at):
                fan.last_active_at = row["last_in"]
            fan.ppv_bought = max(fan.ppv_bought, row["bought"])
            fan.ppv_offered = max(fan.ppv_offered, row["offered"], fan.ppv_bought)
        Fan.objects.bulk_update(fans, ["last_active_at", "ppv_offered", "ppv_bought"], batch_size=BATCH)


class _PurchaseRows(_Rows):
    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.records: list[dict[str, Any]] = []
        self.first_row: dict[str, int] = {}

    def row(self, number: int, row: dict[str, str]) -> None:
        self.number = number
        before = self.report.count
        platform = self.platform(row)
        platform_fan_id = self.text(row, "platform_fan_id", 64, required=True)
        purchase_id = self.text(row, "platform_purchase_id", 64, required=True)
        kind = KIND_ALIASES.get(row.get("kind", "").lower())
        if kind is None:
            self.fail("kind", f"“{row.get('kind', '')}” is not one of {', '.join(PurchaseKind.values)}.")
        amount, problem = parse_money(row.get("amount", ""), max_value=MAX_AMOUNT)
        if problem:
            self.fail("amount", problem)
        elif amount is None or amount <= 0:
            self.fail("amount", "An amount above zero is required.")
        currency = row.get("currency", "").upper() or self.creator.currency
        if not re.fullmatch(r"[A-Z]{3}", currency):
            self.fail("currency", f"“{row.get('currency', '')}” is not a three-letter currency code (USD).")
        at = self.when(row, "purchased_at", required=True)
        if purchase_id and purchase_id in self.first_row:
            self.fail("platform_purchase_id", f"The same purchase ({purchase_id}) is already on row "
                      f"{self.first_row[purchase_id]}.")  # fmt: skip
        elif purchase_id:
            self.first_row[purchase_id] = number
        if self.report.count == before:
            self.records.append({"number": number, "fan": (platform, platform_fan_id), "id": purchase_id,
                                 "kind": kind, "amount": amount, "currency": currency, "at": at})  # fmt: skip

    def finish(self) -> None:
        self.fans = self._fan_ids({r["fan"] for r in self.records})
        for record in self.records:
            if record["fan"] not in self.fans:
                self.number = record["number"]
                self.fail("platform_fan_id", f"No fan {record['fan'][1]} on {record['fan'][0]} for "
                          f"{self.creator.display_name}: import the fans first.")  # fmt: skip

    def write(self) -> tuple[int, int]:
        creator = self.creator
        existing: dict[str, Purchase] = {}
        ids = sorted(r["id"] for r in self.records)
        for start in range(0, len(ids), BATCH):
            for purchase in Purchase.objects.filter(
                creator=creator, platform_purchase_id__in=ids[start : start + BATCH]
            ):
                existing[purchase.platform_purchase_id] = purchase
        # Spend moves per fan and bucket: + new amounts, and the difference of changed purchases.
        delta: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        latest: dict[int, datetime] = {}
        new, changed = [], []
        for r in self.records:
            fan_id = self.fans[r["fan"]]
            purchase = existing.get(r["id"])
            if purchase is None:
                new.append(Purchase(agency_id=creator.agency_id, creator=creator, fan_id=fan_id, kind=r["kind"],
                                    amount=r["amount"], currency=r["currency"], purchased_at=r["at"],
                                    platform_purchase_id=r["id"]))  # fmt: skip
                delta[fan_id][SPEND_FIELD[r["kind"]]] += r["amount"]
            else:
                delta[purchase.fan_id][SPEND_FIELD[purchase.kind]] -= purchase.amount
                delta[fan_id][SPEND_FIELD[r["kind"]]] += r["amount"]
                purchase.fan_id, purchase.kind, purchase.amount = fan_id, r["kind"], r["amount"]
                purchase.currency, purchase.purchased_at = r["currency"], r["at"]
                changed.append(purchase)
            latest[fan_id] = max(latest.get(fan_id, r["at"]), r["at"])
        Purchase.objects.bulk_create(new, batch_size=BATCH)
        if changed:
            Purchase.objects.bulk_update(
                changed, ["fan", "kind", "amount", "currency", "purchased_at"], batch_size=BATCH
            )
        fan_ids = sorted(set(delta) | set(latest))
        buckets = list(SPEND_FIELD.values())
        for start in range(0, len(fan_ids), BATCH):
            fans = list(Fan.objects.select_for_update().filter(pk__in=fan_ids[start : start + BATCH]))
            for fan in fans:
                for bucket in buckets:
                    setattr(fan, bucket, max(Decimal("0"), getattr(fan, bucket) + delta[fan.pk][bucket]))
                fan.total_spent = sum((getattr(fan, bucket) for bucket in buckets), Decimal("0"))
                at = latest.get(fan.pk)
                if at is not None:
                    if fan.last_purchase_at is None or at > fan.last_purchase_at:
                        fan.last_purchase_at = at
                    if fan.last_active_at is None or at > fan.last_active_at:
                        fan.last_active_at = at
            Fan.objects.bulk_update(fans, [*buckets, "total_spent", "last_purchase_at", "last_active_at"],
                                    batch_size=BATCH)  # fmt: skip
            conversations = list(Conversation.objects.filter(fan__in=fans))
            values = {fan.pk: fan.total_spent for fan in fans}
            for conversation in conversations:
                conversation.fan_value = values[conversation.fan_id]
            Conversation.objects.bulk_update(conversations, ["fan_value"], batch_size=BATCH)
        return len(new), len(changed)


ROWS: dict[str, type[_Rows]] = {
    ImportKind.FANS: _FanRows,
    ImportKind.MESSAGES: _MessageRows,
    ImportKind.PURCHASES: _PurchaseRows,
}
