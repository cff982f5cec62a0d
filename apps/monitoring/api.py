"""API: AI cost, budgets and budget alerts (mounted at /api/v1/ by huntaze/api.py);
docs/api-monitoring.md.

What the AI cost page (/monitoring/cost/) shows and does, for integrators: a month's spend with
its forecast (``cost.month_spend``, as the page computes it), the budgets with this month's spend
against each (``cost.budgets_progress``, the page's gauges), their edits through the services of
apps/monitoring/budgets.py, and the agency's budget alerts. Each operation parses, authorises and
calls those; nothing is computed here.

Owners and managers only, like the page (the ``edit`` permission): a chatter or a viewer gets 403.
Reads take any token scope (``require_role_read``); writes need a ``write`` token. Another
agency's budget, or a creator that is not the agency's, answers 404.
"""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where names such as AlertStateName would not be found.
from datetime import UTC

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member
from apps.core.errors import ApplicationError, fields_renamed
from apps.core.openapi import Id
from apps.messaging.api.common import PageHookPagination, require_role_read
from apps.monitoring import budgets as budget_services
from apps.monitoring import cost
from apps.monitoring.models import Budget
from apps.monitoring.schemas import (
    AlertOut,
    AlertStateName,
    BudgetIn,
    BudgetOut,
    BudgetPatchIn,
    CostReportOut,
)

router = Router(tags=["ai cost"])
API_FIELDS = {"creator": "creator_id"}  # the services' field names → the API's

MONTH = (
    "The month, YYYY-MM (UTC); omitted: the current one. A malformed month, one before 2000 or one that has "
    "not started is a 400 naming the field."
)


def _creator(membership: Membership, creator_id: int | None) -> Creator | None:
    return None if creator_id is None else creator_get_for_member(membership=membership, creator_id=creator_id)


def _with_progress(request: HttpRequest, budgets: list[Budget]) -> None:
    """This month's spend and progress of each budget, for a whole page at once."""
    membership = api_membership(request)
    now = timezone.now()
    spend = cost.month_spend(membership=membership, month=budget_services.month_start(now), now=now)
    month = budget_services.month_label(spend.month)
    for budget, progress in zip(
        budgets, cost.budgets_progress(report=spend.report, budgets=budgets, current=spend.current), strict=True
    ):
        budget.progress = {**progress, "month": month}


def _answer(request: HttpRequest, budget: Budget) -> Budget:
    _with_progress(request, [budget])
    return budget


# --- Spend --------------------------------------------------------------------------------------


@router.get("/ai-cost", response=CostReportOut)
def ai_cost(request: HttpRequest, month: str | None = Query(None, description=MONTH, examples=["2026-05"])):
    """The month's AI spend, as the cost page shows it: the total, per day (and per provider within
    each day), per provider, model, feature and creator, and for the current month the month-end
    forecast with its band."""
    membership = api_membership(request)
    require_role_read(membership, Perm.EDIT)
    now = timezone.now()
    try:
        chosen = cost.parse_month(month, today=now.astimezone(UTC).date())
    except cost.MonthError as error:
        raise ApplicationError(str(error), field="month") from None
    return CostReportOut.from_spend(cost.month_spend(membership=membership, month=chosen, now=now))


# --- Budgets ------------------------------------------------------------------------------------


@router.get("/ai-budgets", response=list[BudgetOut])
@paginate(PageHookPagination, complete=_with_progress, page_size=25)
def ai_budget_list(request: HttpRequest):
    """The agency's budgets, agency-wide first, then by creator name, each with this month's spend
    against it (computed for the whole page at once, in a fixed number of queries)."""
    membership = api_membership(request)
    require_role_read(membership, Perm.EDIT)
    return budget_services.budget_list(membership=membership)


@router.post("/ai-budgets", response={201: BudgetOut})
def ai_budget_create(request: HttpRequest, payload: BudgetIn):
    """A monthly limit for the whole agency (``creator_id`` null) or one creator: one of each at
    most (a second is a 400 on ``creator_id``)."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    creator = _creator(membership, payload.creator_id)
    with fields_renamed(API_FIELDS):
        budget = budget_services.budget_create(
            membership=membership,
            creator=creator,
            monthly_usd=payload.monthly_usd,
            thresholds=payload.thresholds,
            hard_stop=payload.hard_stop,
        )
    return Status(201, _answer(request, budget))


@router.get("/ai-budgets/{budget_id}", response=BudgetOut)
def ai_budget_detail(request: HttpRequest, budget_id: Id):
    membership = api_membership(request)
    require_role_read(membership, Perm.EDIT)
    budget = budget_services.budget_get_for_member(membership=membership, budget_id=budget_id)
    return _answer(request, budget)


@router.patch("/ai-budgets/{budget_id}", response=BudgetOut)
def ai_budget_update(request: HttpRequest, budget_id: Id, payload: BudgetPatchIn):
    """Change a budget. Omitted fields keep their value, as does null, except ``creator_id``: null
    makes it agency-wide. A new scope counts that scope's spend from the ledger."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    budget = budget_services.budget_get_for_member(membership=membership, budget_id=budget_id)
    changes = payload.model_dump(exclude_unset=True)
    values = {
        "creator": _creator(membership, changes["creator_id"]) if "creator_id" in changes else budget.creator,
        "monthly_usd": budget.monthly_usd,
        "thresholds": budget.thresholds,
        "hard_stop": budget.hard_stop,
    }
    for name in ("monthly_usd", "thresholds", "hard_stop"):
        if changes.get(name) is not None:
            values[name] = changes[name]
    with fields_renamed(API_FIELDS):
        budget = budget_services.budget_update(membership=membership, budget=budget, **values)
    return _answer(request, budget)


@router.delete("/ai-budgets/{budget_id}", response={204: None})
def ai_budget_delete(request: HttpRequest, budget_id: Id):
    """Remove a budget: its scope's AI calls are no longer limited. Its alerts go with it."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    budget = budget_services.budget_get_for_member(membership=membership, budget_id=budget_id)
    budget_services.budget_delete(membership=membership, budget=budget)
    return Status(204, None)


# --- Alerts -------------------------------------------------------------------------------------


@router.get("/ai-alerts", response=list[AlertOut])
@paginate(page_size=25)
def ai_alert_list(request: HttpRequest, state: AlertStateName | None = None):
    """The agency's budget alerts, newest first: a threshold reached in a month fires once; it
    resolves when the limit is raised above the spend or the month ends."""
    membership = api_membership(request)
    require_role_read(membership, Perm.EDIT)
    return budget_services.budget_alert_list(membership=membership, state=state)
