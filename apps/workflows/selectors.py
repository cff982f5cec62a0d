"""Reads of workflow runs, scoped to the member's agency and to what the member may read
(``_readable_runs``): another agency's run, or one the member may not read, is a 404, the same
as a missing one."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, has_perm, sees_all_creators
from apps.accounts.selectors import creator_list
from apps.workflows import definitions
from apps.workflows.models import StepRun, WorkflowAction, WorkflowRun


def _readable_runs(membership: Membership) -> QuerySet[WorkflowRun]:
    """The agency's runs this member may read. Owners and managers read all. Other roles do not
    read a ``managers_only`` workflow's runs (the month's AI spend). A chatter reads only the runs
    about one of their assigned creators (the input's ``creator_id``): a run about another
    creator holds that creator's fans and drafts, and one about the whole agency every creator's."""
    runs = WorkflowRun.objects.for_agency(membership.agency_id)
    if not has_perm(membership, Perm.EDIT):
        runs = runs.exclude(workflow__in=definitions.managers_only())
    if not sees_all_creators(membership):
        assigned = list(creator_list(membership=membership, include_archived=True).values_list("id", flat=True))
        runs = runs.filter(input__creator_id__in=assigned)
    return runs


def run_list(*, membership: Membership, state: str = "", workflow: str = "") -> QuerySet[WorkflowRun]:
    runs = _readable_runs(membership).select_related("created_by")
    if state:
        runs = runs.filter(state=state)
    if workflow:
        runs = runs.filter(workflow=workflow)
    return runs.order_by("-created_at", "-id")


def run_get_for_member(*, membership: Membership, run_id: int) -> WorkflowRun:
    run = _readable_runs(membership).select_related("created_by").filter(pk=run_id).first()
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
