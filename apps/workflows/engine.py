"""Execution: starting a run, running one step, advancing the run, recovering lost steps.

The pipeline of one step run, in order:
1. ``advance`` finds a pending step whose dependencies all succeeded or were skipped; ``when``
   false → skipped; ``fan_out`` → one step run per item; otherwise pending → queued with a
   conditional UPDATE, and only the caller whose UPDATE changed the row publishes ``run_step``
   (on commit) to the step's queue, so two workers finishing sibling steps never both queue it.
2. ``run_step`` (tasks.py) calls ``execute``: claim queued → running (attempts + 1, claim expiring
   after the step's timeout; the claim and its ``run_changed`` event in one commit), call the step
   function with the run's input and its dependencies' outputs, then, in one transaction, store
   the output (only while this worker still holds the claim) and ``advance`` the run.
3. Errors: an ``ApplicationError`` (``PermanentStepError``) fails the step and the run; anything
   else is retried with exponential backoff up to the step's ``retries``, then fails it.
4. ``recover`` (beat, every WORKFLOW_RECOVERY_SECONDS): a running step whose claim expired (its
   worker died) is queued again when the step is idempotent, and marked needs_attention for a
   human otherwise (never run twice); a queued step whose message was lost is published again.

A duplicate ``run_step`` message is harmless: its claim changes no row and it returns.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Subquery
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.workflows import definitions
from apps.workflows.definitions import Step, StepContext, Workflow
from apps.workflows.events import run_changed
from apps.workflows.models import (
    DONE_STEP_STATES,
    RunState,
    StepRun,
    StepState,
    WorkflowAction,
    WorkflowRun,
)

logger = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
ERROR_LIMIT = 2000


def _publish(step_run_id: int, queue: str, countdown: float = 0) -> None:
    from apps.workflows.tasks import run_step

    run_step.apply_async(args=[step_run_id], queue=queue, countdown=countdown or None)


def _publish_on_commit(step_run_id: int, queue: str, countdown: float = 0) -> None:
    transaction.on_commit(lambda: _publish(step_run_id, queue, countdown))


def definition_for(run: WorkflowRun) -> Workflow:
    workflow = definitions.get(run.workflow)
    if workflow is None:
        raise LookupError(f"Workflow {run.workflow!r} is not defined in this process.")
    return workflow


def _context(run: WorkflowRun, step_run: StepRun, rows: list[StepRun], workflow: Workflow) -> StepContext:
    step = workflow.by_name[step_run.step]
    deps: dict[str, Any] = {}
    for dep in step.depends_on:
        dep_rows = sorted((row for row in rows if row.step == dep), key=lambda row: row.index)
        if workflow.by_name[dep].fan_out is not None:
            deps[dep] = [row.output for row in dep_rows if row.state == StepState.SUCCEEDED]
        else:
            deps[dep] = dep_rows[0].output if dep_rows else None
    return StepContext(
        run_id=run.pk, step_run_id=step_run.pk, agency_id=run.agency_id, user_id=run.created_by_id,
        input=run.input, deps=deps, item=step_run.input, attempt=step_run.attempts,
    )  # fmt: skip


def run_create(*, agency_id: int, user_id: int | None, workflow: Workflow, data: dict[str, Any]) -> WorkflowRun:
    """A new run with one pending step run per step, started at once (its first steps queued on
    commit). ``data`` is already validated input."""
    data = definitions.json_value(data, "The workflow input")
    now = timezone.now()
    with transaction.atomic():
        run = WorkflowRun.objects.create(
            agency_id=agency_id, workflow=workflow.name, state=RunState.RUNNING, input=data,
            created_by_id=user_id, started_at=now,
        )  # fmt: skip
        StepRun.objects.bulk_create(
            [StepRun(agency_id=agency_id, run=run, step=step.name, index=0) for step in workflow.steps]
        )
        advance(run.pk)
    return run


def advance(run_id: int) -> None:
    """Queue, skip or fan out every step whose dependencies are done, then settle the run's state.
    Call inside a transaction; publishing happens on commit.

    The run's row is locked first (SELECT … FOR UPDATE on PostgreSQL; SQLite serialises writers),
    so two workers finishing sibling steps at once advance one after the other and the second
    sees the first's result: the step after them is neither queued twice nor forgotten."""
    run = WorkflowRun.objects.select_for_update().filter(pk=run_id).first()
    if run is None or run.state != RunState.RUNNING:
        return
    workflow = definition_for(run)
    rows = list(StepRun.objects.filter(run_id=run_id))
    by_step: dict[str, list[StepRun]] = {}
    for row in rows:
        by_step.setdefault(row.step, []).append(row)
    done = {name for name, items in by_step.items() if all(row.state in DONE_STEP_STATES for row in items)}
    for step in workflow.steps:
        items = by_step.get(step.name, [])
        if len(items) != 1 or items[0].state != StepState.PENDING:
            continue
        if not all(dep in done for dep in step.depends_on):
            continue
        row = items[0]
        created = _ready(run, row, rows, workflow, step)
        rows.extend(created)
        by_step[step.name].extend(created)
        if row.state in DONE_STEP_STATES:
            done.add(step.name)  # skipped: the steps after it may start in this same pass
    _settle(run, workflow, rows)
    run_changed(run_id=run.pk, agency_id=run.agency_id)


def _ready(run: WorkflowRun, row: StepRun, rows: list[StepRun], workflow: Workflow, step: Step) -> list[StepRun]:
    """Start one step whose dependencies are done: skip it, queue it, or fan it out. Changes
    ``row`` in memory as in the database; answers the extra fan-out rows it created."""
    now = timezone.now()
    pending = StepRun.objects.filter(pk=row.pk, state=StepState.PENDING)

    def finish(state: str, error: str) -> list[StepRun]:
        if pending.update(state=state, error=error, finished_at=now):
            row.state, row.error, row.finished_at = state, error, now
        return []

    context = _context(run, row, rows, workflow)
    try:
        skip = step.when is not None and not step.when(context)
        items = definitions.json_value(step.fan_out(context), f"Step {step.name!r}'s fan-out") if step.fan_out else None
    except Exception as error:  # a broken condition fails the step, not the caller's transaction
        logger.warning("workflow %s step %s: condition or fan-out failed", run.pk, step.name, exc_info=True)
        return finish(StepState.FAILED, _describe(error))
    if skip:
        return finish(StepState.SKIPPED, "Condition not met.")
    if items is not None and not isinstance(items, list):
        return finish(StepState.FAILED, "Fan-out must return a list.")
    if items == []:
        return finish(StepState.SKIPPED, "Nothing to fan out over.")
    first = items[0] if items else None
    if not pending.update(state=StepState.QUEUED, input=first, queued_at=now):
        return []
    row.state, row.input, row.queued_at = StepState.QUEUED, first, now
    _publish_on_commit(row.pk, step.queue)
    if not items or len(items) == 1:
        return []
    extra = StepRun.objects.bulk_create(
        [
            StepRun(agency_id=run.agency_id, run_id=run.pk, step=step.name, index=index, input=item,
                    state=StepState.QUEUED, queued_at=now)
            for index, item in enumerate(items[1:], start=1)
        ]
    )  # fmt: skip
    for created in extra:
        if created.pk is None:  # backends that do not return ids from bulk_create
            created.pk = StepRun.objects.get(run_id=run.pk, step=step.name, index=created.index).pk
        _publish_on_commit(created.pk, step.queue)
    return extra


def _settle(run: WorkflowRun, workflow: Workflow, rows: list[StepRun]) -> None:
    """The run's state from its step runs (as ``advance`` left them): failed, needs attention,
    succeeded or still running."""
    now = timezone.now()
    active = WorkflowRun.objects.filter(pk=run.pk, state=RunState.RUNNING)
    failed = [row for row in rows if row.state == StepState.FAILED]
    if failed:
        where = f"{failed[0].step}[{failed[0].index}]" if failed[0].index else failed[0].step
        active.update(
            state=RunState.FAILED, error=f"Step {where} failed: {failed[0].error}"[:ERROR_LIMIT], finished_at=now
        )
        StepRun.objects.filter(run_id=run.pk, state=StepState.PENDING).update(state=StepState.CANCELLED)
        return
    if any(row.state in (StepState.QUEUED, StepState.RUNNING) for row in rows):
        return
    attention = [row for row in rows if row.state == StepState.NEEDS_ATTENTION]
    if attention:
        active.update(
            state=RunState.NEEDS_ATTENTION, error=f"Step {attention[0].step} needs attention: {attention[0].error}"
        )
        return
    if all(row.state in DONE_STEP_STATES for row in rows):
        output: dict[str, Any] = {}
        for step in workflow.steps:
            if workflow.dependents(step.name):
                continue
            leaf = sorted((row for row in rows if row.step == step.name), key=lambda row: row.index)
            if step.fan_out is not None:
                output[step.name] = [row.output for row in leaf if row.state == StepState.SUCCEEDED]
            else:
                output[step.name] = leaf[0].output if leaf else None
        active.update(state=RunState.SUCCEEDED, output=output, error="", finished_at=now)


def _describe(error: BaseException) -> str:
    if isinstance(error, ApplicationError):
        return error.message[:ERROR_LIMIT]
    return f"{type(error).__name__}: {error}"[:ERROR_LIMIT]


def backoff_seconds(attempt: int) -> float:
    base = settings.WORKFLOW_RETRY_BACKOFF_SECONDS
    return min(base * (2 ** max(attempt - 1, 0)), 300.0)


def execute(step_run_id: int, *, worker: str = WORKER_ID) -> str:
    """Claim and run one queued step run; answers what happened (for logs and tests)."""
    # One read for the step run, its run and its siblings: the dependencies' outputs the context
    # needs are final before a step is queued, so rows read before the claim serve it.
    rows = list(
        StepRun.objects.select_related("run").filter(
            run_id=Subquery(StepRun.objects.filter(pk=step_run_id).values("run_id")[:1])
        )
    )
    row = next((other for other in rows if other.pk == step_run_id), None)
    if row is None:
        return "missing"
    try:
        workflow = definition_for(row.run)
    except LookupError as error:
        with transaction.atomic():
            if StepRun.objects.filter(pk=row.pk, state=StepState.QUEUED).update(
                state=StepState.FAILED, error=str(error), finished_at=timezone.now()
            ):
                advance(row.run_id)
        return "failed"
    step = workflow.by_name.get(row.step)
    if step is None:
        return "missing"
    now = timezone.now()
    # The claim's token names this worker and this claim: a later claim (after recovery) differs.
    token = f"{worker}:{uuid.uuid4().hex[:8]}"[:200]
    # The claim and its event commit together (one commit, not two): the event exists exactly
    # when the claim does, and is dispatched once they are committed.
    with transaction.atomic():
        claimed = StepRun.objects.filter(pk=row.pk, state=StepState.QUEUED, run__state=RunState.RUNNING).update(
            state=StepState.RUNNING, attempts=F("attempts") + 1, claimed_by=token,
            claim_expires_at=now + timedelta(seconds=step.timeout), started_at=now, finished_at=None,
        )  # fmt: skip
        if claimed:
            run_changed(run_id=row.run_id, agency_id=row.agency_id, step=row.step, state=StepState.RUNNING)
    if not claimed:
        return "not-claimed"
    row.state, row.attempts, row.claimed_by = StepState.RUNNING, row.attempts + 1, token
    context = _context(row.run, row, rows, workflow)
    mine = StepRun.objects.filter(pk=row.pk, state=StepState.RUNNING, claimed_by=token)
    try:
        output = definitions.json_value(step.task(context), f"Step {step.name!r}'s output")
    except ApplicationError as error:
        with transaction.atomic():
            if mine.update(
                state=StepState.FAILED, error=_describe(error), finished_at=timezone.now(), claim_expires_at=None
            ):
                advance(row.run_id)
        return "failed"
    except Exception as error:
        logger.warning("workflow %s step %s attempt %s failed", row.run_id, row.step, row.attempts, exc_info=True)
        with transaction.atomic():
            if row.attempts <= step.retries:
                delay = backoff_seconds(row.attempts)
                if mine.update(
                    state=StepState.QUEUED, error=_describe(error), claim_expires_at=None,
                    queued_at=timezone.now() + timedelta(seconds=delay),
                ):  # fmt: skip
                    _publish_on_commit(row.pk, step.queue, delay)
                    run_changed(run_id=row.run_id, agency_id=row.agency_id, step=row.step, state=StepState.QUEUED)
                return "retrying"
            if mine.update(
                state=StepState.FAILED, error=_describe(error), finished_at=timezone.now(), claim_expires_at=None
            ):
                advance(row.run_id)
        return "failed"
    with transaction.atomic():
        if not mine.update(
            state=StepState.SUCCEEDED, output=output, error="", finished_at=timezone.now(), claim_expires_at=None
        ):
            return "lost-claim"  # cancelled, or taken over after the claim expired
        advance(row.run_id)
    return "succeeded"


def drive(run_id: int, *, max_steps: int = 1000) -> WorkflowRun:
    """Run every queued step of one run in this process until nothing is left: the demo data and
    tests that are about a workflow's steps rather than the worker use it. Retries wait no backoff."""
    for _ in range(max_steps):
        row = StepRun.objects.filter(run_id=run_id, state=StepState.QUEUED).order_by("id").first()
        if row is None:
            break
        execute(row.pk)
    return WorkflowRun.objects.get(pk=run_id)


def recover(*, now=None) -> dict[str, int]:
    """Resume steps whose worker died (claim expired) and re-publish queued steps whose message
    was lost. Idempotent steps run again; the others wait for a member (needs_attention)."""
    now = now or timezone.now()
    counts = {"requeued": 0, "needs_attention": 0, "failed": 0, "republished": 0, "advanced": 0}
    expired = list(
        StepRun.objects.select_related("run").filter(
            state=StepState.RUNNING, claim_expires_at__lt=now, run__state=RunState.RUNNING
        )[:500]
    )
    for row in expired:
        workflow = definitions.get(row.run.workflow)
        step = workflow.by_name.get(row.step) if workflow else None
        claim = StepRun.objects.filter(pk=row.pk, state=StepState.RUNNING, claimed_by=row.claimed_by)
        lost = f"The worker running this step ({row.claimed_by}) stopped before it finished (claim expired)."
        with transaction.atomic():
            if step is not None and step.idempotent and row.attempts <= step.retries:
                if claim.update(state=StepState.QUEUED, error=lost, claim_expires_at=None, queued_at=now):
                    _publish_on_commit(row.pk, step.queue)
                    run_changed(run_id=row.run_id, agency_id=row.agency_id, step=row.step, state=StepState.QUEUED)
                    WorkflowAction.objects.create(
                        agency_id=row.agency_id, run_id=row.run_id, step_run=row, kind=WorkflowAction.Kind.RECOVER,
                        note=f"Queued {row.step} again after its worker stopped (attempt {row.attempts}).",
                    )  # fmt: skip
                    counts["requeued"] += 1
            elif step is not None and step.idempotent:
                if claim.update(state=StepState.FAILED, error=f"{lost} No attempts left.", finished_at=now):
                    counts["failed"] += 1
                    advance(row.run_id)
            elif claim.update(
                state=StepState.NEEDS_ATTENTION, finished_at=now, claim_expires_at=None,
                error=f"{lost} It is not safe to run twice: check what it did, then retry or skip it.",
            ):  # fmt: skip
                WorkflowAction.objects.create(
                    agency_id=row.agency_id, run_id=row.run_id, step_run=row, kind=WorkflowAction.Kind.RECOVER,
                    note=f"Marked {row.step} for a human: its worker stopped and it is not idempotent.",
                )  # fmt: skip
                counts["needs_attention"] += 1
                advance(row.run_id)
    stale = now - timedelta(seconds=settings.WORKFLOW_QUEUED_STALE_SECONDS)
    for row in StepRun.objects.select_related("run").filter(
        Q(queued_at__lt=stale) | Q(queued_at__isnull=True), state=StepState.QUEUED, run__state=RunState.RUNNING
    )[:500]:
        workflow = definitions.get(row.run.workflow)
        step = workflow.by_name.get(row.step) if workflow else None
        # Moving queued_at forward is the claim on re-publishing: two beats never both send it.
        if step and StepRun.objects.filter(pk=row.pk, state=StepState.QUEUED, queued_at=row.queued_at).update(
            queued_at=now
        ):
            _publish(row.pk, step.queue)
            counts["republished"] += 1
    # A run with nothing queued or running is advanced again: the safety net for a process that
    # died between a member's action and its advance.
    idle = (
        WorkflowRun.objects.filter(state=RunState.RUNNING, started_at__lt=stale)
        .exclude(step_runs__state__in=(StepState.QUEUED, StepState.RUNNING))
        .values_list("pk", flat=True)[:100]
    )
    for run_id in list(idle):
        with transaction.atomic():
            advance(run_id)
        counts["advanced"] += 1
    return counts


def wait_for(run_id: int, *, timeout: float, states: tuple[str, ...] | None = None) -> WorkflowRun:
    """Poll until the run leaves the running state (or reaches ``states``); for tests and bench."""
    deadline = time.monotonic() + timeout
    while True:
        run = WorkflowRun.objects.get(pk=run_id)
        if (states and run.state in states) or (not states and run.state != RunState.RUNNING):
            return run
        if time.monotonic() > deadline:
            return run
        time.sleep(0.05)
