"""CSV files in and out, for every app that imports or exports a spreadsheet.

In: ``read_csv_upload`` checks an upload as a whole (name, type, size, binary content, encoding)
and answers its text, or an ApplicationError on the ``file`` field; ``csv_rows`` reads that text
row by row (any line ending; a file the csv module cannot read is an ApplicationError on ``file``
rather than a 500); ``parse_datetime`` and
``parse_money`` read the cells people actually type (ISO 8601 dates, ``$1,234.50``, ``12,50``).

Out: ``csv_safe`` neutralises a cell a spreadsheet would run as a formula (one starting with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return: OWASP "CSV injection") by prefixing a
single quote; ``Echo`` lets ``csv.writer`` feed a ``StreamingHttpResponse`` row by row.

Row validation stays with each import: the columns and their meaning belong to the app.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import IO, Any

from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.timezones import moment_in_range

CSV_CONTENT_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel", "text/x-csv"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _megabytes(max_bytes: int) -> str:
    return f"{max_bytes / (1024 * 1024):g} MB"


def read_csv_upload(file: IO, *, max_bytes: int, hint: str = "") -> str:
    """The text of a CSV upload (a Django UploadedFile or any binary or text file object).
    ``hint`` finishes the "Upload a .csv file" message (what to export first)."""
    name = str(getattr(file, "name", "") or "")
    if name and not name.lower().endswith(".csv"):
        raise ApplicationError(f"Upload a .csv file{f' ({hint})' if hint else ''}.", field="file")
    content_type = (getattr(file, "content_type", "") or "").split(";")[0].strip().lower()
    if content_type and content_type not in CSV_CONTENT_TYPES:
        raise ApplicationError(f"Upload a CSV file, not {content_type}.", field="file")
    too_large = ApplicationError(
        f"The file is larger than {_megabytes(max_bytes)}: split it and import the parts.", field="file"
    )
    size = getattr(file, "size", None)
    if size is not None and size > max_bytes:
        raise too_large
    if hasattr(file, "seek"):
        file.seek(0)
    raw = file.read(max_bytes + 1)
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > max_bytes:
        raise too_large
    if b"\x00" in raw:
        raise ApplicationError("This is not a CSV file (it contains binary data).", field="file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApplicationError("Save the CSV as UTF-8 and upload it again.", field="file") from None
    if not text.strip():
        raise ApplicationError("The file is empty.", field="file")
    return text


def csv_rows(text: str) -> Iterator[list[str]]:
    """The rows of a CSV upload's text, as ``csv.reader`` reads them.

    Any line ending is a row's end: "CSV (Macintosh)" from Excel ends lines with a lone carriage
    return, which ``csv`` refuses unless it reads with ``newline=""``. A file it still cannot read
    (a quoted cell that never closes runs the rest of the file into one cell, past ``csv``'s field
    limit) raises an ApplicationError on ``file`` naming the line, when the iteration reaches it."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        yield from reader
    except csv.Error:
        raise ApplicationError(
            f"Line {reader.line_num} could not be read as CSV: check that every quoted cell there has "
            "its closing quote, then upload the file again.",
            field="file",
        ) from None


def column_name(header_cell: str) -> str:
    """A header cell as a column key: "Posted at" and "posted-at" are ``posted_at``."""
    return re.sub(r"[\s-]+", "_", header_cell.strip().lower())


DATETIME_EXPECTED = "an ISO 8601 date and time between the years 2000 and 2200 (2026-03-01T20:30:00)"


def parse_datetime(text: str, zone: tzinfo) -> datetime | None:
    """ISO 8601 (a date alone means midnight; a trailing Z is UTC); naive times are in ``zone``.
    None when empty, unreadable or outside the years the database holds (apps/core/timezones.py;
    a row error then says what was expected: ``DATETIME_EXPECTED``)."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=zone)
    return parsed if moment_in_range(parsed) else None


def parse_money(text: str, *, max_value: Decimal) -> tuple[Decimal | None, str | None]:
    """(amount rounded to cents, None) or (None, the problem). Accepts currency signs, a decimal
    comma (12,50) and thousands separators (1,234.50). Empty is (None, None)."""
    if not text:
        return None, None
    cleaned = re.sub(r"[\s$€£]", "", text)
    if re.fullmatch(r"-?\d+,\d{1,2}", cleaned):
        cleaned = cleaned.replace(",", ".")
    elif re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        amount = Decimal(cleaned)
    except InvalidOperation:
        return None, f"“{text}” is not an amount."
    if not amount.is_finite():
        return None, f"“{text}” is not an amount."
    if amount < 0:
        return None, "Must be 0 or more."
    if amount > max_value:
        return None, f"Too large (at most {max_value})."
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), None


@dataclass(frozen=True)
class RowError:
    """One problem in an imported file: its line number (the header is line 1) and column."""

    row: int
    field: str | None
    message: str


def check_header(
    names: list[str], *, columns: tuple[str, ...] | list[str], required: tuple[str, ...] | list[str]
) -> None:
    """Refuse a header (already normalised with ``column_name``) with unknown, repeated or missing
    columns: an ApplicationError on the ``file`` field naming them, and the columns allowed."""
    unknown = [name or "(blank)" for name in names if name not in columns]
    if unknown:
        raise ApplicationError(
            f"Unknown column(s): {', '.join(unknown)}. Columns are: {', '.join(columns)}.", field="file"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ApplicationError(f"Column(s) given twice: {', '.join(repeated)}.", field="file")
    missing = [name for name in required if name not in names]
    if missing:
        raise ApplicationError(f"Missing required column(s): {', '.join(missing)}.", field="file")


_THOUSANDS = re.compile(r"^\d{1,3}(?:[,\s]\d{3})+$")
MAX_COUNT = 2_147_483_647  # a PositiveIntegerField


def parse_count(text: str, *, max_value: int = MAX_COUNT) -> tuple[int, str | None]:
    """(whole number, None) or (0, the problem). Accepts thousands separators (1,234 or 1 234).
    Empty is (0, None)."""
    if not text:
        return 0, None
    if _THOUSANDS.match(text):
        text = re.sub(r"[,\s]", "", text)
    if not re.fullmatch(r"-?\d+", text):
        return 0, f"“{text}” is not a whole number."
    digits = text.lstrip("-").lstrip("0") or "0"
    if len(digits) > len(str(max_value)):  # checked before int(): Python refuses a string of 4,300+ digits
        return (0, "Must be 0 or more.") if text.startswith("-") else (0, "Too large.")
    number = -int(digits) if text.startswith("-") else int(digits)
    if number < 0:
        return 0, "Must be 0 or more."
    if number > max_value:
        return 0, "Too large."
    return number, None


def csv_safe(value: Any) -> Any:
    """A cell that a spreadsheet will show as text, never evaluate."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class Echo:
    """A file-like object whose ``write`` returns what it is given, for streaming CSV."""

    def write(self, value: str) -> str:
        return value
