"""CSV import of a creator's post history (docs/studio-data.md shows the columns and an example).

The file is checked as a whole first (type, size, header): a problem there is an
ApplicationError and nothing is read further. Then each row is validated on its own: bad rows
are reported (row number, field, message) and skipped, good rows are inserted together in one
transaction. Rows whose ``external_id`` the creator already has on that platform (or that repeat
one earlier in the file) are duplicates: skipped and counted, never overwritten.

Row numbers are the spreadsheet's: the header is row 1, the first post row 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import IO, Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.core.csvfiles import (
    DATETIME_EXPECTED,
    RowError,
    check_header,
    column_name,
    csv_rows,
    parse_count,
    parse_datetime,
    parse_money,
    read_csv_upload,
)
from apps.core.errors import ApplicationError, ConflictError
from apps.studio.analytics import creator_zone, invalidate_trends, tag_key
from apps.studio.models import Category, Platform, Post

MAX_FILE_BYTES = 5 * 1024 * 1024
REQUIRED_COLUMNS = ("platform", "posted_at", "category")
OPTIONAL_COLUMNS = (
    "caption", "tags", "media_type", "views", "likes", "comments", "tips", "ppv_unlocks", "revenue", "external_id",
)  # fmt: skip
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MEDIA_TYPES = ("photo", "video", "gallery", "audio", "text")
PLATFORM_ALIASES = {"twitter": "x", "of": "onlyfans", "ig": "instagram"}
MAX_MONEY = Decimal("99999999.99")  # DecimalField(max_digits=10, decimal_places=2)
MAX_TAGS = 30
MAX_TAG_LENGTH = 50
MAX_ERRORS_SHOWN = 200


@dataclass
class ImportReport:
    """``duplicates``: rows skipped because their external_id was already imported."""

    rows: int = 0
    created: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0


def posts_import_csv(*, membership: Membership, creator: Creator, file: IO, max_rows: int = 5000) -> ImportReport:
    """Import posts for ``creator`` from a CSV upload (a Django UploadedFile or any binary or
    text file object). Needs the edit permission on the creator."""
    require(membership, Perm.EDIT, creator)
    reader = csv_rows(read_csv_upload(file, max_bytes=MAX_FILE_BYTES, hint="export your posts as CSV first"))
    header = _header(next(reader, None))
    report = ImportReport()
    zone = creator_zone(creator)
    now = timezone.now()
    seen = set(
        Post.objects.for_agency(creator.agency_id)
        .filter(creator=creator)
        .exclude(external_id="")
        .values_list("platform", "external_id")
    )
    posts = []
    for number, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        report.rows += 1
        if report.rows > max_rows:
            raise ApplicationError(
                f"The file has more than {max_rows:,} posts: split it and import the parts one by one.", field="file"
            )
        if len(values) != len(header):
            report.failed += 1
            _note(report, RowError(number, None, f"Expected {len(header)} columns, found {len(values)}."))
            continue
        data, errors = _parse_row(dict(zip(header, values, strict=True)), number, zone, now)
        if errors:
            report.failed += 1
            for error in errors:
                _note(report, error)
            continue
        key = (data["platform"], data["external_id"])
        if data["external_id"] and key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        posts.append(Post(agency_id=creator.agency_id, creator=creator, **data))
    try:
        with transaction.atomic():
            Post.objects.bulk_create(posts, batch_size=500)
    except IntegrityError:
        raise ConflictError("Another import for this creator ran at the same time. Try again.", field="file")
    report.created = len(posts)
    if posts:
        transaction.on_commit(lambda: invalidate_trends(creator.agency_id))
    return report


def _note(report: ImportReport, error: RowError) -> None:
    if len(report.errors) < MAX_ERRORS_SHOWN:
        report.errors.append(error)


def _header(row: list[str] | None) -> list[str]:
    if not row:
        raise ApplicationError("The file is empty.", field="file")
    names = [column_name(name) for name in row]
    check_header(names, columns=COLUMNS, required=REQUIRED_COLUMNS)
    return names


def _parse_row(row: dict[str, str], number: int, zone: tzinfo, now: datetime) -> tuple[dict[str, Any], list[RowError]]:
    errors: list[RowError] = []
    data: dict[str, Any] = {}

    def fail(name: str, message: str) -> None:
        errors.append(RowError(number, name, message))

    def value(name: str) -> str:
        return (row.get(name) or "").strip()

    platform = value("platform").lower()
    platform = PLATFORM_ALIASES.get(platform, platform)
    if platform not in Platform.values:
        fail("platform", f"Unknown platform “{value('platform')}”: use one of {', '.join(Platform.values)}.")
    data["platform"] = platform

    posted_at = parse_datetime(value("posted_at"), zone)
    if posted_at is None:
        fail("posted_at", f"“{value('posted_at')}” is not {DATETIME_EXPECTED}.")
    elif posted_at > now + timedelta(days=1):
        fail("posted_at", "The post date is in the future.")
    data["posted_at"] = posted_at

    category = value("category").lower()
    if category not in Category.values:
        fail("category", f"Unknown category “{value('category')}”: use one of {', '.join(Category.values)}.")
    data["category"] = category

    media_type = value("media_type").lower()
    if media_type and media_type not in MEDIA_TYPES:
        fail("media_type", f"Unknown media type “{value('media_type')}”: use one of {', '.join(MEDIA_TYPES)}.")
    data["media_type"] = media_type

    tags = [t for t in (tag_key(part) for part in re.split(r"[,\s]+", value("tags"))) if t]
    tags = list(dict.fromkeys(tags))
    if len(tags) > MAX_TAGS:
        fail("tags", f"At most {MAX_TAGS} tags per post.")
    if any(len(t) > MAX_TAG_LENGTH for t in tags):
        fail("tags", f"Tags are at most {MAX_TAG_LENGTH} characters.")
    data["tags"] = tags

    for name in ("views", "likes", "comments", "ppv_unlocks"):
        number_value, message = parse_count(value(name))
        if message:
            fail(name, message)
        data[name] = number_value
    for name in ("tips", "revenue"):
        money, message = _money(value(name))
        if message:
            fail(name, message)
        data[name] = money

    data["caption"] = (row.get("caption") or "").strip()
    external_id = value("external_id")
    if len(external_id) > 100:
        fail("external_id", "External ids are at most 100 characters.")
    data["external_id"] = external_id
    return data, errors


def _money(text: str) -> tuple[Decimal, str | None]:
    amount, message = parse_money(text, max_value=MAX_MONEY)
    return (amount if amount is not None else Decimal("0.00")), message
