"""Workflow pages: the run list (filters, pages, empty state), a run with its DAG drawn and live
progress (the page's websocket, consumers.py, swaps in the run's fragment whenever a
``workflow.run_changed`` event arrives; no timer poll; a "Refresh" link reloads it by hand), the
start form, and the retry, skip and cancel actions (owners and managers).

Another agency's run or step answers 404. The run page runs a fixed number of queries whatever the
number of steps or fan-out items.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from apps.accounts.decorators import member_required
from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, has_perm
from apps.core.errors import ApplicationError, form_add_error
from apps.workflows import definitions, selectors, services
from apps.workflows.forms import RunFilterForm, StartForm
from apps.workflows.models import StepState, WorkflowRun

PAGE_SIZE = 25
ACTIONABLE = (StepState.FAILED, StepState.NEEDS_ATTENTION, StepState.CANCELLED)


@member_required()
@vary_on_headers("HX-Request")
def run_list(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    form = RunFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    runs = selectors.run_list(
        membership=membership, state=filters.get("state", ""), workflow=filters.get("workflow", "")
    )
    page = Paginator(runs, PAGE_SIZE).get_page(request.GET.get("page"))
    labels = {workflow.name: workflow.label for workflow in definitions.all_workflows()}
    for run in page.object_list:
        run.label = labels.get(run.workflow, run.workflow)
    query = urlencode({key: value for key, value in filters.items() if value})
    return render(request, "workflows/runs.html", {
        "form": form, "page": page, "query": query, "can_edit": has_perm(membership, Perm.EDIT),
    })  # fmt: skip


def _graph(run: WorkflowRun, rows: list) -> list[list[dict[str, Any]]]:
    """The DAG as columns of steps (a step one column right of its deepest dependency), each with
    its step runs (several for a fan-out)."""
    workflow = definitions.get(run.workflow)
    by_step: dict[str, list] = {}
    for row in rows:
        by_step.setdefault(row.step, []).append(row)
    if workflow is None:
        return [[{"name": name, "label": name, "depends_on": [], "rows": items} for name, items in by_step.items()]]
    return [[_node(step, by_step) for step in column] for column in workflow.levels()]


STATE_PRECEDENCE = (  # a step with several runs (fan-out) shows the first of these any of them is in
    StepState.FAILED, StepState.NEEDS_ATTENTION, StepState.RUNNING, StepState.QUEUED, StepState.CANCELLED,
    StepState.PENDING, StepState.SUCCEEDED, StepState.SKIPPED,
)  # fmt: skip


def _step_state(rows: list) -> str:
    states = {row.state for row in rows}
    return next((state.value for state in STATE_PRECEDENCE if state in states), StepState.PENDING.value)


def _node(step, by_step: dict[str, list]) -> dict[str, Any]:
    rows = by_step.get(step.name, [])
    return {
        "state": _step_state(rows),
        "name": step.name,
        "label": step.label,
        "depends_on": list(step.depends_on),
        "fan_out": step.fan_out is not None,
        "idempotent": step.idempotent,
        "queue": step.queue,
        "rows": sorted(rows, key=lambda row: row.index),
    }


def run_context(*, membership: Membership, run: WorkflowRun) -> dict[str, Any]:
    """What the run page and its live fragment (consumers.py) draw, in a fixed number of queries."""
    rows = selectors.step_run_list(run=run)
    workflow = definitions.get(run.workflow)
    return {
        "run": run, "label": workflow.label if workflow else run.workflow, "columns": _graph(run, rows),
        "actions": selectors.action_list(run=run), "can_edit": has_perm(membership, Perm.EDIT),
        "actionable": ACTIONABLE, "skippable": (*ACTIONABLE, StepState.PENDING),
    }  # fmt: skip


@member_required()
@vary_on_headers("HX-Request")
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    membership = request.tenant.membership
    run = selectors.run_get_for_member(membership=membership, run_id=run_id)
    context = run_context(membership=membership, run=run)
    template = "workflows/run.html#run-body" if request.htmx else "workflows/run.html"
    return render(request, template, context)


@member_required(Perm.EDIT)
def run_start(request: HttpRequest) -> HttpResponse:
    membership = request.tenant.membership
    creators = request.tenant.creators
    form = StartForm(request.POST or None, creators=creators, initial={"workflow": request.GET.get("workflow", "")})
    if request.method == "POST" and form.is_valid():
        try:
            run = services.run_start(
                membership=membership, workflow=form.cleaned_data["workflow"], data=form.input_data(),
                request_key=form.cleaned_data["request_key"],
            )  # fmt: skip
        except ApplicationError as error:
            form_add_error(form, error)
        else:
            messages.success(request, "Workflow started.")
            return redirect("workflows:run", run_id=run.pk)
    workflows = [workflow for workflow in definitions.all_workflows() if not workflow.name.startswith("test_")]
    status = 400 if request.method == "POST" else 200
    return render(request, "workflows/start.html", {"form": form, "workflows": workflows}, status=status)


def _act(request: HttpRequest, run_id: int, action, success: str) -> HttpResponse:
    try:
        action()
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, success)
    return redirect("workflows:run", run_id=run_id)


@member_required(Perm.EDIT)
@require_POST
def run_cancel(request: HttpRequest, run_id: int) -> HttpResponse:
    membership = request.tenant.membership
    run = selectors.run_get_for_member(membership=membership, run_id=run_id)
    return _act(request, run.pk, lambda: services.run_cancel(membership=membership, run=run), "Run cancelled.")


@member_required(Perm.EDIT)
@require_POST
def step_retry(request: HttpRequest, step_run_id: int) -> HttpResponse:
    membership = request.tenant.membership
    row = selectors.step_run_get_for_member(membership=membership, step_run_id=step_run_id)
    return _act(request, row.run_id, lambda: services.step_retry(membership=membership, step_run=row),
                f"Step {row.step} queued again.")  # fmt: skip


@member_required(Perm.EDIT)
@require_POST
def step_skip(request: HttpRequest, step_run_id: int) -> HttpResponse:
    membership = request.tenant.membership
    row = selectors.step_run_get_for_member(membership=membership, step_run_id=step_run_id)
    return _act(request, row.run_id, lambda: services.step_skip(membership=membership, step_run=row),
                f"Step {row.step} skipped.")  # fmt: skip
