"""Time zones by name, as creators and agencies store them, and the moments a user may give."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime

from apps.core.errors import ApplicationError

# Moments from outside (a form, the API, a CSV cell) must lie in these years: the database and the
# conversions to UTC hold them (year 1 at +05:45 is before year 1 in UTC: OverflowError on SQLite,
# a BC timestamp on PostgreSQL that psycopg cannot read back).
FIRST_YEAR, LAST_YEAR = 2000, 2200


def zone_or_utc(name: str | None) -> zoneinfo.ZoneInfo:
    """The named time zone, or UTC when the name is empty or unknown (a stored name the system's
    time-zone database no longer has must not break a page)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def moment_in_range(value: date) -> bool:
    """Whether a moment (or a day) lies in FIRST_YEAR..LAST_YEAR."""
    return FIRST_YEAR <= value.year <= LAST_YEAR


def moment_check(value: datetime | None, *, field: str) -> None:
    """An ApplicationError on ``field`` for a moment outside FIRST_YEAR..LAST_YEAR."""
    if value is not None and not moment_in_range(value):
        raise ApplicationError(f"Give a time between the years {FIRST_YEAR} and {LAST_YEAR}.", field=field)
