"""The AI cost pages: the cost dashboard and the budget forms, under /monitoring/cost/.

Owners and managers only (the ``edit`` permission): spend, budgets and revenue are the agency's
business figures. Chatters and viewers get 403 (the page exists, their role does not reach it);
another agency's budget is 404 like a missing one. The month selector takes ``?month=YYYY-MM``;
a malformed or future month answers 400 with the reason on the page.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from decimal import Decimal

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.decorators import member_required
from apps.accounts.permissions import Perm
from apps.core.errors import ApplicationError, form_add_error
from apps.monitoring import budgets as budget_services
from apps.monitoring import cost
from apps.monitoring.cost_charts import daily_bars, forecast_band, gauge
from apps.monitoring.cost_forms import BudgetForm

MONTHS_IN_SELECTOR = 12


def _months(today: date) -> list[date]:
    """The months the selector offers: this one and the eleven before it."""
    months, month = [], today.replace(day=1)
    for _ in range(MONTHS_IN_SELECTOR):
        months.append(month)
        month = (month - timedelta(days=1)).replace(day=1)
    return months


def _gauges(page: cost.CostPage, budgets: list) -> list[dict]:
    """Each budget's progress for the page's month (cost.budgets_progress), with its gauge."""
    gauges = cost.budgets_progress(report=page.report, budgets=budgets, current=page.current)
    for progress in gauges:
        progress["gauge"] = gauge(progress)
    return gauges


@member_required(Perm.EDIT)
def cost_dashboard(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    now = timezone.now()
    today = now.astimezone(UTC).date()
    context = {"months": _months(today), "month_value": request.GET.get("month", "")}
    try:
        month = cost.parse_month(request.GET.get("month"), today=today)
    except cost.MonthError as error:
        context["month_error"] = str(error)
        return render(request, "monitoring/cost/dashboard.html", context, status=400)
    page = cost.cost_page(membership=membership, month=month, now=now)
    budgets = list(budget_services.budget_list(membership=membership))
    gauges = _gauges(page, budgets)
    agency_budget = next((g["limit"] for g in gauges if g["budget"].creator_id is None), None)
    context.update(
        page=page,
        month=month,
        month_value=f"{month:%Y-%m}",
        gauges=gauges,
        bars=daily_bars(page.report),
        band=forecast_band(page.report, page.forecast, agency_budget),
        advice_total=sum((item.monthly_saving for item in page.advice), Decimal(0)),
        top_features=page.report.features[:8],
        top_creators=page.report.creators[:8],
        days=[
            (day, [page.report.by_day_provider.get(day, {}).get(share.key) for share in page.report.providers], total)
            for day in page.report.days
            if (total := page.report.by_day.get(day))
        ],
    )
    template = "monitoring/cost/dashboard.html#cost-content" if request.htmx else "monitoring/cost/dashboard.html"
    response = render(request, template, context)
    response["Vary"] = "HX-Request"
    return response


def _save(request: HttpRequest, form: BudgetForm, budget=None) -> HttpResponse | None:
    membership = request.tenant.membership
    data = form.cleaned_data
    try:
        if budget is None:
            budget = budget_services.budget_create(
                membership=membership, creator=data["creator"], monthly_usd=data["monthly_usd"],
                thresholds=data["thresholds"], hard_stop=data["hard_stop"],
            )  # fmt: skip
        else:
            budget_services.budget_update(
                membership=membership, budget=budget, creator=data["creator"], monthly_usd=data["monthly_usd"],
                thresholds=data["thresholds"], hard_stop=data["hard_stop"],
            )  # fmt: skip
    except ApplicationError as error:
        form_add_error(form, error)
        return None
    messages.success(request, f"Budget saved: ${budget.monthly_usd} a month for {budget.creator or 'the agency'}.")
    return redirect("monitoring:cost")


@member_required(Perm.EDIT)
def budget_create(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    form = BudgetForm(request.POST or None, membership=membership)
    if request.method == "POST" and form.is_valid() and (response := _save(request, form)) is not None:
        return response
    status = 400 if request.method == "POST" else 200  # a refused form, as every form page answers
    return render(request, "monitoring/cost/budget_form.html", {"form": form, "budget": None}, status=status)


@member_required(Perm.EDIT)
def budget_edit(request: HttpRequest, budget_id: int) -> HttpResponse:
    membership = request.tenant.membership
    budget = budget_services.budget_get_for_member(membership=membership, budget_id=budget_id)
    form = BudgetForm(request.POST or None, membership=membership, initial=BudgetForm.initial_for(budget))
    if request.method == "POST" and form.is_valid() and (response := _save(request, form, budget)) is not None:
        return response
    status = 400 if request.method == "POST" else 200
    return render(request, "monitoring/cost/budget_form.html", {"form": form, "budget": budget}, status=status)


@member_required(Perm.EDIT)
@require_POST
def budget_delete(request: HttpRequest, budget_id: int) -> HttpResponse:
    membership = request.tenant.membership
    budget = budget_services.budget_get_for_member(membership=membership, budget_id=budget_id)
    label = str(budget.creator or "the agency")
    budget_services.budget_delete(membership=membership, budget=budget)
    messages.success(request, f"The budget for {label} was removed: its AI calls are no longer limited.")
    return redirect("monitoring:cost")
