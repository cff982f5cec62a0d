"""API: workflows (mounted at /api/v1/ by huntaze/api.py); docs/api-workflows.md.

Every member reads the agency's runs; starting a run, retrying or skipping a step and cancelling
a run need the ``edit`` permission (owners and managers, a write token): others get 403. Another
agency's run or step run answers 404; an action that does not fit the current state answers 409.
"""

# No `from __future__ import annotations`: @paginate resolves annotations in ninja's module.
from django.http import HttpRequest
from ninja import Router, Status
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require
from apps.core.openapi import ErrorOut, Id
from apps.workflows import definitions, selectors, services
from apps.workflows.schemas import DefinitionOut, RunDetailOut, RunIn, RunOut, RunStateName, StepRunOut

router = Router(tags=["workflows"])
ACTION_RESPONSES = {200: StepRunOut, 409: ErrorOut}


def _reader(request: HttpRequest) -> Membership:
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    return membership


@router.get("/workflows/definitions", response=list[DefinitionOut])
def definition_list(request: HttpRequest):
    """The workflows this deployment defines, with their steps and each step's policy."""
    _reader(request)
    return [
        {
            "name": workflow.name, "title": workflow.label, "description": workflow.description,
            "steps": [
                {"name": step.name, "title": step.label, "depends_on": list(step.depends_on), "queue": step.queue,
                 "timeout": step.timeout, "retries": step.retries, "idempotent": step.idempotent,
                 "conditional": step.when is not None, "fan_out": step.fan_out is not None}
                for step in workflow.steps
            ],
        }
        for workflow in definitions.all_workflows()
        if not workflow.name.startswith("test_")
    ]  # fmt: skip


@router.post("/workflows/runs", response={201: RunOut})
def run_start(request: HttpRequest, payload: RunIn):
    """Start a run; its input is validated by the workflow (400 naming the field). With an
    ``Idempotency-Key`` header (up to 64 characters), a retried request answers the run the first
    one started (201 with the same run) instead of starting another."""
    membership = api_membership(request)
    run = services.run_start(membership=membership, workflow=payload.workflow, data=payload.input,
                             request_key=request.headers.get("Idempotency-Key", ""))  # fmt: skip
    return Status(201, run)


@router.get("/workflows/runs", response=list[RunOut])
@paginate(page_size=25)
def run_list(request: HttpRequest, state: RunStateName | None = None, workflow: str | None = None):
    """Runs, newest first, optionally of one state or workflow."""
    membership = _reader(request)
    return selectors.run_list(membership=membership, state=state or "", workflow=(workflow or "")[:100])


@router.get("/workflows/runs/{run_id}", response=RunDetailOut)
def run_detail(request: HttpRequest, run_id: Id):
    membership = _reader(request)
    run = selectors.run_get_for_member(membership=membership, run_id=run_id)
    run.steps = selectors.step_run_list(run=run)
    return run


@router.get("/workflows/runs/{run_id}/steps", response=list[StepRunOut])
def step_run_list(request: HttpRequest, run_id: Id):
    """The run's step runs (one per fan-out item), by step then index."""
    membership = _reader(request)
    return selectors.step_run_list(run=selectors.run_get_for_member(membership=membership, run_id=run_id))


@router.post("/workflows/runs/{run_id}/cancel", response={200: RunOut, 409: ErrorOut})
def run_cancel(request: HttpRequest, run_id: Id):
    """Cancel a run that is not finished (409 otherwise)."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    return services.run_cancel(
        membership=membership, run=selectors.run_get_for_member(membership=membership, run_id=run_id)
    )


@router.post("/workflows/steps/{step_run_id}/retry", response=ACTION_RESPONSES)
def step_retry(request: HttpRequest, step_run_id: Id):
    """Queue a failed, cancelled or needs-attention step again (409 otherwise)."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    row = selectors.step_run_get_for_member(membership=membership, step_run_id=step_run_id)
    return services.step_retry(membership=membership, step_run=row)


@router.post("/workflows/steps/{step_run_id}/skip", response=ACTION_RESPONSES)
def step_skip(request: HttpRequest, step_run_id: Id):
    """Skip a pending, failed, cancelled or needs-attention step; the steps after it run (409 otherwise)."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    row = selectors.step_run_get_for_member(membership=membership, step_run_id=step_run_id)
    return services.step_skip(membership=membership, step_run=row)
