"""Entitlements: the one answer to "may this agency do X, and how much of limit L is used?".

Pages, the API, websockets and tasks all ask here (accounts and the API through the hooks in
apps/core/registry.py, the AI gateway through settings.AI_BUDGET_CHECKS), so a limit is the same
limit everywhere.

- **Snapshot**: an agency's plan, status, limits, features and read-only creators, as one small
  dict in Django's cache (``billing:entitlements:{agency}``), memoised for the rest of the request
  in a context variable (EntitlementsMiddleware opens one memo per request; websockets and tasks
  read the cache each time). Dropped on commit whenever the subscription, its plan or the
  agency's creators change (apps/billing/receivers.py), and expiring after SNAPSHOT_TTL for
  changes made straight in the database.
- **Version and the process copy (pages)**: every such change also raises
  ``Agency.entitlements_version`` with one ``UPDATE … SET v = v + 1`` once the change has
  committed (after the commit, so the agency row is not locked for the rest of the writer's
  transaction). Pages already read the agency row with the member's membership (one query, joined),
  so ``snapshot_prime`` knows the version for free and takes the snapshot from a bounded
  per-process copy ({agency: (version, expires, snapshot)}, LRU of LOCAL_MAX agencies) when the
  versions match: a page makes no cache round trip (one Redis ``GET`` before, 0.1 to 0.5 ms on a
  busy machine). This is not state shared through process memory: the copy is a pure function of
  database rows, keyed by the database's own version of them, so every process sees a plan change
  on its first request after the commit, exactly as with the shared cache; a change made straight
  in the database (no version raised) is seen once the copy expires, SNAPSHOT_TTL after the
  snapshot was read from the database, as with the shared cache. Nothing is decided from it
  that processes must agree on (counters, limits' usage, locks stay in Redis or the database).
  The shared entry carries the version it was read at, and a page takes it only when that is at
  least the agency's version, so an entry a slow reader filled with pre-change rows is not reused.
  Websockets, tasks and the API ask ``entitlements_for`` (memo, shared cache, database) as before.
- **Limits** (``require_room``): creators (not archived), seats (members plus pending
  invitations), counted in the database at the moment of the write. Over a limit:
  PlanLimitError (code ``plan_limit``) with the way to upgrade.
- **Features** (``require_feature``, ``request_gate``): campaigns and optimization pages and API
  answer PlanFeatureError (code ``plan_feature``) when the plan lacks them.
- **Downgrade**: nothing is deleted. When an agency has more creators than its plan allows, the
  first ones it added (by creation order) stay writable and the rest are *read-only*: they
  cannot be edited and AI cannot generate for them; everything stays readable and exportable.
  Archiving a writable creator frees its slot for the next one.
- **AI credits** (``check_ai_credits``, in settings.AI_BUDGET_CHECKS): 1 credit = $0.01 of AI
  cost as the gateway's ledger records it. A shared counter per agency and month (Redis or the
  embedded state file, apps.core.shared) is raised to the ledger's month total at most every
  SEED_SECONDS and grows by each call's cost when the gateway settles it. Unless overage is on, a
  call is admitted only if its cost bound (apps.ai.gateway.request_cost_bound: every prompt byte
  a token, the whole ``max_tokens`` answer, the dearest model of its route) fits in what is left
  once the calls in flight are counted: it *holds* that bound (a shared counter per agency and
  hour, the last hour's read too) until the gateway settles it, which counts the real cost and
  gives the hold back (in that order, so an admission reading holds, then the counter, never
  misses a call); a refusal, an error or a cancellation gives it back at once. Concurrent calls
  therefore cannot spend past the credits, and neither can one dear call (as long as a call
  costs no more than its bound; models missing from the price table cost 0). The refusal starts
  "AI credit used up:" and says what the call could cost and what is left. A hold a killed
  process never gave back is forgotten with its bucket, within HOLD_TTL. Cost per call: the bound
  (~25 us) and one more shared-state round trip (the hold's release at settle; the admission
  reads the holds, the counter and its seed mark in one).

- **Read-only agency** (``readonly_reason``, ``require_writable``): a trial past its end, a
  payment past due beyond the grace period (``grace_ends_at``, set by apps/billing/stripe_sync.py
  from Stripe's ``past_due``), or a canceled subscription make the whole agency read-only, computed
  on read from the snapshot's dates (no job has to run for it to start): pages and API refuse
  writes (ReadOnlyError, code ``billing_read_only``, with the way to fix it), the gateway refuses
  AI calls; reading and export go on. Billing itself (paying, the portal), signing in and out and a
  user's own security settings stay writable. Paying (``invoice.paid``) clears it at once.

Not here: Stripe itself (apps/billing/stripe_api.py, stripe_sync.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Sum
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Agency, Creator
from apps.accounts.selectors import invitation_list_pending, member_list
from apps.ai.gateway import request_cost_bound
from apps.ai.models import AIRequestLog
from apps.ai.types import AIError, AIRequest, ErrorKind
from apps.core.errors import ApplicationError
from apps.core.shared import shared_state, uninterruptible

logger = logging.getLogger(__name__)

SNAPSHOT_TTL = 300
LOCAL_MAX = 10_000  # agencies whose snapshot one process keeps (about 1 KB each)
SEED_SECONDS = 300
COUNTER_TTL = 62 * 86400
CENTS_PER_CREDIT = 1  # 1 credit = $0.01 of AI cost
MICRO_PER_CREDIT = 10_000 * CENTS_PER_CREDIT  # micro-dollars
# Holds of calls in flight live in hourly buckets, the current and the last one read: a call lasts
# minutes at most, and a hold a killed process never gave back is forgotten within HOLD_TTL.
HOLD_BUCKET_SECONDS = 3600
HOLD_TTL = 3 * HOLD_BUCKET_SECONDS
LIMITS = ("creators", "seats", "ai_credits")
LIMIT_LABELS = {"creators": "creators", "seats": "seats", "ai_credits": "AI credits this month"}
FEATURE_LABELS = {
    "inbox": "the inbox",
    "campaigns": "campaigns",
    "optimization": "optimization",
    "integrations": "integrations",
}

# Which pages (URL namespaces) and API paths (after /api/v1) belong to each gated feature.
FEATURE_NAMESPACES = {"campaigns": "campaigns", "optimization": "optimization"}
FEATURE_API_PREFIXES = {"/campaigns": "campaigns", "/automations": "campaigns", "/optimization": "optimization"}

_memo: ContextVar[dict[int, Entitlements] | None] = ContextVar("billing_entitlements_memo", default=None)
# agency id -> (entitlements_version, agency created_at, expires at (unix s), snapshot). created_at
# tells apart an agency that got a deleted one's id again (SQLite hands ids out again).
_local: OrderedDict[int, tuple[int, datetime, float, Entitlements]] = OrderedDict()
_local_lock = threading.Lock()


class PlanLimitError(ApplicationError):
    status_code = 403
    code = "plan_limit"


class PlanFeatureError(ApplicationError):
    status_code = 403
    code = "plan_feature"


class ReadOnlyError(ApplicationError):
    """The agency is read-only (trial over, payment past due beyond the grace period, canceled)."""

    status_code = 403
    code = "billing_read_only"


READONLY_MESSAGES = {
    "trial": "Your free trial has ended, so your agency is read-only: you can read and export everything, "
    "but not change anything or generate with AI. Choose a plan on the billing page to continue.",
    "payment": "Your payment is past due and the grace period has ended, so your agency is read-only: you can "
    "read and export everything, but not change anything or generate with AI. Update your payment method "
    "on the billing page; paying restores everything at once.",
    "canceled": "Your subscription is canceled, so your agency is read-only: you can read and export "
    "everything, but not change anything or generate with AI. Choose a plan on the billing page to continue.",
}


def pricing_url() -> str:
    return reverse("billing:pricing")


@dataclass(frozen=True)
class Entitlements:
    """What an agency's subscription allows, as the cache holds it."""

    agency_id: int
    plan_code: str
    plan_name: str
    status: str
    limits: dict[str, int | None]
    features: frozenset[str]
    overage_allowed: bool
    readonly_creator_ids: frozenset[int]
    trial_ends_at: float | None = None  # unix seconds
    grace_ends_at: float | None = None

    def readonly_reason(self, now: datetime | None = None) -> str:
        """Why the whole agency is read-only ("trial", "payment", "canceled"), or "" when it is not."""
        moment = (now or timezone.now()).timestamp()
        if self.status == "trialing" and self.trial_ends_at is not None and self.trial_ends_at <= moment:
            return "trial"
        if self.status == "past_due" and self.grace_ends_at is not None and self.grace_ends_at <= moment:
            return "payment"
        if self.status == "canceled" and self.plan_code:
            return "canceled"
        return ""

    def allows(self, feature: str) -> bool:
        return feature in self.features

    def limit(self, name: str) -> int | None:
        return self.limits.get(name)

    def creator_is_readonly(self, creator_id: int | None) -> bool:
        return creator_id is not None and creator_id in self.readonly_creator_ids

    def as_cached(self) -> dict[str, Any]:
        return {
            "agency_id": self.agency_id,
            "plan_code": self.plan_code,
            "plan_name": self.plan_name,
            "status": self.status,
            "limits": self.limits,
            "features": sorted(self.features),
            "overage_allowed": self.overage_allowed,
            "readonly_creator_ids": sorted(self.readonly_creator_ids),
            "trial_ends_at": self.trial_ends_at,
            "grace_ends_at": self.grace_ends_at,
        }

    @classmethod
    def from_cached(cls, data: dict[str, Any]) -> Entitlements:
        return cls(
            agency_id=data["agency_id"],
            plan_code=data["plan_code"],
            plan_name=data["plan_name"],
            status=data["status"],
            limits=data["limits"],
            features=frozenset(data["features"]),
            overage_allowed=data["overage_allowed"],
            readonly_creator_ids=frozenset(data["readonly_creator_ids"]),
            trial_ends_at=data.get("trial_ends_at"),
            grace_ends_at=data.get("grace_ends_at"),
        )


UNRESTRICTED_LIMITS: dict[str, int | None] = dict.fromkeys(LIMITS)


def _cache_key(agency_id: int) -> str:
    return f"billing:entitlements:{agency_id}"


def _load(agency_id: int) -> tuple[Entitlements, int]:
    """From the database: the subscription's plan, or the trial plan for an agency that has no
    subscription row (it gets one when created; this covers rows made outside the services).
    With no plan at all in the database (the catalogue deleted), nothing is restricted.

    Also answers the agency's entitlements_version, read in the same statement as the
    subscription (or before the rest), so the snapshot is at least as new as that version."""
    from apps.billing.models import Plan, Subscription

    subscription = Subscription.objects.select_related("plan", "agency").filter(agency_id=agency_id).first()
    trial_ends_at = grace_ends_at = None
    if subscription is not None:
        version = subscription.agency.entitlements_version
        plan, status, overage = subscription.plan, subscription.status, subscription.overage_allowed
        trial_ends_at = subscription.trial_ends_at.timestamp() if subscription.trial_ends_at else None
        grace_ends_at = subscription.grace_ends_at.timestamp() if subscription.grace_ends_at else None
    else:
        version = Agency.objects.filter(pk=agency_id).values_list("entitlements_version", flat=True).first() or 0
        plan = Plan.objects.filter(code=settings.BILLING_TRIAL_PLAN).first()
        status, overage = Subscription.Status.TRIALING, False
    if plan is None:
        return Entitlements(agency_id, "", "No plan", status, dict(UNRESTRICTED_LIMITS), frozenset(
            FEATURE_LABELS), True, frozenset()), version  # fmt: skip
    readonly: list[int] = []
    if plan.max_creators is not None:
        active = Creator.objects.for_agency(agency_id).filter(is_archived=False).order_by("created_at", "id")
        readonly = list(active.values_list("id", flat=True)[plan.max_creators :])
    found = Entitlements(
        agency_id=agency_id,
        plan_code=plan.code,
        plan_name=plan.name,
        status=status,
        limits={"creators": plan.max_creators, "seats": plan.max_seats, "ai_credits": plan.ai_credits_monthly},
        features=frozenset(feature for feature in FEATURE_LABELS if plan.has_feature(feature)),
        overage_allowed=overage,
        readonly_creator_ids=frozenset(readonly),
        trial_ends_at=trial_ends_at,
        grace_ends_at=grace_ends_at,
    )
    return found, version


def _shared_get(agency_id: int, min_version: int | None = None) -> tuple[Entitlements, int, float]:
    """The snapshot from the shared cache, or from the database (and then into the cache): the
    snapshot, the version it was read at, and when it was read from the database (unix seconds).
    With ``min_version``, a cached entry read at an older version is read again."""
    data = cache.get(_cache_key(agency_id))
    if data is not None and (min_version is None or data.get("version", -1) >= min_version):
        return Entitlements.from_cached(data), data.get("version", -1), data.get("loaded_at", time.time())
    loaded_at = time.time()
    found, version = _load(agency_id)
    cache.set(_cache_key(agency_id), {**found.as_cached(), "version": version, "loaded_at": loaded_at}, SNAPSHOT_TTL)
    return found, version, loaded_at


def entitlements_for(agency_id: int) -> Entitlements:
    """The agency's entitlements: this request's memo, else the cache, else the database."""
    memo = _memo.get()
    if memo is not None and agency_id in memo:
        return memo[agency_id]
    found = _shared_get(agency_id)[0]
    if memo is not None:
        memo[agency_id] = found
    return found


def snapshot_prime(agency: Agency) -> Entitlements:
    """The entitlements of ``agency`` (a row the request already read) for this request's memo:
    from this process's copy when it was read at the agency's entitlements_version and has not
    expired, else as entitlements_for (shared cache, database) and kept for the next request."""
    memo = _memo.get()
    if memo is not None and agency.pk in memo:
        return memo[agency.pk]
    version, created_at = agency.entitlements_version, agency.created_at
    with _local_lock:
        held = _local.get(agency.pk)
        if held is not None and held[0] == version and held[1] == created_at and held[2] > time.time():
            _local.move_to_end(agency.pk)
            found = held[3]
        else:
            held = None
    if held is None:
        found, read_version, loaded_at = _shared_get(agency.pk, min_version=version)
        if read_version == version:  # a newer one is kept once this row says so
            with _local_lock:
                _local[agency.pk] = (version, created_at, loaded_at + SNAPSHOT_TTL, found)
                _local.move_to_end(agency.pk)
                while len(_local) > LOCAL_MAX:
                    _local.popitem(last=False)
    if memo is not None:
        memo[agency.pk] = found
    return found


def memo_open() -> object:
    """Start a per-request memo; pass what this answers to ``memo_close``."""
    return _memo.set({})


def memo_close(token: Any) -> None:
    _memo.reset(token)


def invalidate(agency_id: int) -> None:
    """Drop the agency's snapshot from the shared cache, this request's memo and this process's
    copy (other processes drop theirs when they see the version raised)."""
    cache.delete(_cache_key(agency_id))
    memo = _memo.get()
    if memo is not None:
        memo.pop(agency_id, None)
    with _local_lock:
        _local.pop(agency_id, None)


def version_bump(*agency_ids: int) -> None:
    """Raise the agencies' entitlements_version (one UPDATE), then drop their snapshots: every
    process reads the new rows on its next request for them."""
    ids = sorted(set(agency_ids))
    Agency.objects.filter(pk__in=ids).update(entitlements_version=F("entitlements_version") + 1)
    for agency_id in ids:
        invalidate(agency_id)


def invalidate_on_commit(*agency_ids: int) -> None:
    """Drop the agencies' snapshots now, and once the change is committed raise their version and
    drop them again (a request that read the old rows meanwhile cannot leave them cached past the
    commit). The version is raised after the commit, not inside the writer's transaction, so the
    agency row is never held locked by it; a rolled-back change raises nothing."""
    ids = sorted(set(agency_ids))
    for agency_id in ids:
        invalidate(agency_id)
    transaction.on_commit(lambda: version_bump(*ids))


def local_forget() -> None:
    """Empty this process's copy (tests; the shared cache is emptied on its own)."""
    with _local_lock:
        _local.clear()


# --- Usage -------------------------------------------------------------------------------------


def month_start(moment: datetime | None = None) -> date:
    moment = moment or timezone.now()
    return moment.astimezone(UTC).date().replace(day=1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, datetime(following.year, following.month, 1, tzinfo=UTC)


def usd_to_credits(usd: Decimal) -> int:
    """Whole credits, rounded up: a call that cost $0.001 uses one credit."""
    return int((Decimal(usd) * 100 / CENTS_PER_CREDIT).to_integral_value(rounding=ROUND_CEILING))


def _micro(usd: Decimal) -> int:
    return int((Decimal(usd) * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


def _counter_key(agency_id: int, month: date) -> str:
    return f"billing:credits:{agency_id}:{month:%Y-%m}"


def _seeded_key(agency_id: int, month: date) -> str:
    """A counter (1 for SEED_SECONDS after the month's counter was raised to the ledger), so the
    gateway reads it with the counter in one round trip."""
    return f"billing:credits-seed:{agency_id}:{month:%Y-%m}"


def _held_key(agency_id: int, bucket: int) -> str:
    """The cost bounds held by the agency's calls in flight admitted in hour ``bucket``."""
    return f"billing:credits-held:{agency_id}:{bucket}"


def ledger_usd(agency_id: int, month: date) -> Decimal:
    start, end = month_bounds(month)
    total = AIRequestLog.objects.filter(agency_id=agency_id, created_at__gte=start, created_at__lt=end).aggregate(
        total=Sum("cost_usd")
    )["total"]
    return Decimal(total or 0)


def credits_used_micro(agency_id: int, month: date | None = None) -> int:
    """The month's AI spend in micro-dollars: the shared counter, raised to the ledger's total
    when it has not been compared with it for SEED_SECONDS (the ledger is written in batches, so
    the counter is usually ahead of it)."""
    month = month or month_start()
    state = shared_state()
    seeded = _seeded_key(agency_id, month)
    if not state.get_counts_sync([seeded])[seeded]:
        state.raise_to_sync(_counter_key(agency_id, month), COUNTER_TTL, _micro(ledger_usd(agency_id, month)))
        state.raise_to_sync(seeded, SEED_SECONDS, 1)
    return state.incr_sync(_counter_key(agency_id, month), COUNTER_TTL, 0)


def credits_used(agency_id: int, month: date | None = None) -> int:
    return usd_to_credits(Decimal(credits_used_micro(agency_id, month)) / 1_000_000)


def usage(agency_id: int, name: str) -> int:
    """How much of limit ``name`` the agency uses now."""
    if name == "creators":
        return Creator.objects.for_agency(agency_id).filter(is_archived=False).count()
    if name == "seats":
        return member_list(agency_id=agency_id).count() + invitation_list_pending(agency_id=agency_id).count()
    if name == "ai_credits":
        return credits_used(agency_id)
    raise ValueError(f"unknown limit {name!r}")


# --- Checks ------------------------------------------------------------------------------------


def _upgrade(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"upgrade_url": pricing_url(), **(extra or {})}


def require_room(agency_id: int, name: str, *, adding: int = 1) -> None:
    """Raise PlanLimitError when adding ``adding`` more of ``name`` would pass the plan's limit."""
    found = entitlements_for(agency_id)
    limit = found.limit(name)
    if limit is None:
        return
    used = usage(agency_id, name)
    if used + adding > limit:
        raise PlanLimitError(
            f"Your {found.plan_name} plan includes {limit} {LIMIT_LABELS[name]} and you use {used}. "
            "Upgrade your plan to add more.",
            extra=_upgrade({"limit": name, "allowed": limit, "used": used}),
        )


def require_feature(agency_id: int, feature: str) -> None:
    found = entitlements_for(agency_id)
    if not found.allows(feature):
        raise PlanFeatureError(
            f"{FEATURE_LABELS[feature].capitalize()} is not in your {found.plan_name} plan. "
            "Upgrade your plan to use it.",
            extra=_upgrade({"feature": feature}),
        )


def require_creator_writable(agency_id: int, creator_id: int) -> None:
    found = entitlements_for(agency_id)
    if found.creator_is_readonly(creator_id):
        raise PlanLimitError(
            f"This creator is read-only: your {found.plan_name} plan includes {found.limit('creators')} creators. "
            "Upgrade your plan, or archive another creator to free its place.",
            extra=_upgrade({"limit": "creators", "creator_id": creator_id}),
        )


def billing_url() -> str:
    return reverse("billing:overview")


def require_writable(agency_id: int) -> None:
    """Raise ReadOnlyError when the agency is read-only (trial over, unpaid past the grace period,
    canceled)."""
    reason = entitlements_for(agency_id).readonly_reason()
    if reason:
        raise ReadOnlyError(READONLY_MESSAGES[reason], extra={"upgrade_url": billing_url(), "reason": reason})


def agency_readonly_reason(agency_id: int, now: datetime | None = None) -> str:
    """settings.ENTITLEMENTS's answer to apps.core.registry.entitlement_readonly_reason: why the
    agency is read-only, or ""."""
    return entitlements_for(agency_id).readonly_reason(now)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# API paths (after /api/v1) that stay writable on a read-only agency: paying is how it ends.
READONLY_EXEMPT_API_PREFIXES = ("/billing",)


def require(
    agency_id: int, *, limit: str | None = None, adding: int = 1, feature: str | None = None,
    creator_id: int | None = None,
) -> None:  # fmt: skip
    """settings.ENTITLEMENTS's entry point (apps.core.registry.entitlement_require)."""
    if feature is not None:
        require_feature(agency_id, feature)
    if creator_id is not None:
        require_creator_writable(agency_id, creator_id)
    if limit is not None:
        require_room(agency_id, limit, adding=adding)


def request_feature(request) -> str | None:
    """The gated feature a request is for, from its URL namespace or API path; None for the rest."""
    api_root = "/api/v1"
    if request.path.startswith(api_root + "/"):
        rest = request.path[len(api_root) :]
        for prefix, feature in FEATURE_API_PREFIXES.items():
            if rest == prefix or rest.startswith(prefix + "/"):
                return feature
        return None
    match = getattr(request, "resolver_match", None)
    return FEATURE_NAMESPACES.get(match.namespace) if match is not None else None


def request_gate(request, agency_id: int) -> None:
    """settings.ENTITLEMENTS's page and API gate (apps.core.registry.entitlement_request_gate): the
    plan's features, and no writes while the agency is read-only (billing's own operations excepted)."""
    feature = request_feature(request)
    if feature is not None:
        require_feature(agency_id, feature)
    if request.method not in SAFE_METHODS:
        rest = request.path[len("/api/v1") :] if request.path.startswith("/api/v1/") else request.path
        if not any(rest == prefix or rest.startswith(prefix + "/") for prefix in READONLY_EXEMPT_API_PREFIXES):
            require_writable(agency_id)


# --- The gateway check -----------------------------------------------------------------------


def _credits_refusal(
    found: Entitlements, used: int, month: date, *, bound: int | None = None, others_hold: bool = False
) -> AIError:
    """The month's credits are used up, or (``bound``: the call's cost bound in credits) what is
    left of them cannot hold this call."""
    _, end = month_bounds(month)
    seconds = max(1.0, (end - timezone.now()).total_seconds())
    limit = found.limit("ai_credits")
    if bound is None:
        said = f"your {found.plan_name} plan's {limit:,} AI credits for {month:%B} are used up ({used:,} used). Upgrade"
    else:
        said = (
            f"this request could cost up to {bound:,} credit{'s' if bound != 1 else ''} and your {found.plan_name} "
            f"plan has {max(0, limit - used):,} of its {limit:,} AI credits for {month:%B} left"
            + (", part of them held by AI requests still running" if others_hold else "")
            + ". Ask for a shorter answer, or upgrade"
        )
    return AIError(
        ErrorKind.RATE_LIMIT,
        f"AI credit used up: {said} your plan on the pricing page ({pricing_url()}); credits start again on "
        f"1 {end:%B}.",
        retryable=False,
        retry_after=seconds,
        provider="billing",
    )


def _readonly_refusal(found: Entitlements) -> AIError:
    return AIError(
        ErrorKind.INVALID_REQUEST,
        f"This creator is read-only: your {found.plan_name} plan includes {found.limit('creators')} creators. "
        f"Upgrade your plan ({pricing_url()}) or archive another creator to generate for this one.",
        retryable=False,
        provider="billing",
    )


def _agency_readonly_refusal(reason: str) -> AIError:
    return AIError(
        ErrorKind.INVALID_REQUEST,
        f"{READONLY_MESSAGES[reason]} ({billing_url()})",
        retryable=False,
        provider="billing",
    )


async def _entitlements_async(agency_id: int) -> Entitlements:
    """entitlements_for for async callers (the gateway asks on every AI call): the cached snapshot
    (every call but the first after a change) through ``cache.aget``, which Django runs in
    asgiref's thread, else the database."""
    data = await cache.aget(_cache_key(agency_id))
    if data is not None:
        return Entitlements.from_cached(data)
    return await sync_to_async(entitlements_for)(agency_id)


class _Settle:
    """One call's part in the agency's month: what it holds of the credits while it runs, and the
    gateway's settle, which counts its cost on the month's counter and gives the hold back, once."""

    def __init__(self, agency_id: int, month: date) -> None:
        self.agency_id = agency_id
        self.month = month
        self.bucket = int(time.time() // HOLD_BUCKET_SECONDS)
        self.held = 0
        self.done = False

    async def hold(self, amount: int) -> int:
        """Hold ``amount`` micro-dollars in this hour's bucket, noted here in the same step (run
        it uninterrupted, so a cancelled call never leaves a hold nobody gives back). Answers the
        bucket's total."""
        total = await shared_state().incr(_held_key(self.agency_id, self.bucket), HOLD_TTL, amount)
        self.held += amount
        return total

    async def release(self) -> None:
        if self.held:
            amount, self.held = self.held, 0
            await shared_state().incr(_held_key(self.agency_id, self.bucket), HOLD_TTL, -amount)

    async def __call__(self, cost: Decimal) -> None:
        if self.done:
            return
        self.done = True
        try:
            if cost and cost > 0:
                await shared_state().incr(_counter_key(self.agency_id, self.month), COUNTER_TTL, _micro(cost))
        finally:
            # After the cost is counted: an admission reading holds, then the counter, never
            # misses this call.
            await self.release()


async def _admit(settle: _Settle, found: Entitlements, request: AIRequest, limit: int) -> None:
    """Hold the call's cost bound against the month's credits, or give it back and raise the
    refusal: the credits are used up, or the spend, the holds of the calls in flight and this
    bound would pass them. Whatever goes wrong after the hold was taken gives it back."""
    state = shared_state()
    agency_id, month = settle.agency_id, settle.month
    bound = _micro(await request_cost_bound(request))
    counter, seeded = _counter_key(agency_id, month), _seeded_key(agency_id, month)
    before = _held_key(agency_id, settle.bucket - 1)  # the last hour's holds
    try:
        # Hold first, then read the spend: a settle counts its cost before it gives its hold back.
        held = await uninterruptible(settle.hold(bound))
        counts = await state.get_counts([before, counter, seeded])
        held += max(0, counts[before])
        spent = counts[counter] if counts[seeded] else await sync_to_async(credits_used_micro)(agency_id, month)
        used = usd_to_credits(Decimal(spent) / 1_000_000)
        if used >= limit:
            raise _credits_refusal(found, used, month)
        if bound and spent + held > limit * MICRO_PER_CREDIT:
            bound_credits = usd_to_credits(Decimal(bound) / 1_000_000)
            raise _credits_refusal(found, used, month, bound=bound_credits, others_hold=held > bound)
    except BaseException:
        await uninterruptible(settle.release())
        raise


async def check_ai_credits(request: AIRequest) -> _Settle | None:
    """settings.AI_BUDGET_CHECKS entry: refuse a call for a read-only creator, or one the plan's
    monthly credits cannot hold (unless overage is on); count every call's cost."""
    if request.agency_id is None:
        return None
    found = await _entitlements_async(request.agency_id)
    reason = found.readonly_reason()
    if reason:
        raise _agency_readonly_refusal(reason)
    if found.creator_is_readonly(request.creator_id):
        raise _readonly_refusal(found)
    settle = _Settle(request.agency_id, month_start())
    limit = found.limit("ai_credits")
    if limit is not None and not found.overage_allowed:
        await _admit(settle, found, request, limit)
    return settle
