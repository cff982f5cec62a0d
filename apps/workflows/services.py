"""Workflow actions members take: start a run, retry or skip a step, cancel a run.

Each action is for owners and managers (``Perm.EDIT``), is refused with a ``WorkflowStateError``
(409) when it does not fit the current state, and leaves a ``WorkflowAction`` row (who, what,
when) shown on the run page. State changes are conditional UPDATEs, like the engine's, so a
member's action and a worker's result never both win.

Rules the database cannot state:
- A step can be retried when it failed, needs attention or was cancelled with its run still
  open; the retry starts a fresh attempt budget (the audit row keeps the earlier count).
- Skipping a step counts as done for the steps after it (they receive ``None`` for its output).
- A cancelled run stays cancelled: its queued and pending steps are cancelled, and a step still
  running has its result discarded when it finishes.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Membership
from apps.accounts.permissions import Perm, require
from apps.core.errors import ApplicationError, ConflictError
from apps.core.jsonvalues import UnstorableJSON, storable_json
from apps.workflows import definitions, engine
from apps.workflows.errors import WorkflowStateError
from apps.workflows.events import run_changed
from apps.workflows.models import RunState, StepRun, StepState, WorkflowAction, WorkflowRun

MAX_INPUT_CHARS = 20_000


MAX_REQUEST_KEY = 64


def run_start(
    *, membership: Membership, workflow: str, data: dict[str, Any] | None = None, request_key: str = ""
) -> WorkflowRun:
    """Validate the input with the definition's ``clean_input`` and start a run in the member's name.

    ``request_key`` (the start form's one-time key, the API's Idempotency-Key): a second start
    with the same key, a double click or a retried request, answers the run the first started
    instead of starting another (each run sends messages, writes drafts, notifies)."""
    require(membership, Perm.EDIT)
    request_key = (request_key or "").strip()
    if len(request_key) > MAX_REQUEST_KEY:
        raise ApplicationError(f"Keep the request key to {MAX_REQUEST_KEY} characters.", field="request_key")
    if not request_key.isprintable():  # NUL or control characters: PostgreSQL refuses NUL outright
        raise ApplicationError("The request key may hold only printable characters.", field="request_key")
    if request_key:
        earlier = WorkflowRun.objects.for_agency(membership.agency_id).filter(request_key=request_key).first()
        if earlier is not None:
            if earlier.workflow != workflow:  # a key reused for another start: say so (Stripe's rule)
                raise ConflictError(
                    f"This request key started run #{earlier.pk} of another workflow; use a new key.",
                    field="request_key",
                )
            return earlier
    definition = definitions.get(workflow)
    if definition is None:
        raise ApplicationError(f"There is no workflow called “{workflow}”.", field="workflow")
    data = dict(data or {})
    try:
        encoded = storable_json(data, "The input")
    except UnstorableJSON as error:  # NaN, a lone surrogate or NUL: PostgreSQL's jsonb refuses them
        raise ApplicationError(str(error), field="input") from None
    if len(repr(encoded)) > MAX_INPUT_CHARS:
        raise ApplicationError(f"Keep the input under {MAX_INPUT_CHARS:,} characters.", field="input")
    cleaned = definition.clean_input(membership, encoded) if definition.clean_input else encoded
    try:
        with transaction.atomic():
            run = engine.run_create(
                agency_id=membership.agency_id, user_id=membership.user_id, workflow=definition, data=cleaned,
                request_key=request_key,
            )  # fmt: skip
            WorkflowAction.objects.create(
                agency_id=membership.agency_id, run=run, actor_id=membership.user_id, kind=WorkflowAction.Kind.START
            )
    except IntegrityError:
        if not request_key:
            raise
        # The same key at the same moment (two clicks in flight at once): the other one started it.
        return WorkflowRun.objects.for_agency(membership.agency_id).get(request_key=request_key)
    return run


def _defined(run: WorkflowRun) -> definitions.Workflow:
    """The run's workflow, or a WorkflowStateError (409) when a deploy renamed or removed it."""
    workflow = definitions.get(run.workflow)
    if workflow is None:
        raise WorkflowStateError(f"The workflow “{run.workflow}” is no longer defined: this run cannot go on.")
    return workflow


def step_retry(*, membership: Membership, step_run: StepRun) -> StepRun:
    require(membership, Perm.EDIT)
    run = step_run.run
    if run.state in (RunState.CANCELLED, RunState.SUCCEEDED):
        raise WorkflowStateError(f"This run is {run.get_state_display().lower()}; its steps cannot be retried.")
    definition = _defined(run)
    step = definition.by_name.get(step_run.step)
    if step is None:
        raise WorkflowStateError("This step is no longer part of the workflow.")
    now = timezone.now()
    with transaction.atomic():
        engine.lock_run(run.pk)  # the run before its step runs, as the engine does
        changed = StepRun.objects.filter(
            pk=step_run.pk, state__in=(StepState.FAILED, StepState.NEEDS_ATTENTION, StepState.CANCELLED)
        ).update(state=StepState.QUEUED, attempts=0, claim_expires_at=None, queued_at=now, finished_at=None)
        if not changed:
            raise WorkflowStateError("Only a failed, cancelled or needs-attention step can be retried.")
        _reopen(
            run,
            membership,
            step_run,
            WorkflowAction.Kind.RETRY,
            f"Retried {step_run} after {step_run.attempts} attempt(s).",
        )
        StepRun.objects.filter(run=run, state=StepState.CANCELLED).exclude(pk=step_run.pk).update(
            state=StepState.PENDING
        )
        engine._publish_on_commit(step_run.pk, step)
        run_changed(run_id=run.pk, agency_id=run.agency_id, step=step_run.step, state=StepState.QUEUED)
    step_run.refresh_from_db()
    return step_run


def step_skip(*, membership: Membership, step_run: StepRun) -> StepRun:
    require(membership, Perm.EDIT)
    run = step_run.run
    if run.state in (RunState.CANCELLED, RunState.SUCCEEDED):
        raise WorkflowStateError(f"This run is {run.get_state_display().lower()}; its steps cannot be skipped.")
    _defined(run)
    with transaction.atomic():
        engine.lock_run(run.pk)  # the run before its step runs, as the engine does
        changed = StepRun.objects.filter(
            pk=step_run.pk,
            state__in=(StepState.FAILED, StepState.NEEDS_ATTENTION, StepState.PENDING, StepState.CANCELLED),
        ).update(state=StepState.SKIPPED, claim_expires_at=None, finished_at=timezone.now())
        if not changed:
            raise WorkflowStateError("Only a pending, failed, cancelled or needs-attention step can be skipped.")
        _reopen(run, membership, step_run, WorkflowAction.Kind.SKIP, f"Skipped {step_run.step}.")
        StepRun.objects.filter(run=run, state=StepState.CANCELLED).update(state=StepState.PENDING)
        engine.advance(run.pk)
    step_run.refresh_from_db()
    return step_run


def _reopen(run: WorkflowRun, membership: Membership, step_run: StepRun, kind: str, note: str) -> None:
    """A failed or needs-attention run goes back to running once a member dealt with its step."""
    WorkflowRun.objects.filter(
        pk=run.pk, state__in=(RunState.FAILED, RunState.NEEDS_ATTENTION, RunState.RUNNING)
    ).update(state=RunState.RUNNING, error="", finished_at=None)
    WorkflowAction.objects.create(
        agency_id=run.agency_id, run=run, step_run=step_run, actor_id=membership.user_id, kind=kind, note=note[:500]
    )


def run_cancel(*, membership: Membership, run: WorkflowRun) -> WorkflowRun:
    require(membership, Perm.EDIT)
    now = timezone.now()
    with transaction.atomic():
        changed = WorkflowRun.objects.filter(
            pk=run.pk, state__in=(RunState.PENDING, RunState.RUNNING, RunState.NEEDS_ATTENTION, RunState.FAILED)
        ).update(state=RunState.CANCELLED, finished_at=now)
        if not changed:
            raise WorkflowStateError(f"This run is already {run.get_state_display().lower()}.")
        StepRun.objects.filter(
            run=run, state__in=(StepState.PENDING, StepState.QUEUED, StepState.RUNNING, StepState.NEEDS_ATTENTION)
        ).update(state=StepState.CANCELLED, claim_expires_at=None, finished_at=now)
        WorkflowAction.objects.create(
            agency_id=run.agency_id, run=run, actor_id=membership.user_id, kind=WorkflowAction.Kind.CANCEL
        )
        run_changed(run_id=run.pk, agency_id=run.agency_id)
    run.refresh_from_db()
    return run
