"""AI budgets: monthly spending limits per agency or creator, their alerts and the hard stop.

- **Writes and reads** for the budget pages (``budget_create`` / ``budget_update`` /
  ``budget_delete``, ``budget_list`` / ``budget_get_for_member``): owners and managers only; the
  creator must be the agency's; one agency-wide budget and one per creator (the database says so
  too, the services say it in words).
- **Spend counters** that every process agrees on, in apps.core.shared's state (Redis, or the
  embedded state file): one integer counter of micro-dollars per budget and month, seeded from
  the ledger the first time it is used and raised by each call's cost when the gateway settles
  the call. The ledger itself is written asynchronously (apps/ai/ledger.py), so it cannot be
  what a request is judged against; ``budgets_evaluate`` (the check_budgets task) raises a
  counter that fell behind the ledger.
- **The gateway check** (``check_budget``, in settings.AI_BUDGET_CHECKS): refuses a request once
  a hard-stop budget is used up, with "The monthly AI budget … is used up". Near the limit it
  lets requests through one at a time, so the month ends at most one request over the budget:

  * each request gets an upper bound of its cost (every byte of the prompt a token, the whole
    ``max_tokens`` answer, priced at the dearest model its route may reach);
  * while spend + the bounds of the requests in flight + its own bound fits in the budget, it is
    admitted at once and its bound is *reserved* (a shared counter) until it settles;
  * otherwise it must take the budget's *lock* (one holder at a time, with a TTL so a crashed
    process cannot block the budget for longer) and is admitted only while spend + reservations
    is still below the limit; other requests wait for the lock (at most AI_BUDGET_WAIT_SECONDS)
    and are refused as soon as the budget is used up.

  Only the lock holder can take the spend past the limit, and there is one holder at a time,
  so the overshoot is at most one request (as long as a call costs no more than its bound:
  models missing from the price table cost 0 everywhere).
- **Threshold alerts**: ``budget:{id}:{YYYY-MM}:{pct}`` through apps.monitoring.alerts, once per
  threshold and month, checked right after a call's cost pushes a counter over a threshold and
  by the periodic task.

Not here: the spend reports and advice (apps/monitoring/cost.py) and the pages (cost_views.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.ai.models import AIRequestLog
from apps.ai.pricing import cost_usd
from apps.ai.types import AIError, AIRequest, ErrorKind, Usage
from apps.core.errors import ApplicationError
from apps.core.shared import shared_state
from apps.monitoring import alerts
from apps.monitoring.models import Alert, Budget

logger = logging.getLogger(__name__)

MICRO = Decimal(1_000_000)
SPEND_TTL = 62 * 86400  # a month's counter outlives its month
CONFIG_TTL = 300  # budgets edited outside the services (the database, the admin) apply within this
RESERVE_BUCKET_SECONDS = 3600
RESERVE_TTL = 3 * RESERVE_BUCKET_SECONDS
MAX_THRESHOLD = 1000


# --- Months and money ----------------------------------------------------------------------------


def month_start(moment: datetime | date) -> date:
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return moment.replace(day=1)


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The month's first instant and the next month's first instant, in UTC (ledger days are UTC)."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    end_day = next_month(month)
    return start, datetime(end_day.year, end_day.month, 1, tzinfo=UTC)


def month_label(month: date) -> str:
    return f"{month:%Y-%m}"


def to_micro(usd: Decimal | float | int) -> int:
    """Dollars to whole micro-dollars, rounded up: counters only ever overstate spend."""
    return int((Decimal(usd) * MICRO).to_integral_value(rounding=ROUND_CEILING))


def from_micro(micro: int) -> Decimal:
    return (Decimal(micro) / MICRO).quantize(Decimal("0.000001"))


# --- Reads and writes for the pages ------------------------------------------------------------------


def budget_list(*, membership: Membership) -> QuerySet[Budget]:
    """The agency's budgets, agency-wide first, then by creator name."""
    return (
        Budget.objects.for_agency(membership.agency_id)
        .select_related("creator")
        .order_by("creator__display_name", "id")
    )


def budget_get_for_member(*, membership: Membership, budget_id: int) -> Budget:
    budget = budget_list(membership=membership).filter(pk=budget_id).first()
    if budget is None:
        raise Http404("No such budget.")
    return budget


def thresholds_clean(values: Any) -> list[int]:
    """Whole percentages from 1 to 1000, each once, in order; raises ApplicationError."""
    if isinstance(values, str):
        values = [part.strip() for part in values.replace(";", ",").split(",") if part.strip()]
    cleaned = set()
    for value in values or []:
        try:
            number = int(str(value).strip().rstrip("%"))
        except ValueError:
            raise ApplicationError(f"“{value}” is not a whole percentage.", field="thresholds") from None
        if str(value).strip().rstrip("%") != str(number) or not 1 <= number <= MAX_THRESHOLD:
            raise ApplicationError(
                f"Thresholds are whole percentages from 1 to {MAX_THRESHOLD} (“{value}” is not).", field="thresholds"
            )
        cleaned.add(number)
    if len(cleaned) > 10:
        raise ApplicationError("At most 10 thresholds.", field="thresholds")
    return sorted(cleaned)


def _validate(*, membership: Membership, creator: Creator | None, monthly_usd: Decimal, exclude: int | None) -> None:
    if monthly_usd is None or Decimal(monthly_usd) <= 0:
        raise ApplicationError("The monthly budget must be more than $0.", field="monthly_usd")
    if creator is not None and creator.agency_id != membership.agency_id:
        raise ApplicationError("Choose one of your agency's creators.", field="creator")
    clash = Budget.objects.for_agency(membership.agency_id).filter(creator=creator).exclude(pk=exclude)
    if clash.exists():
        who = f"{creator.display_name} already has" if creator else "The agency already has an agency-wide"
        raise ApplicationError(f"{who} budget: edit that one instead.", field="creator")


def _saved(budget: Budget, creator: Creator | None) -> Budget:
    try:
        with transaction.atomic():
            budget.save()
    except IntegrityError:  # two members saved the same scope at once
        who = f"{creator.display_name} already has" if creator else "The agency already has an agency-wide"
        raise ApplicationError(f"{who} budget: edit that one instead.", field="creator") from None
    agency_id = budget.agency_id
    transaction.on_commit(lambda: forget_config(agency_id))
    return budget


def budget_create(
    *,
    membership: Membership,
    creator: Creator | None,
    monthly_usd: Decimal,
    thresholds: Any = Budget.DEFAULT_THRESHOLDS,
    hard_stop: bool = False,
) -> Budget:
    require(membership, Perm.EDIT)
    _validate(membership=membership, creator=creator, monthly_usd=monthly_usd, exclude=None)
    budget = Budget(
        agency_id=membership.agency_id,
        creator=creator,
        monthly_usd=Decimal(monthly_usd),
        thresholds=thresholds_clean(thresholds),
        hard_stop=hard_stop,
    )
    return _saved(budget, creator)


def budget_update(
    *,
    membership: Membership,
    budget: Budget,
    creator: Creator | None,
    monthly_usd: Decimal,
    thresholds: Any,
    hard_stop: bool,
) -> Budget:
    require(membership, Perm.EDIT)
    if budget.agency_id != membership.agency_id:
        raise Http404("No such budget.")
    _validate(membership=membership, creator=creator, monthly_usd=monthly_usd, exclude=budget.pk)
    budget.creator = creator
    budget.monthly_usd = Decimal(monthly_usd)
    budget.thresholds = thresholds_clean(thresholds)
    budget.hard_stop = hard_stop
    return _saved(budget, creator)


def budget_delete(*, membership: Membership, budget: Budget) -> None:
    require(membership, Perm.EDIT)
    if budget.agency_id != membership.agency_id:
        raise Http404("No such budget.")
    agency_id = budget.agency_id
    budget.delete()
    transaction.on_commit(lambda: forget_config(agency_id))


# --- Shared budget configuration -------------------------------------------------------------------
# The gateway check reads an agency's budgets from the shared state, not the database: one small
# record per agency, written when missing and forgotten whenever a budget changes.


def _config_key(agency_id: int) -> str:
    return f"ai-budget:config:{agency_id}"


def _config_entry(budget: Budget) -> dict[str, Any]:
    return {
        "id": budget.pk,
        "creator_id": budget.creator_id,
        "label": budget.creator.display_name if budget.creator_id else "your agency",
        "limit": to_micro(budget.monthly_usd),
        "hard_stop": budget.hard_stop,
        "thresholds": list(budget.thresholds or []),
    }


def _config_load(agency_id: int) -> dict[str, Any]:
    budgets = Budget.objects.for_agency(agency_id).select_related("creator").order_by("id")
    return {"budgets": [_config_entry(budget) for budget in budgets]}


async def _config(agency_id: int) -> list[dict[str, Any]]:
    state = shared_state()
    record = await state.get_record(_config_key(agency_id))
    if not isinstance(record, dict) or "budgets" not in record:
        record = await sync_to_async(_config_load)(agency_id)
        await state.set_record(_config_key(agency_id), record, CONFIG_TTL)
    return record["budgets"]


def forget_config(agency_id: int) -> None:
    shared_state().delete_sync(_config_key(agency_id))


# --- Spend counters --------------------------------------------------------------------------------


def _spend_key(budget_id: int, month: date) -> str:
    return f"ai-budget:spend:{budget_id}:{month_label(month)}"


def _seed_key(budget_id: int, month: date) -> str:
    return f"ai-budget:seeding:{budget_id}:{month_label(month)}"


def _seeded_key(budget_id: int, month: date) -> str:
    return f"ai-budget:seeded:{budget_id}:{month_label(month)}"


def _reserved_key(budget_id: int, bucket: int) -> str:
    return f"ai-budget:reserved:{budget_id}:{bucket}"


def _lock_key(budget_id: int) -> str:
    return f"ai-budget:lock:{budget_id}"


def ledger_spend(*, agency_id: int, creator_id: int | None, month: date) -> Decimal:
    """The month's spend in the ledger for an agency (creator None) or one creator."""
    start, end = month_bounds(month)
    rows = AIRequestLog.objects.for_agency(agency_id).filter(created_at__gte=start, created_at__lt=end)
    if creator_id is not None:
        rows = rows.filter(creator_id=creator_id)
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def _seed_micro(entry: dict[str, Any], agency_id: int, month: date) -> int:
    return to_micro(ledger_spend(agency_id=agency_id, creator_id=entry["creator_id"], month=month))


SEED_LOCK_SECONDS = 30
SEED_WAIT_SECONDS = 10


async def _ensure_seeded(entry: dict[str, Any], agency_id: int, month: date) -> None:
    """Seed the month's counter with the ledger's total, once: the first caller takes the seed
    lock and seeds; the others wait until it is done (reading an unseeded counter would admit
    requests against a spend of 0). A seeder that dies leaves the lock to expire; the next
    caller seeds then."""
    state = shared_state()
    marker = _seeded_key(entry["id"], month)
    deadline = time.monotonic() + SEED_WAIT_SECONDS
    delay = 0.005
    while not (await state.get_record(marker)).get("done"):
        if await state.incr(_seed_key(entry["id"], month), SEED_LOCK_SECONDS, 1) == 1:
            total = await sync_to_async(_seed_micro)(entry, agency_id, month)
            await state.incr(_spend_key(entry["id"], month), SPEND_TTL, total)
            await state.set_record(marker, {"done": True}, SPEND_TTL)
            return
        if time.monotonic() >= deadline:
            raise _busy(entry)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _add_spend(entry: dict[str, Any], agency_id: int, month: date, amount: int) -> int:
    """Add ``amount`` micro-dollars to the month's seeded counter (0 reads it); the new value."""
    await _ensure_seeded(entry, agency_id, month)
    return await shared_state().incr(_spend_key(entry["id"], month), SPEND_TTL, amount)


def counter_micro(budget_id: int, month: date) -> int:
    """The month's counter as it stands (0 when not used yet); no seeding, no query."""
    return shared_state().incr_sync(_spend_key(budget_id, month), SPEND_TTL, 0)


def budget_month_spend(budget: Budget, *, ledger_usd: Decimal, month: date) -> Decimal:
    """What a budget has spent this month: the ledger, or the counter when it is ahead (calls
    whose ledger rows are not written yet)."""
    return max(ledger_usd, from_micro(counter_micro(budget.pk, month)))


# --- The gateway check ----------------------------------------------------------------------------


def _first_of_next_month(month: date) -> str:
    reset = next_month(month)
    return f"{reset.day} {reset:%B}"


def _used_up(entry: dict[str, Any], spent: int, month: date) -> AIError:
    label = entry["label"]
    reset = next_month(month)
    seconds = (datetime(reset.year, reset.month, 1, tzinfo=UTC) - timezone.now()).total_seconds()
    return AIError(
        ErrorKind.RATE_LIMIT,
        f"The monthly AI budget for {label} is used up (${from_micro(spent):.2f} of "
        f"${from_micro(entry['limit']):.2f} in {month:%B %Y}). An owner or manager can raise it on the "
        f"AI cost page; it starts again on {_first_of_next_month(month)}.",
        retryable=False,
        retry_after=max(1.0, seconds),
        provider="budget",
    )


def _busy(entry: dict[str, Any]) -> AIError:
    return AIError(
        ErrorKind.RATE_LIMIT,
        f"The monthly AI budget for {entry['label']} is nearly used up, so AI requests go one at a time; "
        "try again in a few seconds.",
        retry_after=2.0,
        provider="budget",
    )


async def request_cost_bound(request: AIRequest) -> int:
    """An upper bound of what ``request`` can cost, in micro-dollars: every prompt byte a token,
    the whole ``max_tokens`` answer, at the dearest model of its route."""
    from apps.ai.registry import registry
    from apps.ai.router import plan

    prompt_bytes = len((request.system or "").encode()) + sum(len(m.content.encode()) for m in request.messages)
    usage = Usage(input_tokens=prompt_bytes, output_tokens=request.max_tokens)
    routes = plan(request, await registry.providers_for(request.agency_id))
    return max((to_micro(cost_usd(route.model, usage)) for route in routes), default=0)


@dataclass
class _Hold:
    """One budget's part in one admitted request: what to release when it settles."""

    entry: dict[str, Any]
    bucket: int | None = None
    reserved: int = 0
    locked: bool = False


@dataclass
class _Admission:
    agency_id: int
    month: date
    holds: list[_Hold] = field(default_factory=list)
    settled: bool = False

    async def __call__(self, cost: Decimal) -> None:
        """The gateway's settle: count the call's cost, release reservations and locks, and
        alert on the thresholds the cost crossed."""
        if self.settled:
            return
        self.settled = True
        state = shared_state()
        amount = to_micro(cost) if cost and cost > 0 else 0
        crossed: list[tuple[int, int]] = []
        for hold in self.holds:
            entry = hold.entry
            try:
                if amount:
                    spent = await _add_spend(entry, self.agency_id, self.month, amount)
                    before = spent - amount
                    if any(before < entry["limit"] * pct / 100 <= spent for pct in entry["thresholds"]):
                        crossed.append((entry["id"], spent))
            finally:
                await _release(state, hold)
        for budget_id, spent in crossed:
            try:
                await sync_to_async(budget_evaluate_one)(budget_id=budget_id, spent_micro=spent)
            except Exception:
                logger.exception("could not evaluate AI budget %s after a call", budget_id)

    async def release(self) -> None:
        self.settled = True
        state = shared_state()
        for hold in self.holds:
            await _release(state, hold)


async def _release(state, hold: _Hold) -> None:
    if hold.reserved:
        await state.incr(_reserved_key(hold.entry["id"], hold.bucket), RESERVE_TTL, -hold.reserved)
        hold.reserved = 0
    if hold.locked:
        await state.delete(_lock_key(hold.entry["id"]))
        hold.locked = False


async def _in_flight(state, budget_id: int, bucket: int) -> int:
    """Reserved bounds of the requests in flight (this hour's bucket and the last one's)."""
    current = await state.incr(_reserved_key(budget_id, bucket), RESERVE_TTL, 0)
    previous = await state.incr(_reserved_key(budget_id, bucket - 1), RESERVE_TTL, 0)
    return max(0, current) + max(0, previous)


async def _admit(entry: dict[str, Any], agency_id: int, month: date, bound: int) -> _Hold:
    """Admit one request against a hard-stop budget, or raise the refusal (see the module doc)."""
    state = shared_state()
    limit = entry["limit"]
    budget_id = entry["id"]
    bucket = int(time.time() // RESERVE_BUCKET_SECONDS)
    # Reserve first, then read the spend: a settle adds its cost before it releases its
    # reservation, so spend + reservations read in this order never misses a call.
    reserved = await state.incr(_reserved_key(budget_id, bucket), RESERVE_TTL, bound)
    previous = await state.incr(_reserved_key(budget_id, bucket - 1), RESERVE_TTL, 0)
    spent = await _add_spend(entry, agency_id, month, 0)
    if spent < limit and spent + reserved + max(0, previous) <= limit:
        return _Hold(entry, bucket=bucket, reserved=bound)
    await state.incr(_reserved_key(budget_id, bucket), RESERVE_TTL, -bound)
    if spent >= limit:
        raise _used_up(entry, spent, month)
    deadline = time.monotonic() + settings.AI_BUDGET_WAIT_SECONDS
    delay = 0.01
    while True:
        if await state.incr(_lock_key(budget_id), settings.AI_BUDGET_LOCK_SECONDS, 1) == 1:
            in_flight = await _in_flight(state, budget_id, bucket)
            spent = await _add_spend(entry, agency_id, month, 0)
            if spent < limit and spent + in_flight < limit:
                return _Hold(entry, locked=True)
            await state.delete(_lock_key(budget_id))
        else:
            spent = await _add_spend(entry, agency_id, month, 0)
        if spent >= limit:
            raise _used_up(entry, spent, month)
        if time.monotonic() >= deadline:
            raise _busy(entry)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


async def check_budget(request: AIRequest) -> _Admission | None:
    """settings.AI_BUDGET_CHECKS entry: count the request against its agency's and creator's
    budgets; refuse it when a hard-stop budget is used up. Answers the settle the gateway calls
    with the call's cost, or None when no budget applies."""
    if request.agency_id is None:
        return None
    entries = [
        entry
        for entry in await _config(request.agency_id)
        if entry["creator_id"] is None or entry["creator_id"] == request.creator_id
    ]
    if not entries:
        return None
    admission = _Admission(agency_id=request.agency_id, month=month_start(timezone.now()))
    hard = [entry for entry in entries if entry["hard_stop"]]
    try:
        bound = await request_cost_bound(request) if hard else 0
        for entry in entries:
            if entry["hard_stop"]:
                admission.holds.append(await _admit(entry, request.agency_id, admission.month, bound))
            else:
                admission.holds.append(_Hold(entry))
    except BaseException:
        await admission.release()
        raise
    return admission


# --- Threshold alerts -----------------------------------------------------------------------------


def alert_key(budget_id: int, month: date, pct: int) -> str:
    return f"budget:{budget_id}:{month_label(month)}:{pct}"


def _evaluate(budget: Budget, spent: Decimal, month: date, now: datetime) -> list[Alert]:
    """Fire each threshold the month's spend reached, once per month (an alert that was resolved
    is not fired again for the same month); resolve those no longer reached (budget raised)."""
    fired = []
    limit = budget.monthly_usd
    who = budget.creator.display_name if budget.creator_id else budget.agency.name
    existing = set(Alert.objects.filter(budget=budget, key__startswith=f"budget:{budget.pk}:{month_label(month)}:")
                   .values_list("key", flat=True))  # fmt: skip
    for pct in sorted(budget.thresholds or []):
        key = alert_key(budget.pk, month, pct)
        reached = spent >= limit * pct / 100
        values = {
            "spent_usd": f"{spent:.2f}",
            "budget_usd": f"{limit:.2f}",
            "percent": pct,
            "month": month_label(month),
        }
        if reached and key not in existing:
            stop = " Hard stop: AI requests are refused." if pct >= 100 and budget.hard_stop else ""
            alert = alerts.fire(
                key,
                kind=Alert.Kind.BUDGET,
                severity=Alert.Severity.PAGE if pct >= 100 else Alert.Severity.WARNING,
                title=f"AI budget {pct}% used: {who}",
                detail=f"${spent:.2f} of ${limit:.2f} spent on AI in {month:%B %Y}.{stop}",
                agency_id=budget.agency_id,
                budget_id=budget.pk,
                values=values,
                now=now,
            )
            if alert is not None:
                fired.append(alert)
        elif not reached and key in existing:
            alerts.resolve(key, now=now, values=values)
    return fired


def budget_evaluate_one(*, budget_id: int, spent_micro: int, now: datetime | None = None) -> list[Alert]:
    """Right after a call's cost crossed a threshold (the counter says ``spent_micro``)."""
    now = now or timezone.now()
    budget = Budget.objects.select_related("creator", "agency").filter(pk=budget_id).first()
    if budget is None:
        return []
    return _evaluate(budget, from_micro(spent_micro), month_start(now), now)


def budgets_evaluate(*, now: datetime | None = None) -> list[Alert]:
    """Every budget against its month's spend (the ledger, or the counter when it is ahead; a
    counter behind the ledger is raised to it); resolve budget alerts of past months."""
    now = now or timezone.now()
    month = month_start(now)
    start, end = month_bounds(month)
    rows = AIRequestLog.objects.filter(created_at__gte=start, created_at__lt=end, agency__isnull=False)
    by_agency = {r["agency_id"]: r["total"] for r in rows.values("agency_id").annotate(total=Sum("cost_usd"))}
    by_creator = {
        (r["agency_id"], r["creator_id"]): r["total"]
        for r in rows.filter(creator__isnull=False).values("agency_id", "creator_id").annotate(total=Sum("cost_usd"))
    }
    state = shared_state()
    fired: list[Alert] = []
    for budget in Budget.objects.select_related("creator", "agency").order_by("id"):
        if budget.creator_id:
            ledger = by_creator.get((budget.agency_id, budget.creator_id)) or Decimal(0)
        else:
            ledger = by_agency.get(budget.agency_id) or Decimal(0)
        counter = counter_micro(budget.pk, month)
        if not state.get_record_sync(_seeded_key(budget.pk, month)).get("done"):
            if state.incr_sync(_seed_key(budget.pk, month), SEED_LOCK_SECONDS, 1) == 1:
                counter = state.incr_sync(_spend_key(budget.pk, month), SPEND_TTL, to_micro(ledger))
                state.set_record_sync(_seeded_key(budget.pk, month), {"done": True}, SPEND_TTL)
        elif to_micro(ledger) > counter:
            counter = state.incr_sync(_spend_key(budget.pk, month), SPEND_TTL, to_micro(ledger) - counter)
        fired += _evaluate(budget, max(ledger, from_micro(counter)), month, now)
    stale = Alert.objects.filter(kind=Alert.Kind.BUDGET, state=Alert.State.FIRING).exclude(
        key__contains=f":{month_label(month)}:"
    )
    for key in list(stale.values_list("key", flat=True)):
        alerts.resolve(key, now=now)
    return fired


def budget_progress(budget: Budget, spent: Decimal) -> dict[str, Any]:
    """What a gauge shows: spent, limit, percent used (uncapped) and the bar's width (capped)."""
    percent = float(spent / budget.monthly_usd * 100) if budget.monthly_usd else 0.0
    return {
        "budget": budget,
        "spent": spent,
        "limit": budget.monthly_usd,
        "percent": percent,
        "bar": min(100.0, percent),
        "over": percent >= 100,
        "warn": any(percent >= pct for pct in budget.thresholds or []) and percent < 100,
        "left": max(Decimal(0), budget.monthly_usd - spent),
    }
