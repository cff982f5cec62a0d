"""CSV import of a creator's fans, messages and purchases (columns: docs/fans.md and ``COLUMNS``).

Three steps, and a failed file changes nothing:

1. ``fan_import_start`` checks the upload as a whole (apps.core.csvfiles: type, size, encoding;
   then the header: unknown, repeated or missing columns are named) and the row count, and
   stores a ``FanImport``. Up to ``INLINE_MAX_ROWS`` rows run at once, in the request; larger
   files run as a Celery task on the ``bulk`` queue, published on commit, and the page polls
   the import's progress.
2. ``fan_import_run`` validates **every** row (spreadsheet row numbers: the header is row 1) and
   collects every problem as ``{row, field, message}``: malformed rows, duplicate keys within
   the file, amounts, dates, message texts empty or over the platform's limit, fans that do not
   exist. Any problem and the import ends as failed, with its report, before anything is written.
3. Only a clean file is written, all rows in one transaction, with bulk inserts and updates.

Idempotent on the platform's ids: a fan is (creator, platform, platform_fan_id), a message
(conversation, platform_message_id), a purchase (creator, platform_purchase_id). Importing the
same file again updates those rows and creates none. A purchase adds its amount to the fan's
spend once (an updated purchase moves the difference), like ``services.purchase_record``.

This module holds the columns, the file checks and the run; ``rows.py`` the per-kind validation
and bulk writes.

Not done here: spend columns on fans (spend is the sum of the fan's purchases; import those),
and linking a purchase to a message.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import tzinfo
from typing import IO

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.core.csvfiles import column_name, csv_rows, read_csv_upload
from apps.core.errors import ApplicationError
from apps.core.timezones import zone_or_utc
from apps.messaging.imports.rows import ROWS, Report
from apps.messaging.models import FanImport, ImportKind, ImportStatus

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000
INLINE_MAX_ROWS = 2_000
PROGRESS_EVERY = 1_000


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    meaning: str
    example: str


COLUMNS: dict[str, list[Column]] = {
    ImportKind.FANS: [
        Column("platform", True, "onlyfans, fansly, instagram, x, tiktok or reddit", "onlyfans"),
        Column("platform_fan_id", True, "The fan's id on the platform (at most 64 characters)", "u84212"),
        Column("username", True, "The fan's username (at most 80)", "mike_92"),
        Column("display_name", False, "The name the fan shows (at most 120)", "Mike"),
        Column("subscribed_since", False, "Date and time (ISO 8601) of the first subscription", "2026-01-05T20:00:00"),
        Column("subscription_state", False, "active, expired or none (a follower)", "active"),
        Column("renew_on", False, "Auto-renewal on: yes/no, true/false or 1/0", "yes"),
        Column("subscription_expires_at", False, "Date and time the subscription ends", "2026-02-05"),
        Column("last_active_at", False, "Date and time the fan was last active", "2026-03-01T09:15:00Z"),
        Column("timezone", False, "IANA time zone, when known", "America/New_York"),
        Column("tags", False, "Tags separated by ; (replace the fan's tags)", "vip;likes feet"),
    ],
    ImportKind.MESSAGES: [
        Column("platform", True, "The fan's platform", "onlyfans"),
        Column("platform_fan_id", True, "The fan's id (import the fans first)", "u84212"),
        Column("platform_message_id", True, "The message's id on the platform (at most 64)", "m-1001"),
        Column("direction", True, "in (from the fan) or out (to the fan)", "in"),
        Column("text", False, "The text, within the platform's limit; empty only with media", "Hey gorgeous"),
        Column("sent_at", True, "Date and time the message was sent", "2026-03-01T21:04:00Z"),
        Column("media_count", False, "Photos or videos attached (whole number, default 0)", "0"),
        Column("ppv_price", False, "PPV price of a message to the fan (above 0)", ""),
        Column("unlocked_at", False, "When the fan unlocked the PPV", ""),
        Column("source", False, "For out: human, ai_draft, template or automation (default human)", ""),
    ],
    ImportKind.PURCHASES: [
        Column("platform", True, "The fan's platform", "onlyfans"),
        Column("platform_fan_id", True, "The fan's id (import the fans first)", "u84212"),
        Column("platform_purchase_id", True, "The purchase's id on the platform (at most 64)", "p-553"),
        Column("kind", True, "subscription, tip, ppv or message", "tip"),
        Column("amount", True, "Amount paid, above 0 (12.50, $12.50 or 12,50)", "12.50"),
        Column("currency", False, "Three-letter code (default: the creator's currency)", "USD"),
        Column("purchased_at", True, "Date and time of the purchase", "2026-03-01T21:10:00Z"),
    ],
}
# Columns of the fan export (exports.py) that the fan import accepts and ignores, so an exported
# file can be edited and imported back; spend and badges are computed, never imported.
FAN_EXPORT_ONLY = (
    "creator", "tier", "lifecycle", "total_spent", "spent_subscriptions", "spent_tips", "spent_ppv",
    "spent_messages", "currency", "ppv_offered", "ppv_bought", "last_purchase_at",
)  # fmt: skip


def columns_for(kind: str) -> list[Column]:
    return COLUMNS[ImportKind(kind)]


def sample_csv(kind: str) -> str:
    """A small valid file of ``kind``: the header and one example row."""
    columns = columns_for(kind)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    writer.writerow([c.example for c in columns])
    return buffer.getvalue()


# --- Start: the file as a whole ------------------------------------------------------------------


def fan_import_start(*, membership: Membership, creator: Creator, kind: str, file: IO) -> FanImport:
    """Check the upload and store it as a FanImport; small files are imported before this returns,
    large ones are queued. Needs the edit permission on the creator (owners and managers)."""
    require(membership, Perm.EDIT, creator)
    if kind not in ImportKind.values:
        raise ApplicationError(f"Choose what the file holds: {', '.join(ImportKind.values)}.", field="kind")
    text = read_csv_upload(file, max_bytes=MAX_FILE_BYTES, hint=f"export the {kind} as CSV first")
    reader = csv_rows(text)
    _header(kind, next(reader, None))
    rows = sum(1 for values in reader if any(v.strip() for v in values))
    if rows == 0:
        raise ApplicationError("The file has a header but no rows.", field="file")
    if rows > MAX_ROWS:
        raise ApplicationError(
            f"The file has {rows:,} rows; at most {MAX_ROWS:,} per import: split it and import the parts.",
            field="file",
        )
    job = FanImport.objects.create(
        agency_id=membership.agency_id,
        creator=creator,
        kind=kind,
        filename=str(getattr(file, "name", "") or "upload.csv")[:200],
        content=text,
        total_rows=rows,
        created_by=membership.user,
    )
    if rows <= INLINE_MAX_ROWS:
        fan_import_run(import_id=job.pk)
        job.refresh_from_db()
    else:
        from apps.messaging.tasks import fan_import_task

        fan_import_task.delay_on_commit(job.pk)
    return job


def _header(kind: str, row: list[str] | None) -> list[str]:
    if not row:
        raise ApplicationError("The file is empty.", field="file")
    known = [c.name for c in columns_for(kind)]
    accepted = known + (list(FAN_EXPORT_ONLY) if kind == ImportKind.FANS else [])
    names = [column_name(name) for name in row]
    unknown = [name or "(blank)" for name in names if name not in accepted]
    if unknown:
        raise ApplicationError(
            f"Unknown column(s): {', '.join(unknown)}. Columns of a {kind} file are: {', '.join(known)}.",
            field="file",
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ApplicationError(f"Column(s) given twice: {', '.join(repeated)}.", field="file")
    missing = [c.name for c in columns_for(kind) if c.required and c.name not in names]
    if missing:
        raise ApplicationError(f"Missing required column(s): {', '.join(missing)}.", field="file")
    return names


# --- Run: validate every row, then write all of them -------------------------------------------


def fan_import_run(*, import_id: int, reclaim: bool = False) -> None:
    """Run a queued import once: claims it (a second call returns at once), validates every row,
    then writes all rows in one transaction or none. ``reclaim`` also takes an import left
    running by a worker that died (the broker redelivered its task): that worker wrote nothing,
    since the rows are written in one transaction."""
    claimable = [ImportStatus.QUEUED, ImportStatus.RUNNING] if reclaim else [ImportStatus.QUEUED]
    claimed = FanImport.objects.filter(pk=import_id, status__in=claimable).update(
        status=ImportStatus.RUNNING, processed_rows=0
    )
    if not claimed:
        return
    job = FanImport.objects.select_related("creator").get(pk=import_id)
    try:
        _run(job)
    except Exception:
        logger.exception("fan import %s failed", import_id)
        _finish(job, ImportStatus.FAILED, errors=[{"row": 0, "field": "file", "message":
                "The import stopped on an unexpected error; nothing was imported. Try again."}])  # fmt: skip
        raise


def _run(job: FanImport) -> None:
    creator = job.creator
    reader = csv_rows(job.content)
    header = _header(job.kind, next(reader, None))
    zone = _zone(creator.timezone)
    now = timezone.now()
    report = Report()
    validator = ROWS[ImportKind(job.kind)](creator, zone, now, report)
    seen = 0
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        seen += 1
        if len(values) != len(header):
            report.add(number, None, f"Expected {len(header)} columns, found {len(values)}.")
        else:
            validator.row(number, {name: (value or "").strip() for name, value in zip(header, values, strict=True)})
        if seen % PROGRESS_EVERY == 0:
            FanImport.objects.filter(pk=job.pk).update(processed_rows=min(seen, job.total_rows))
    validator.finish()
    if report.count:
        errors = report.errors
        if report.count > len(errors):
            errors = [*errors, {"row": 0, "field": "", "message": f"…and {report.count - len(errors):,} more."}]
        _finish(job, ImportStatus.FAILED, errors=errors)
        return
    with transaction.atomic():
        created, updated = validator.write()
    _finish(job, ImportStatus.DONE, created=created, updated=updated)


def _finish(job: FanImport, status: str, *, errors=(), created: int = 0, updated: int = 0) -> None:
    FanImport.objects.filter(pk=job.pk).update(
        status=status,
        processed_rows=F("total_rows"),
        created_rows=created,
        updated_rows=updated,
        errors=list(errors),
        content="",
        finished_at=timezone.now(),
    )


def _zone(name: str) -> tzinfo:
    return zone_or_utc(name)
