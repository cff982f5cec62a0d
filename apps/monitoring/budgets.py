"""AI budgets: monthly spending limits per agency or creator, their alerts and the hard stop.

- **Writes and reads** for the budget pages and the API (``budget_create`` / ``budget_update`` /
  ``budget_delete``, ``budget_list`` / ``budget_get_for_member``, ``budget_alert_list``): owners
  and managers only; the creator must be the agency's; one agency-wide budget and one per
  creator (the database says so too, the services say it in words).
- **Spend counters** that every process agrees on, in apps.core.shared's state (Redis, or the
  embedded state file): one integer counter of micro-dollars per budget, scope and month, raised
  to the ledger's total the first time it is used (a maximum, so seeding twice is harmless) and
  by each call's cost when the gateway settles the call. The ledger itself is written
  asynchronously (apps/ai/ledger.py), so it cannot be what a request is judged against;
  ``budgets_evaluate`` (the check_budgets task) raises a counter that fell behind the ledger. A
  budget moved to another scope has its month's counters dropped on commit (re-seeded).
- **The gateway check** (``check_budget``, in settings.AI_BUDGET_CHECKS): refuses a request once
  a hard-stop budget is used up, with "The monthly AI budget … is used up". Near the limit it
  lets requests through one at a time, so the month ends at most one request over the budget:

  * each request gets an upper bound of its cost (every byte of the prompt a token, the whole
    ``max_tokens`` answer, priced at the dearest model its route may reach);
  * while spend + the bounds of the requests in flight + its own bound fits in the budget, it is
    admitted at once and its bound is *reserved* (a shared counter) until it settles;
  * otherwise it must take the budget's *lock* (one holder at a time, the holder's token as its
    value so only the holder releases it, with a TTL so a crashed process cannot block the
    budget for longer) and is admitted only while spend + reservations is still below the
    limit; other requests wait for the lock (at most AI_BUDGET_WAIT_SECONDS) and are refused
    as soon as the budget is used up;
  * whatever fails or is cancelled after a reservation or the lock was taken gives them back
    (uninterruptibly) before the error goes on.

  Only the lock holder can take the spend past the limit, and there is one holder at a time,
  so the overshoot is at most one request (as long as a call costs no more than its bound:
  models missing from the price table cost 0 everywhere).
- **Threshold alerts**: ``budget:{id}:{creator id|agency}:{YYYY-MM}:{pct}`` through
  apps.monitoring.alerts, once per threshold, scope and month, checked right after a call's cost
  pushes a counter over a threshold (for the month the call was admitted in) and by the periodic
  task (delivered by a Celery task, not on the AI request). A budget moved to another scope has
  its old scope's firing alerts resolved; the new scope's thresholds fire afresh.

Not here: the spend reports and advice (apps/monitoring/cost.py) and the pages (cost_views.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet, Sum
from django.http import Http404
from django.utils import timezone

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.ai.gateway import request_cost_bound
from apps.ai.models import AIRequestLog
from apps.ai.types import AIError, AIRequest, ErrorKind
from apps.core.errors import ApplicationError
from apps.core.shared import shared_state, uninterruptible
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
        .order_by(F("creator__display_name").asc(nulls_first=True), "id")
    )


def budget_get_for_member(*, membership: Membership, budget_id: int) -> Budget:
    budget = budget_list(membership=membership).filter(pk=budget_id).first()
    if budget is None:
        raise Http404("No such budget.")
    return budget


def budget_alert_list(*, membership: Membership, state: str | None = None) -> QuerySet[Alert]:
    """The agency's budget alerts, newest first, firing or resolved (``state``) or both. Service
    alerts (SLOs) have no agency and are never among them."""
    rows = Alert.objects.for_agency(membership.agency_id).filter(kind=Alert.Kind.BUDGET)
    if state:
        rows = rows.filter(state=state)
    return rows.order_by("-fired_at", "-id")


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


def _saved(budget: Budget, creator: Creator | None, *, before: tuple[int, int | None] | None = None) -> Budget:
    """Save; ``before`` is the (agency, creator) an updated budget had."""
    try:
        with transaction.atomic():
            budget.save()
    except IntegrityError:  # two members saved the same scope at once
        who = f"{creator.display_name} already has" if creator else "The agency already has an agency-wide"
        raise ApplicationError(f"{who} budget: edit that one instead.", field="creator") from None
    old_agency_id, old_creator_id = before or (None, None)
    budget_changed_on_commit(budget, old_agency_id=old_agency_id, old_creator_id=old_creator_id)
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
    before = (budget.agency_id, budget.creator_id)
    budget.creator = creator
    budget.monthly_usd = Decimal(monthly_usd)
    budget.thresholds = thresholds_clean(thresholds)
    budget.hard_stop = hard_stop
    return _saved(budget, creator, before=before)


def budget_delete(*, membership: Membership, budget: Budget) -> None:
    require(membership, Perm.EDIT)
    if budget.agency_id != membership.agency_id:
        raise Http404("No such budget.")
    agency_id = budget.agency_id
    budget.delete()
    forget_config_on_commit(agency_id)


# --- Shared budget configuration -------------------------------------------------------------------
# The gateway check reads an agency's budgets from the shared state, not the database: one small
# record per agency. A change replaces it with a *tombstone* (a fresh random mark) once the change
# is committed; the next request loads the budgets and caches them only if the record is still
# what it read (compare-and-set): a request that loaded the old budgets while the change was being
# committed cannot cache them over the tombstone. Budgets edited straight in the database apply
# within CONFIG_TTL.


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
        "version": budget.updated_at.isoformat() if budget.updated_at else "",
    }


def _config_load(agency_id: int) -> dict[str, Any]:
    budgets = Budget.objects.for_agency(agency_id).select_related("creator").order_by("id")
    return {"budgets": [_config_entry(budget) for budget in budgets]}


async def _config(agency_id: int) -> list[dict[str, Any]]:
    state = shared_state()
    record = await state.get_record(_config_key(agency_id))
    if isinstance(record.get("budgets"), list):
        return record["budgets"]
    loaded = await sync_to_async(_config_load)(agency_id)
    # Cached only over what was read (nothing, or a tombstone): never over a newer tombstone.
    await state.swap_record(_config_key(agency_id), record or None, loaded, CONFIG_TTL)
    return loaded["budgets"]


def forget_config(agency_id: int) -> None:
    """Drop the agency's cached budgets (a tombstone no request that loaded them earlier can
    overwrite). Call it after the change is committed: forget_config_on_commit."""
    shared_state().set_record_sync(_config_key(agency_id), {"forgotten": uuid.uuid4().hex}, CONFIG_TTL)


def forget_config_on_commit(*agency_ids: int | None) -> None:
    ids = sorted({agency_id for agency_id in agency_ids if agency_id is not None})
    transaction.on_commit(lambda: [forget_config(agency_id) for agency_id in ids])


def budget_changed_on_commit(budget: Budget, *, old_agency_id: int | None, old_creator_id: int | None) -> None:
    """After a budget is saved (pages, admin): once committed, forget the cached budgets of its
    agency and of the agency it had before; when its scope changed (another creator, agency-wide,
    another agency), drop its month's spend counters so they are seeded again from the ledger for
    the new scope."""
    if old_agency_id is not None and (old_agency_id, old_creator_id) != (budget.agency_id, budget.creator_id):
        # Before the config is forgotten: requests still see the old budgets (old scope) until then.
        budget_id, scopes = budget.pk, {old_creator_id, budget.creator_id}
        transaction.on_commit(lambda: reset_spend(budget_id, scopes, month_start(timezone.now())))
        resolve_other_scopes(budget)
    forget_config_on_commit(old_agency_id, budget.agency_id)


def resolve_other_scopes(budget: Budget) -> None:
    """Resolve the budget's firing alerts of a scope (creator, agency-wide, agency) it no longer
    has: they spoke of another scope's spend, and would keep the new scope's from firing."""
    firing = Alert.objects.filter(budget_id=budget.pk, state=Alert.State.FIRING)
    stale = firing.exclude(key__startswith=_alert_scope_prefix(budget), agency_id=budget.agency_id)
    for key in list(stale.values_list("key", flat=True)):
        alerts.resolve(key)


def reset_spend(budget_id: int, creator_ids: set[int | None], month: date) -> None:
    """Forget a budget's counters and "seeded" marks for ``month``, for each scope: the next
    request seeds them from the ledger again."""
    keys = []
    for creator_id in creator_ids:
        entry = {"id": budget_id, "creator_id": creator_id}
        keys += [_spend_key(entry, month), _seeded_key(entry, month)]
    shared_state().delete_sync(*keys)


# --- Spend counters --------------------------------------------------------------------------------
# Keyed by budget *and scope* (its creator, or "agency"): a budget moved to another creator counts
# afresh, and a call admitted under the old scope that settles afterwards cannot leak into the new
# scope's counter.


def _scope(entry: dict[str, Any]) -> str:
    return str(entry["creator_id"]) if entry["creator_id"] is not None else "agency"


def _spend_key(entry: dict[str, Any], month: date) -> str:
    return f"ai-budget:spend:{entry['id']}:{_scope(entry)}:{month_label(month)}"


def _seeded_key(entry: dict[str, Any], month: date) -> str:
    return f"ai-budget:seeded:{entry['id']}:{_scope(entry)}:{month_label(month)}"


def _reserved_key(budget_id: int, bucket: int) -> str:
    return f"ai-budget:reserved:{budget_id}:{bucket}"


def _lock_key(budget_id: int) -> str:
    return f"ai-budget:lock:{budget_id}"


def _entry(budget: Budget) -> dict[str, Any]:
    return {"id": budget.pk, "creator_id": budget.creator_id}


def ledger_spend(*, agency_id: int, creator_id: int | None, month: date) -> Decimal:
    """The month's spend in the ledger for an agency (creator None) or one creator."""
    start, end = month_bounds(month)
    rows = AIRequestLog.objects.for_agency(agency_id).filter(created_at__gte=start, created_at__lt=end)
    if creator_id is not None:
        rows = rows.filter(creator_id=creator_id)
    return rows.aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)


def _seed_micro(entry: dict[str, Any], agency_id: int, month: date) -> int:
    return to_micro(ledger_spend(agency_id=agency_id, creator_id=entry["creator_id"], month=month))


# This process's memory of counters known to be seeded (the mark flips once a month and scope):
# saves one shared read per budget and request. Keyed by the budget's version too (a budget moved
# away and back is seeded again), and trusted for SEEDED_MEMO_SECONDS only.
SEEDED_MEMO_SECONDS = 60
_seeded_memo: dict[tuple[str, str], float] = {}


async def _ensure_seeded(entry: dict[str, Any], agency_id: int, month: date) -> None:
    """Raise the month's counter to the ledger's total once, before it is first read (a counter
    that was never seeded would admit requests against a spend of 0). Seeding is a maximum, not
    an addition: callers seeding at once, or again after the mark was lost, never count the
    ledger twice."""
    marker = _seeded_key(entry, month)
    memo = (marker, entry.get("version", ""))
    seen = _seeded_memo.get(memo)
    if seen is not None and time.monotonic() - seen < SEEDED_MEMO_SECONDS:
        return
    state = shared_state()
    if not (await state.get_record(marker)).get("done"):
        total = await sync_to_async(_seed_micro)(entry, agency_id, month)
        await state.raise_to(_spend_key(entry, month), SPEND_TTL, total)
        await state.set_record(marker, {"done": True}, SPEND_TTL)
    if len(_seeded_memo) > 10_000:
        _seeded_memo.clear()
    _seeded_memo[memo] = time.monotonic()


async def _add_spend(entry: dict[str, Any], agency_id: int, month: date, amount: int) -> int:
    """Add ``amount`` micro-dollars to the month's seeded counter (0 reads it); the new value."""
    await _ensure_seeded(entry, agency_id, month)
    return await shared_state().incr(_spend_key(entry, month), SPEND_TTL, amount)


def counters_micro(budgets: Iterable[Budget], month: date) -> dict[int, int]:
    """Each budget's counter for the month as it stands (0 when not used yet), by budget id: one
    read of the shared state for them all; no seeding, no write."""
    keys = {budget.pk: _spend_key(_entry(budget), month) for budget in budgets}
    counts = shared_state().get_counts_sync(list(keys.values()))
    return {budget_id: counts[key] for budget_id, key in keys.items()}


def budget_month_spend(budget: Budget, *, ledger_usd: Decimal, month: date, counter: int | None = None) -> Decimal:
    """What a budget has spent this month: the ledger, or the counter when it is ahead (calls
    whose ledger rows are not written yet). ``counter``: already read (``counters_micro``)."""
    if counter is None:
        counter = counters_micro([budget], month)[budget.pk]
    return max(ledger_usd, from_micro(counter))


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


@dataclass
class _Hold:
    """One budget's part in one admitted request: what to give back when it settles."""

    entry: dict[str, Any]
    bucket: int | None = None
    reserved: int = 0
    lock: str | None = None  # this request's token while it holds the budget's lock


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
                await uninterruptible(_release(state, hold))
        for budget_id, spent in crossed:
            try:
                await sync_to_async(budget_evaluate_one)(budget_id=budget_id, spent_micro=spent, month=self.month)
            except Exception:
                logger.exception("could not evaluate AI budget %s after a call", budget_id)

    async def release(self) -> None:
        self.settled = True
        state = shared_state()
        for hold in self.holds:
            await _release(state, hold)


async def _release(state, hold: _Hold) -> None:
    """Give back what ``hold`` holds: its reservation, and the budget's lock if it is still ours
    (it may have expired and been taken by another request, whose lock this must not drop)."""
    if hold.reserved:
        amount, hold.reserved = hold.reserved, 0
        await state.incr(_reserved_key(hold.entry["id"], hold.bucket), RESERVE_TTL, -amount)
    if hold.lock:
        token, hold.lock = hold.lock, None
        await state.swap_record(_lock_key(hold.entry["id"]), {"token": token}, None)


async def _reserve(state, hold: _Hold, bound: int) -> int:
    """Reserve ``bound`` in this hour's bucket; noted on the hold in the same uninterrupted step,
    so a cancelled request never leaves a reservation nobody gives back."""
    reserved = await state.incr(_reserved_key(hold.entry["id"], hold.bucket), RESERVE_TTL, bound)
    hold.reserved += bound
    return reserved


async def _take_lock(state, hold: _Hold, token: str) -> bool:
    taken = await state.swap_record(
        _lock_key(hold.entry["id"]), None, {"token": token}, settings.AI_BUDGET_LOCK_SECONDS
    )
    if taken:
        hold.lock = token
    return taken


async def _in_flight(state, budget_id: int, bucket: int) -> int:
    """Reserved bounds of the requests in flight (this hour's bucket and the last one's)."""
    current = await state.incr(_reserved_key(budget_id, bucket), RESERVE_TTL, 0)
    previous = await state.incr(_reserved_key(budget_id, bucket - 1), RESERVE_TTL, 0)
    return max(0, current) + max(0, previous)


async def _admit(entry: dict[str, Any], agency_id: int, month: date, bound: int) -> _Hold:
    """Admit one request against a hard-stop budget, or raise the refusal (see the module doc).
    Whatever goes wrong on the way (a refusal, a shared-state or database error, the client
    going away), the reservation and the lock it took are given back before it raises."""
    state = shared_state()
    hold = _Hold(entry, bucket=int(time.time() // RESERVE_BUCKET_SECONDS))
    try:
        await _admit_hold(state, hold, agency_id, month, bound)
    except BaseException:
        await uninterruptible(_release(state, hold))
        raise
    return hold


async def _admit_hold(state, hold: _Hold, agency_id: int, month: date, bound: int) -> None:
    entry, bucket = hold.entry, hold.bucket
    limit = entry["limit"]
    budget_id = entry["id"]
    # Reserve first, then read the spend: a settle adds its cost before it releases its
    # reservation, so spend + reservations read in this order never misses a call.
    reserved = await uninterruptible(_reserve(state, hold, bound))
    previous = await state.incr(_reserved_key(budget_id, bucket - 1), RESERVE_TTL, 0)
    spent = await _add_spend(entry, agency_id, month, 0)
    if spent < limit and spent + reserved + max(0, previous) <= limit:
        return
    await uninterruptible(_release(state, hold))
    if spent >= limit:
        raise _used_up(entry, spent, month)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + settings.AI_BUDGET_WAIT_SECONDS
    delay = 0.01
    while True:
        if await uninterruptible(_take_lock(state, hold, token)):
            in_flight = await _in_flight(state, budget_id, bucket)
            spent = await _add_spend(entry, agency_id, month, 0)
            if spent < limit and spent + in_flight < limit:
                return
            await uninterruptible(_release(state, hold))
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
        bound = to_micro(await request_cost_bound(request)) if hard else 0
        for entry in entries:
            if entry["hard_stop"]:
                admission.holds.append(await _admit(entry, request.agency_id, admission.month, bound))
            else:
                admission.holds.append(_Hold(entry))
    except BaseException:
        await uninterruptible(admission.release())
        raise
    return admission


# --- Threshold alerts -----------------------------------------------------------------------------


def _alert_scope_prefix(budget: Budget) -> str:
    return f"budget:{budget.pk}:{_scope(_entry(budget))}:"


def alert_key(budget: Budget, month: date, pct: int) -> str:
    """One threshold's key for the budget's scope and month: a month-end sweep finds the months
    by ``:{YYYY-MM}:``."""
    return f"{_alert_scope_prefix(budget)}{month_label(month)}:{pct}"


def _evaluate(budget: Budget, spent: Decimal, month: date, now: datetime) -> list[Alert]:
    """Fire each threshold the month's spend reached, once per month (an alert that was resolved
    is not fired again for the same month); resolve those no longer reached (budget raised)."""
    fired = []
    limit = budget.monthly_usd
    who = budget.creator.display_name if budget.creator_id else budget.agency.name
    existing = set(
        Alert.objects.filter(budget=budget, agency_id=budget.agency_id)
        .filter(key__startswith=f"{_alert_scope_prefix(budget)}{month_label(month)}:")
        .values_list("key", flat=True)
    )
    for pct in sorted(budget.thresholds or []):
        key = alert_key(budget, month, pct)
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


def budget_evaluate_one(*, budget_id: int, spent_micro: int, month: date, now: datetime | None = None) -> list[Alert]:
    """Right after a call's cost crossed a threshold: ``spent_micro`` is the counter of ``month``,
    the month the call was admitted in (which may have ended while it ran)."""
    now = now or timezone.now()
    budget = Budget.objects.select_related("creator", "agency").filter(pk=budget_id).first()
    if budget is None:
        return []
    return _evaluate(budget, from_micro(spent_micro), month, now)


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
        entry = _entry(budget)
        counter = state.raise_to_sync(_spend_key(entry, month), SPEND_TTL, to_micro(ledger))
        if not state.get_record_sync(_seeded_key(entry, month)).get("done"):
            state.set_record_sync(_seeded_key(entry, month), {"done": True}, SPEND_TTL)
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
