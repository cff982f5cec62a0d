"""SLOs: indicators from recorded metrics, error budgets, and multiwindow multi-burn-rate alerts.

Indicators (good events / all events, from the rollups of apps.core.metrics' agreed names):

- ``api_availability``: ``http.request`` whose status is not 5xx / all requests;
- ``ai_success``: ``ai.request`` with outcome ok / all AI requests but those the member cancelled
  (outcome ``cancelled``: a stream closed before its end, which is no failure);
- ``ai_latency``: ``ai.request`` ok *and* within ``threshold_ms`` / the same. Good events
  are counted from the histogram buckets, which are exact only at a bucket bound, so the
  threshold must be one of apps.core.metrics.BOUNDS_MS (SLO.clean() says so on the form);
- ``delivery_success``: ``delivery.attempt`` sent / (sent + dead). A failed attempt that is
  retried is not a failure anyone sees: only a delivery that ends dead is. Counting every failed
  attempt would page on a platform's routine throttling that the retries absorb.

Burn rate over a window = the window's error ratio / (1 - objective). The rules are the Google
SRE workbook's (chapter "Alerting on SLOs", multiwindow multi-burn-rate), stated as the fraction
of the whole budget a window may consume; the threshold is that fraction x SLO window hours /
long window hours, so a 30-day SLO gets the book's 14.4, 6 and 1 and a 28-day SLO 13.44, 5.6
and 0.93. A rule holds when *both* its long and its short window burn at least the threshold;
it fires an alert per (SLO, rule) key through apps.monitoring.alerts and resolves it as soon as
the rule stops holding (the short window makes that quick after recovery).

Window arithmetic: a window of length W evaluated at ``now`` is [now - W, now]. Metrics are
minute rows, so the minute containing now - W is only partly inside: its counts are weighted by
the part of it inside the window (traffic assumed even within that minute), and the rows of the
current, unfinished minute count whole (they hold events up to now). For steady traffic this is
exact to the second, which the 52-second detection of a full outage needs. The SLO window used
for the error budget starts at the hour (hour rows exist there once the rollup has run; minute
rows are kept only a few days).

Reads are shared between SLOs that use the same metric, so an evaluation (and the overview page)
runs a number of queries that depends on the indicators in use, never on the number of SLOs.

Deliberately not here: delivering alerts (alerts.dispatch) and the schedule (tasks.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from apps.core.metrics import BOUNDS_MS
from apps.monitoring import alerts
from apps.monitoring.models import SLO, Alert
from apps.monitoring.rollups import Totals, last_rolled_up, read

MINUTE = 60
# Which metric each indicator reads, and the dimension that tells good from bad.
INDICATOR_METRICS: dict[str, tuple[str, str]] = {
    SLO.Indicator.API_AVAILABILITY: ("http.request", "status"),
    SLO.Indicator.AI_SUCCESS: ("ai.request", "outcome"),
    SLO.Indicator.AI_LATENCY: ("ai.request", "outcome"),
    SLO.Indicator.DELIVERY_SUCCESS: ("delivery.attempt", "outcome"),
}
# Indicators counted from the latency histogram (ai_latency) read every column of their metric;
# the others only the counts.
HISTOGRAM_METRICS = frozenset({"ai.request"})
# Floating point: 1296/216000 / 0.001 must count as 6.
_EPSILON = 1e-9


@dataclass(frozen=True)
class Rule:
    """One multiwindow burn-rate rule: fire when both windows burn at least the threshold."""

    name: str
    severity: str
    budget_fraction: float  # the share of the whole budget the long window may consume
    long: timedelta
    short: timedelta

    def threshold(self, window_days: int) -> float:
        return self.budget_fraction * window_days * 24 / (self.long.total_seconds() / 3600)


RULES: tuple[Rule, ...] = (
    Rule("page-1h", Alert.Severity.PAGE, 0.02, timedelta(hours=1), timedelta(minutes=5)),
    Rule("page-6h", Alert.Severity.PAGE, 0.05, timedelta(hours=6), timedelta(minutes=30)),
    Rule("ticket-3d", Alert.Severity.TICKET, 0.10, timedelta(days=3), timedelta(hours=6)),
)
# Burn-rate windows: those the rules need; the overview shows DISPLAYED ones.
WINDOWS: dict[str, timedelta] = {
    "5m": timedelta(minutes=5),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "3d": timedelta(days=3),
}
DISPLAYED_WINDOWS = ("5m", "1h", "6h", "3d")
_WINDOW_NAMES = {length: name for name, length in WINDOWS.items()}


def window_label(length: timedelta) -> str:
    return _WINDOW_NAMES.get(length) or f"{length.total_seconds() / 3600:g} h"


def alert_key(slo: SLO, rule: Rule) -> str:
    return f"slo:{slo.pk}:{rule.name}"


@dataclass
class Counts:
    good: float = 0.0
    total: float = 0.0

    @property
    def bad(self) -> float:
        return max(self.total - self.good, 0.0)

    @property
    def error_ratio(self) -> float | None:
        return self.bad / self.total if self.total > 0 else None


def indicator_counts(slo: SLO, totals: dict[tuple, Totals]) -> Counts:
    """Good and all events of ``slo``'s indicator from a read grouped by its dimension."""
    counts = Counts(total=float(sum(t.count for t in totals.values())))
    indicator = slo.indicator
    if indicator in (SLO.Indicator.AI_SUCCESS, SLO.Indicator.AI_LATENCY):
        # A stream the member closed before its end is neither good nor bad: nothing failed.
        counts.total -= sum(t.count for key, t in totals.items() if key == ("cancelled",))
    if indicator == SLO.Indicator.API_AVAILABILITY:
        counts.good = counts.total - sum(t.count for key, t in totals.items() if key == ("5xx",))
    elif indicator == SLO.Indicator.AI_SUCCESS:
        counts.good = float(sum(t.count for key, t in totals.items() if key == ("ok",)))
    elif indicator == SLO.Indicator.AI_LATENCY:
        ok = totals.get(("ok",))
        if ok is not None and slo.threshold_ms in BOUNDS_MS:
            last = BOUNDS_MS.index(slo.threshold_ms)  # bucket i holds values <= BOUNDS_MS[i]
            counts.good = float(sum(ok.buckets[: last + 1]))
    elif indicator == SLO.Indicator.DELIVERY_SUCCESS:
        sent = sum(t.count for key, t in totals.items() if key == ("sent",))
        dead = sum(t.count for key, t in totals.items() if key == ("dead",))
        counts = Counts(good=float(sent), total=float(sent + dead))
    return counts


def _minute(moment: datetime) -> datetime:
    return datetime.fromtimestamp(math.floor(moment.timestamp() / MINUTE) * MINUTE, UTC)


class Reader:
    """Window reads for one evaluation, shared by every SLO on the same metric."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._cache: dict[tuple[str, str, datetime, datetime], dict[tuple, Totals]] = {}
        # Rows of the current minute count whole: they hold the events up to now.
        self.end = _minute(now) + timedelta(seconds=MINUTE)
        self.rolled_up_until = last_rolled_up()  # once, not once per read

    def _read(self, metric: str, dimension: str, start: datetime, end: datetime) -> dict[tuple, Totals]:
        key = (metric, dimension, start, end)
        if key not in self._cache:
            self._cache[key] = read(
                metric, start, end, group_by=(dimension,), rolled_up_until=self.rolled_up_until,
                counts_only=metric not in HISTOGRAM_METRICS,
            )  # fmt: skip
        return self._cache[key]

    def window(self, slo: SLO, length: timedelta) -> Counts:
        """The indicator over [now - length, now], the partial first minute weighted."""
        metric, dimension = INDICATOR_METRICS[slo.indicator]
        start = self.now - length
        first = _minute(start)
        whole = indicator_counts(slo, self._read(metric, dimension, first, self.end))
        outside = (start - first).total_seconds() / MINUTE  # share of the first minute before start
        if outside > 0:
            edge = indicator_counts(slo, self._read(metric, dimension, first, first + timedelta(seconds=MINUTE)))
            whole.good -= edge.good * outside
            whole.total -= edge.total * outside
        return whole

    def slo_window(self, slo: SLO) -> Counts:
        """The indicator over the SLO's whole window, from the start of its first hour."""
        metric, dimension = INDICATOR_METRICS[slo.indicator]
        start = self.now - timedelta(days=slo.window_days)
        start = datetime.fromtimestamp(math.floor(start.timestamp() / 3600) * 3600, UTC)
        return indicator_counts(slo, self._read(metric, dimension, start, self.end))


@dataclass
class RuleState:
    rule: Rule
    threshold: float
    long_burn: float | None
    short_burn: float | None

    @property
    def holds(self) -> bool:
        limit = self.threshold * (1 - _EPSILON)
        return (
            self.long_burn is not None
            and self.short_burn is not None
            and self.long_burn >= limit
            and self.short_burn >= limit
        )


@dataclass
class SLOStatus:
    slo: SLO
    window: Counts
    burn: dict[str, float | None] = field(default_factory=dict)
    rules: list[RuleState] = field(default_factory=list)

    @property
    def allowed_error_ratio(self) -> float:
        return 1 - float(Decimal(self.slo.objective) / 100)

    @property
    def current(self) -> float | None:
        """Percent of good events over the SLO window (None without events)."""
        ratio = self.window.error_ratio
        return None if ratio is None else 100 * (1 - ratio)

    @property
    def budget_remaining(self) -> float | None:
        """Percent of the error budget left over the SLO window; negative once overspent."""
        ratio = self.window.error_ratio
        return None if ratio is None else 100 * (1 - ratio / self.allowed_error_ratio)

    @property
    def displayed_burn(self) -> list[tuple[str, float | None]]:
        return [(name, self.burn.get(name)) for name in DISPLAYED_WINDOWS]

    @property
    def holding(self) -> list[RuleState]:
        return [state for state in self.rules if state.holds]

    @property
    def state(self) -> str:
        """page, ticket, ok or no-data: the worst rule that holds now."""
        holding = {state.rule.severity for state in self.holding}
        if Alert.Severity.PAGE in holding:
            return "page"
        if Alert.Severity.TICKET in holding:
            return "ticket"
        return "ok" if self.window.total else "no-data"


def slo_status(slos: list[SLO], *, now: datetime | None = None) -> list[SLOStatus]:
    """Each SLO's current level, budget remaining, burn rates and rules at ``now``."""
    now = now or timezone.now()
    reader = Reader(now)
    statuses = []
    for slo in slos:
        status = SLOStatus(slo=slo, window=reader.slo_window(slo))
        allowed = status.allowed_error_ratio
        for name, length in WINDOWS.items():
            ratio = reader.window(slo, length).error_ratio
            status.burn[name] = None if ratio is None else ratio / allowed
        for rule in RULES:
            status.rules.append(
                RuleState(
                    rule=rule,
                    threshold=rule.threshold(slo.window_days),
                    long_burn=status.burn[window_label(rule.long)],
                    short_burn=status.burn[window_label(rule.short)],
                )
            )
        statuses.append(status)
    return statuses


def _times(value: float | None) -> str:
    return "no events" if value is None else f"{value:.3g}x"


def _alert_text(status: SLOStatus, state: RuleState) -> tuple[str, str, dict]:
    slo, rule = status.slo, state.rule
    long_name, short_name = window_label(rule.long), window_label(rule.short)
    title = f"{slo.name}: error budget burning {_times(state.long_burn)} ({rule.severity})"
    detail = (
        f"{slo.get_indicator_display()} against {slo.objective}% over {slo.window_days} days. "
        f"Burn rate {_times(state.long_burn)} over the last {long_name} and {_times(state.short_burn)} over "
        f"the last {short_name}; this rule fires at {state.threshold:.3g}x in both "
        f"({rule.budget_fraction:.0%} of the budget in {long_name})."
    )
    values = {
        "rule": rule.name,
        "threshold": round(state.threshold, 4),
        "long_window": long_name,
        "short_window": short_name,
        "long_burn": None if state.long_burn is None else round(state.long_burn, 4),
        "short_burn": None if state.short_burn is None else round(state.short_burn, 4),
        "budget_remaining_percent": None if status.budget_remaining is None else round(status.budget_remaining, 3),
    }
    return title, detail, values


def evaluate(*, now: datetime | None = None) -> list[SLOStatus]:
    """Evaluate every enabled SLO's rules at ``now``: fire the alerts whose rule holds (one per
    key while it keeps holding) and resolve those whose rule no longer holds, or whose SLO has
    been disabled. Metrics still buffered in other processes are not seen until they flush."""
    now = now or timezone.now()
    statuses = slo_status(list(SLO.objects.filter(enabled=True)), now=now)
    for status in statuses:
        for state in status.rules:
            key = alert_key(status.slo, state.rule)
            title, detail, values = _alert_text(status, state)
            if state.holds:
                alerts.fire(
                    key, kind=Alert.Kind.SLO_BURN, severity=state.rule.severity, title=title, detail=detail,
                    slo_id=status.slo.pk, values=values, now=now,
                )  # fmt: skip
            else:
                alerts.resolve(key, now=now, values=values)
    stale = Alert.objects.filter(kind=Alert.Kind.SLO_BURN, state=Alert.State.FIRING, slo__enabled=False)
    for key in stale.values_list("key", flat=True):
        alerts.resolve(key, now=now)
    return statuses


# -- writes from the pages ------------------------------------------------------------------------
def slo_save(*, slo: SLO) -> SLO:
    """Create or update an SLO after full validation (the form has run clean() already; the
    admin and the API would too). Its alerts stay: a changed rule resolves at the next evaluation."""
    if slo.indicator != SLO.Indicator.AI_LATENCY:
        slo.threshold_ms = None
    slo.full_clean()
    slo.save()
    return slo


def slo_delete(*, slo: SLO) -> None:
    """Delete an SLO and its alert history (the alerts reference it)."""
    slo.delete()
