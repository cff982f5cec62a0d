"""Time zones by name, as creators and agencies store them."""

from __future__ import annotations

import zoneinfo


def zone_or_utc(name: str | None) -> zoneinfo.ZoneInfo:
    """The named time zone, or UTC when the name is empty or unknown (a stored name the system's
    time-zone database no longer has must not break a page)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")
