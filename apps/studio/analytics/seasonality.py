"""Dated events per locale and the creator's own weekly and yearly patterns.

Part of ``apps.studio.analytics``; the package docstring holds the shared definitions.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from django.db.models import Avg, Count, F, FloatField, Value
from django.db.models.functions import Cast, ExtractMonth, Greatest
from django.utils import timezone

from apps.studio.analytics.history import MIN_SUPPORT, PostRow, creator_zone, lift_of, mean_of, percent, post_history
from apps.studio.models import Post

if TYPE_CHECKING:
    from apps.accounts.models import Creator


# --- Seasonality ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SeasonalEvent:
    """A dated moment worth planning for. ``kind``: holiday, payday, or pattern (the creator's own)."""

    key: str
    name: str
    starts: date
    ends: date
    relevance: float
    reason: str
    kind: str = "holiday"


def easter_sunday(year: int) -> date:
    """Western Easter (the anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    weekday_shift = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * weekday_shift) // 451
    month, day = divmod(h + weekday_shift - 7 * m + 114, 31)
    return date(year, month, day + 1)


def black_friday(year: int) -> date:
    """The day after US Thanksgiving (the fourth Thursday of November)."""
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(days=22)


def last_friday(year: int, month: int) -> date:
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - 4) % 7)


def oktoberfest(year: int) -> tuple[date, date]:
    """Ends on the first Sunday of October (October 3 when that Sunday is the 1st or 2nd) and
    opens on the Saturday 15 days before that Sunday."""
    first = date(year, 10, 1)
    sunday = first + timedelta(days=(6 - first.weekday()) % 7)
    return sunday - timedelta(days=15), max(sunday, date(year, 10, 3))


_SOUTHERN_ZONES = ("Australia/", "Pacific/Auckland", "America/Sao_Paulo", "America/Argentina", "America/Santiago",
                   "America/Montevideo", "Africa/Johannesburg")  # fmt: skip
SEMI_MONTHLY_LOCALES = {"en-US", "es-MX"}


def creator_locale(creator: Creator) -> str:
    """Language and a region guessed from the time zone: en-US, en-GB, es-ES, es-MX, pt-BR, fr-FR…"""
    language = creator.language or "en"
    tz = creator.timezone or "UTC"
    american = tz.startswith(("America/", "US/", "Canada/"))
    if language == "en":
        region = "US" if american or tz == "UTC" else "AU" if tz.startswith("Australia/") else "GB"
    elif language == "es":
        region = "MX" if american else "ES"
    elif language == "pt":
        region = "BR" if american else "PT"
    else:
        region = {"ja": "JP"}.get(language, language.upper())
    return f"{language}-{region}"


# Base relevance of each calendar event, before niche boosts and the distance from ``on``.
_NICHE_BOOSTS = {
    "halloween": ("cosplay", "gaming", "alt", "goth"),
    "valentines": ("lingerie", "fashion", "couple"),
    "summer_start": ("beach", "travel", "fitness", "bikini"),
    "new_year": ("fitness", "gym"),
    "pride": ("lgbt", "queer", "gay", "trans"),
}


def calendar_events(*, locale: str, year: int, southern: bool = False) -> list[SeasonalEvent]:
    """The dated events of one year for a locale, with their base relevance (no niche or distance
    adjustment). Payday weekends are not included: see ``payday_events``."""
    language = locale.split("-")[0]
    easter = easter_sunday(year)
    friday = black_friday(year)
    d = date

    def event(key: str, name: str, starts: date, ends: date, relevance: float, reason: str) -> SeasonalEvent:
        return SeasonalEvent(key, name, starts, ends, relevance, reason)

    events = [
        event("new_year", "New Year", d(year, 12, 30), d(year + 1, 1, 1), 0.8,
              "Fans are home and celebrating; resolutions and countdown content do well."),
        event("valentines", "Valentine's week", d(year, 2, 7), d(year, 2, 14), 0.95,
              "The biggest week of the year for romantic and PPV content."),
        event("womens_day", "International Women's Day", d(year, 3, 8), d(year, 3, 8), 0.5,
              "A day to celebrate yourself and your community."),
        event("easter", "Easter weekend", easter - timedelta(days=2), easter + timedelta(days=1), 0.5,
              f"Long weekend (Easter Sunday is {easter:%d %B}); playful themed sets."),
        event("pride", "Pride month", d(year, 6, 1), d(year, 6, 30), 0.6, "A month of visible, inclusive content."),
        event("halloween", "Halloween", d(year, 10, 25), d(year, 10, 31), 0.85,
              "Costume and themed content peaks the week before Halloween."),
        event("black_friday", "Black Friday to Cyber Monday", friday, friday + timedelta(days=3), 0.9,
              "Fans expect deals: discounted bundles and subscription offers convert best."),
        event("christmas", "Christmas", d(year, 12, 20), d(year, 12, 26), 0.9,
              "Gift-themed content and advent-style drops; fans have time off."),
    ]  # fmt: skip
    summer = (d(year, 12, 21), d(year, 12, 31)) if southern else (d(year, 6, 21), d(year, 7, 1))
    events.append(event("summer_start", "Start of summer", *summer, 0.6, "Outdoor, beach and pool content lifts."))
    if language == "es":
        events.append(event("reyes", "Día de Reyes", d(year, 1, 5), d(year, 1, 6), 0.6,
                            "Gift day in Spain and Latin America."))  # fmt: skip
    elif language == "fr":
        events.append(event("fete_nationale", "Fête nationale", d(year, 7, 13), d(year, 7, 14), 0.55,
                            "Holiday weekend in France."))  # fmt: skip
    elif language == "de":
        starts, ends = oktoberfest(year)
        events.append(event("oktoberfest", "Oktoberfest", starts, ends, 0.65,
                            "Dirndl and beer-garden themes during the Munich festival."))  # fmt: skip
    elif language == "it":
        events.append(event("ferragosto", "Ferragosto", d(year, 8, 14), d(year, 8, 16), 0.6,
                            "Italy's mid-August holiday: beach and summer content."))  # fmt: skip
    elif language == "pt":
        carnival = easter - timedelta(days=47)  # Shrove Tuesday
        events.append(event("carnival", "Carnival", carnival - timedelta(days=3), carnival, 0.85,
                            "Carnival weekend: costumes, colour and party content."))  # fmt: skip
    return events


def payday_events(*, locale: str, first: date, last: date) -> list[SeasonalEvent]:
    """Each month's payday weekend (last Friday to Sunday) and, for semi-monthly pay locales
    (SEMI_MONTHLY_LOCALES), the 15th, for months touching ``first``…``last``."""
    events = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        friday = last_friday(year, month)
        events.append(SeasonalEvent("payday", "Payday weekend", friday, friday + timedelta(days=2), 0.7,
                                    "Fans were just paid: PPV and tips convert better.", "payday"))  # fmt: skip
        if locale in SEMI_MONTHLY_LOCALES:
            mid = date(year, month, 15)
            events.append(SeasonalEvent("payday_mid", "Mid-month payday", mid, mid + timedelta(days=1), 0.5,
                                        "Semi-monthly pay lands on the 15th here.", "payday"))  # fmt: skip
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return events


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")  # fmt: skip
_RATE_EXPR = Cast(F("likes") + F("comments"), FloatField()) / Cast(Greatest(F("views"), Value(1)), FloatField())


def _best_group(groups: dict[int, list[float]]) -> tuple[int, float, int] | None:
    supported = {k: mean_of(v) for k, v in groups.items() if len(v) >= MIN_SUPPORT}
    if len(supported) < 2:
        return None
    best = max(supported, key=lambda k: (supported[k], -k))
    return best, supported[best], len(groups[best])


def _weekly_pattern(rows: Sequence[PostRow], zone: zoneinfo.ZoneInfo, on: date) -> SeasonalEvent | None:
    """The creator's best weekday (and hour) by average engagement rate, in their time zone."""
    overall = mean_of(r.engagement_rate for r in rows)
    by_day: dict[int, list[float]] = defaultdict(list)
    by_hour: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        local = row.posted_at.astimezone(zone)
        by_day[local.weekday()].append(row.engagement_rate)
        by_hour[local.hour].append(row.engagement_rate)
    best_day = _best_group(by_day)
    if best_day is None or overall <= 0:
        return None
    day, rate, n = best_day
    lift = lift_of(rate, overall)
    best_hour = _best_group(by_hour)
    hour_text = f" around {best_hour[0]:02d}:00" if best_hour else ""
    reason = (f"Your {_WEEKDAYS[day]} posts average {rate:.1%} engagement against {overall:.1%} overall "
              f"({n} posts, {percent(lift):+d}%).")  # fmt: skip
    if best_hour:
        reason += f" {best_hour[0]:02d}:00 is your best hour ({best_hour[2]} posts, {best_hour[1]:.1%})."
    starts = on + timedelta(days=(day - on.weekday()) % 7)
    return SeasonalEvent("best_weekday", f"Your best slot: {_WEEKDAYS[day]}{hour_text}", starts, starts,
                         round(max(0.0, min(1.0, 0.5 + lift)), 2), reason, "pattern")  # fmt: skip


def _yearly_pattern(creator: Creator, zone: zoneinfo.ZoneInfo, on: date) -> SeasonalEvent | None:
    """The creator's best month over the last two years (one aggregate query)."""
    since = timezone.now() - timedelta(days=730)
    months = list(
        Post.objects.for_agency(creator.agency_id)
        .filter(creator=creator, posted_at__gte=since)
        .annotate(month=ExtractMonth("posted_at", tzinfo=zone))
        .values("month")
        .annotate(n=Count("id"), rate=Avg(_RATE_EXPR))
        .order_by("month")
    )
    supported = [m for m in months if m["n"] >= MIN_SUPPORT]
    if len(supported) < 3:
        return None
    total = sum(m["n"] for m in supported)
    overall = sum(m["rate"] * m["n"] for m in supported) / total
    best = max(supported, key=lambda m: (m["rate"], -m["month"]))
    lift = lift_of(best["rate"], overall)
    if lift <= 0:
        return None
    year = on.year if best["month"] >= on.month else on.year + 1
    starts = date(year, best["month"], 1)
    ends = date(year + best["month"] // 12, best["month"] % 12 + 1, 1) - timedelta(days=1)
    return SeasonalEvent(
        "best_month", f"Your best month: {_MONTHS[best['month'] - 1]}", starts, ends,
        round(max(0.0, min(1.0, 0.5 + lift)), 2),
        f"Your {_MONTHS[best['month'] - 1]} posts average {best['rate']:.1%} engagement against {overall:.1%} "
        f"over {len(supported)} months ({best['n']} posts, {percent(lift):+d}%).",
        "pattern",
    )  # fmt: skip


def seasonality(*, creator: Creator, on: date, horizon_days: int = 60) -> list[SeasonalEvent]:
    """Events overlapping ``on``…``on + horizon_days``, soonest first: the locale's calendar
    (creator_locale), payday weekends, and the creator's own best weekday/hour and best month.

    relevance = base relevance (+0.1 when the creator's niche fits the event, capped at 1)
    x closeness, where closeness = 1 while the event runs and falls linearly to 0.5 at the
    horizon. Pattern events score 0.5 + lift, capped to 0-1. Two queries.
    """
    locale = creator_locale(creator)
    southern = (creator.timezone or "").startswith(_SOUTHERN_ZONES)
    last = on + timedelta(days=horizon_days)
    niche = (creator.niche or "").lower()
    candidates = [e for year in range(on.year - 1, last.year + 1)
                  for e in calendar_events(locale=locale, year=year, southern=southern)]  # fmt: skip
    candidates += payday_events(locale=locale, first=on - timedelta(days=7), last=last)  # a weekend may spill over
    events = []
    for event in candidates:
        if event.ends < on or event.starts > last:
            continue
        relevance, reason = event.relevance, event.reason
        if any(word in niche for word in _NICHE_BOOSTS.get(event.key, ())):
            relevance = min(1.0, relevance + 0.1)
            reason += f" Fits a {creator.niche} niche."
        days_until = (event.starts - on).days
        closeness = 1.0 if days_until <= 0 else 1 - 0.5 * days_until / max(horizon_days, 1)
        reason += " Running now." if days_until <= 0 else f" Starts in {days_until} days."
        events.append(SeasonalEvent(event.key, event.name, event.starts, event.ends,
                                    round(relevance * closeness, 2), reason, event.kind))  # fmt: skip
    zone = creator_zone(creator)
    for pattern in (_weekly_pattern(post_history(creator=creator), zone, on), _yearly_pattern(creator, zone, on)):
        if pattern is not None and pattern.starts <= last:
            events.append(pattern)
    return sorted(events, key=lambda e: (e.starts, -e.relevance, e.key))
