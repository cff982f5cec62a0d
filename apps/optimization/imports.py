"""CSV import of a creator's daily performance and PPV offers (docs/optimization.md shows the
columns and an example of each).

The file is checked as a whole first (type, size, header: apps/core/csvfiles.py): a problem there
is an ApplicationError on ``file`` and nothing is read further. Then every row is validated on
its own and every problem reported (line number, column, message). Unlike the post import, a file
with any bad row saves nothing: a half-imported series would show as gaps and false anomalies,
so the member fixes the lines listed and uploads the same file again.

Re-importing is idempotent: daily rows are keyed by (creator, day) and a re-import replaces the
day's values with the file's; offers are keyed by ``external_id`` and one already on record (or
repeated in the file) is skipped and counted, never overwritten. Offers without an external_id
are always added.

Line numbers are the spreadsheet's: the header is line 1, the first data row line 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import IO, Any
from zoneinfo import ZoneInfo

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
from apps.optimization.models import DAILY_METRICS, MONEY_METRICS, DailyPerformance, Offer, Source

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20_000
MAX_DAILY_MONEY = Decimal("9999999999.99")  # DecimalField(max_digits=12, decimal_places=2)
MAX_PRICE = Decimal("200")  # the pricing engine's ceiling: above it a "price" is a typo or a bundle
MAX_ERRORS_SHOWN = 200
METRIC_COLUMNS = tuple(name for name, _label, _money in DAILY_METRICS)
DAILY_COLUMNS = ("day", *METRIC_COLUMNS)
OFFER_REQUIRED = ("sent_at", "price", "recipients")
OFFER_COLUMNS = (*OFFER_REQUIRED, "unlocks", "revenue", "currency", "external_id")
DAILY_ALIASES = {"date": "day"}


@dataclass
class ImportReport:
    """``duplicates``: offers skipped because their external_id was already imported;
    ``updated``: days that were on record and now hold the file's values."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def note(self, error: RowError) -> None:
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(error)


def _rows(file: IO, *, columns: tuple[str, ...], required: tuple[str, ...], aliases: dict[str, str], hint: str):
    reader = csv_rows(read_csv_upload(file, max_bytes=MAX_FILE_BYTES, hint=hint))
    header = next(reader, None)
    if not header:
        raise ApplicationError("The file is empty.", field="file")
    names = [aliases.get(column_name(name), column_name(name)) for name in header]
    check_header(names, columns=columns, required=required)
    count = 0
    for number, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue
        count += 1
        if count > MAX_ROWS:
            raise ApplicationError(
                f"The file has more than {MAX_ROWS:,} rows: split it and import the parts one by one.", field="file"
            )
        if len(values) != len(names):
            yield number, None, f"Expected {len(names)} columns, found {len(values)}."
            continue
        yield number, {name: value.strip() for name, value in zip(names, values, strict=True)}, None


def _zone(creator: Creator) -> tzinfo:
    try:
        return ZoneInfo(creator.timezone or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


# --- daily performance ------------------------------------------------------------------------


def daily_import_csv(*, membership: Membership, creator: Creator, file: IO) -> ImportReport:
    """Import (or replace) daily results for ``creator``. Needs the edit permission on them."""
    require(membership, Perm.EDIT, creator)
    report = ImportReport()
    today = timezone.now().astimezone(_zone(creator)).date()
    by_day: dict[date, DailyPerformance] = {}
    first_line: dict[date, int] = {}
    for number, row, problem in _rows(file, columns=DAILY_COLUMNS, required=("day",), aliases=DAILY_ALIASES,
                                      hint="export daily results as CSV first"):  # fmt: skip
        report.rows += 1
        if problem:
            report.failed += 1
            report.note(RowError(number, None, problem))
            continue
        data, errors = _daily_row(row, number, today)
        if not errors and data["day"] in first_line:
            errors.append(RowError(number, "day", f"{data['day']} is already on line {first_line[data['day']]}."))
        if errors:
            report.failed += 1
            for error in errors:
                report.note(error)
            continue
        first_line[data["day"]] = number
        by_day[data["day"]] = DailyPerformance(
            agency_id=creator.agency_id, creator=creator, source=Source.IMPORT, **data
        )
    if not report.ok or not by_day:
        return report
    existing = set(
        DailyPerformance.objects.for_agency(creator.agency_id)
        .filter(creator=creator, day__in=list(by_day))
        .values_list("day", flat=True)
    )
    try:
        with transaction.atomic():
            DailyPerformance.objects.bulk_create(
                list(by_day.values()),
                batch_size=1000,
                update_conflicts=True,
                unique_fields=["creator", "day"],
                update_fields=[*METRIC_COLUMNS, "source", "updated_at"],
            )
    except IntegrityError:
        raise ConflictError("Another import for this creator ran at the same time. Try again.", field="file")
    report.updated = len(existing)
    report.created = len(by_day) - report.updated
    return report


def _daily_row(row: dict[str, str], number: int, today: date) -> tuple[dict[str, Any], list[RowError]]:
    errors: list[RowError] = []
    data: dict[str, Any] = {}
    text = row.get("day", "")
    try:
        day = date.fromisoformat(text[:10]) if text else None
    except ValueError:
        day = None
    if day is None:
        errors.append(RowError(number, "day", f"“{text}” is not a date (YYYY-MM-DD)."))
    elif day > today:
        errors.append(RowError(number, "day", "The day is in the future."))
    data["day"] = day
    for name in METRIC_COLUMNS:
        value = row.get(name, "")
        if name in MONEY_METRICS:
            amount, message = parse_money(value, max_value=MAX_DAILY_MONEY)
            data[name] = amount if amount is not None else Decimal("0.00")
        else:
            data[name], message = parse_count(value)
        if message:
            errors.append(RowError(number, name, message))
    data["updated_at"] = timezone.now()
    return data, errors


# --- PPV offers -------------------------------------------------------------------------------


def offers_import_csv(*, membership: Membership, creator: Creator, file: IO) -> ImportReport:
    """Import PPV offers for ``creator``. Needs the edit permission on them."""
    require(membership, Perm.EDIT, creator)
    report = ImportReport()
    zone = _zone(creator)
    now = timezone.now()
    seen = set(
        Offer.objects.for_agency(creator.agency_id)
        .filter(creator=creator)
        .exclude(external_id="")
        .values_list("external_id", flat=True)
    )
    offers = []
    for number, row, problem in _rows(file, columns=OFFER_COLUMNS, required=OFFER_REQUIRED, aliases={},
                                      hint="export your PPV offers as CSV first"):  # fmt: skip
        report.rows += 1
        if problem:
            report.failed += 1
            report.note(RowError(number, None, problem))
            continue
        data, errors = _offer_row(row, number, zone, now, creator.currency)
        if errors:
            report.failed += 1
            for error in errors:
                report.note(error)
            continue
        if data["external_id"]:
            if data["external_id"] in seen:
                report.duplicates += 1
                continue
            seen.add(data["external_id"])
        offers.append(Offer(agency_id=creator.agency_id, creator=creator, source=Source.IMPORT, **data))
    if not report.ok or not offers:
        return report
    try:
        with transaction.atomic():
            Offer.objects.bulk_create(offers, batch_size=1000)
    except IntegrityError:
        raise ConflictError("Another import for this creator ran at the same time. Try again.", field="file")
    report.created = len(offers)
    return report


def _offer_row(
    row: dict[str, str], number: int, zone: tzinfo, now: datetime, currency: str
) -> tuple[dict[str, Any], list[RowError]]:
    errors: list[RowError] = []

    def fail(name: str, message: str) -> None:
        errors.append(RowError(number, name, message))

    data: dict[str, Any] = {}
    sent_at = parse_datetime(row.get("sent_at", ""), zone)
    if sent_at is None:
        fail("sent_at", f"“{row.get('sent_at', '')}” is not {DATETIME_EXPECTED}.")
    elif sent_at > now + timedelta(days=1):
        fail("sent_at", "The offer date is in the future.")
    data["sent_at"] = sent_at

    price, message = parse_money(row.get("price", ""), max_value=MAX_PRICE)
    if message:
        fail("price", message if "Too large" not in message else f"Prices are at most ${MAX_PRICE}.")
    elif price is None or price <= 0:
        fail("price", "A price above 0 is required.")
    data["price"] = price

    recipients, message = parse_count(row.get("recipients", ""))
    if message:
        fail("recipients", message)
    elif recipients <= 0:
        fail("recipients", "At least one fan must have received the offer.")
    unlocks, message = parse_count(row.get("unlocks", ""))
    if message:
        fail("unlocks", message)
    elif unlocks > recipients:
        fail("unlocks", f"More unlocks ({unlocks}) than recipients ({recipients}).")
    data["recipients"], data["unlocks"] = recipients, unlocks

    revenue, message = parse_money(row.get("revenue", ""), max_value=MAX_DAILY_MONEY)
    if message:
        fail("revenue", message)
    if revenue is None and price is not None:
        revenue = (price * unlocks).quantize(Decimal("0.01"))
        if revenue > MAX_DAILY_MONEY:
            fail("revenue", f"Price x unlocks is above ${MAX_DAILY_MONEY}: give the offer's revenue.")
    data["revenue"] = revenue if revenue is not None else Decimal("0.00")

    code = (row.get("currency", "") or currency or "USD").upper()
    if not re.fullmatch(r"[A-Z]{3}", code):
        fail("currency", f"“{row.get('currency', '')}” is not a three-letter currency code (USD, EUR).")
    data["currency"] = code

    external_id = row.get("external_id", "")
    if len(external_id) > 128:
        fail("external_id", "External ids are at most 128 characters.")
    data["external_id"] = external_id
    return data, errors
