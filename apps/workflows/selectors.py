"""Reads of workflow runs, scoped to the member's agency: another agency's run or step run is a
404, the same as a missing one."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.workflows.models import StepRun, WorkflowAction, WorkflowRun


def run_list(*, membership: Membership, state: str = "", workflow: str = "") -> QuerySet[WorkflowRun]:
    runs = WorkflowRun.objects.for_agency(membership.agency_id).select_related("created_by")
    if state:
        runs = runs.filter(state=state)
    if workflow:
        runs = runs.filter(workflow=workflow)
    return runs.order_by("-created_at", "-id")


def run_get_for_member(*, membership: Membership, run_id: int) -> WorkflowRun:
    run = WorkflowRun.objects.for_agency(membership.agency_id).select_related("created_by").filter(pk=run_id).first()
    if run is None:
        raise Http404("No such workflow run.")
    return run


def step_run_list(*, run: WorkflowRun) -> list[StepRun]:
    return list(StepRun.objects.for_agency(run.agency_id).filter(run=run).order_by("step", "index"))


def step_run_get_for_member(*, membership: Membership, step_run_id: int) -> StepRun:
    row = StepRun.objects.for_agency(membership.agency_id).select_related("run").filter(pk=step_run_id).first()
    if row is None:
        raise Http404("No such step run.")
    return row


def action_list(*, run: WorkflowRun) -> list[WorkflowAction]:
    return list(WorkflowAction.objects.for_agency(run.agency_id).filter(run=run).select_related("actor", "step_run"))
