"""Execution: starting a run, running one step, advancing the run, recovering lost steps.

The pipeline of one step run, in order:
1. ``advance`` finds a pending step whose dependencies all succeeded or were skipped; ``when``
   false → skipped; ``fan_out`` → one step run per item; otherwise pending → queued with a
   conditional UPDATE, and only the caller whose UPDATE changed the row publishes ``run_step``
   (on commit) to the step's queue, so two workers finishing sibling steps never both queue it.
2. ``run_step`` (tasks.py) calls ``execute``: read the step run with its run and siblings (one
   SELECT), claim queued → running (one conditional UPDATE, committed on its own: attempts + 1,
   claim expiring after the step's timeout; on PostgreSQL the claim rides in the read's
   statement, its terms carried by the message's headers: ``message_headers``), call the step
   function with the run's input and its dependencies' outputs, then, in one transaction, lock
   the run and store the output in ONE UPDATE (only while this worker still holds the claim),
   read the step runs again and ``advance`` the run. The claim's ``run_changed`` event
   ("running") is announced only for a step still running after RUNNING_NOTICE_SECONDS (a thread
   of the worker, ``_notices``): a fast step announces its finish alone, which the run page
   (coalescing for 0.1 s) would have drawn anyway.
3. Errors: an ``ApplicationError`` (``PermanentStepError``) fails the step and the run; anything
   else is retried with exponential backoff up to the step's ``retries``, then fails it.
4. ``recover`` (beat, every WORKFLOW_RECOVERY_SECONDS): a running step whose claim expired (its
   worker died) is queued again when the step is idempotent, and marked needs_attention for a
   human otherwise (never run twice); a queued step whose message was lost is published again.

A duplicate ``run_step`` message is harmless: its claim changes no row and it returns.

Lock order, everywhere a transaction writes a run and its step runs: the run's row first, then
step runs (the finish, ``recover`` and the member actions alike), so two of them never deadlock.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import InterfaceError, NotSupportedError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.core.jsonvalues import storable_json
from apps.core.metrics import emit
from apps.core.outbox import NO_FLUSH_SQL
from apps.core.statements import statement_cursor
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
# A step still running this long after its claim has the claim announced ("running"); a faster
# one announces only its finish. Well under what a person notices, and under the run page's
# coalescing of bursts (consumers.COALESCE_SECONDS).
RUNNING_NOTICE_SECONDS = 0.05


# The claim's terms a ``run_step`` message carries, as Celery message headers (a worker of an
# older release ignores them; a message without them is read, then claimed).
CLAIM_TIMEOUT_HEADER = "workflow_claim_timeout"
CLAIM_IDEMPOTENT_HEADER = "workflow_claim_idempotent"


def message_headers(step: Step) -> dict[str, Any]:
    """The step's timeout and whether it is idempotent, as the definition says when the step is
    queued: with them the worker claims in the statement that reads the step run
    (``_read_step_runs``), one round trip fewer per step; ``execute`` checks them against its own
    definition afterwards."""
    return {CLAIM_TIMEOUT_HEADER: step.timeout, CLAIM_IDEMPOTENT_HEADER: step.idempotent}


def _publish(step_run_id: int, step: Step, countdown: float = 0) -> None:
    from apps.workflows.tasks import run_step

    run_step.apply_async(
        args=[step_run_id], headers=message_headers(step), queue=step.queue, countdown=countdown or None
    )


def _publish_on_commit(step_run_id: int, step: Step, countdown: float = 0) -> None:
    transaction.on_commit(lambda: _publish(step_run_id, step, countdown))


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


def run_create(
    *, agency_id: int, user_id: int | None, workflow: Workflow, data: dict[str, Any], request_key: str = ""
) -> WorkflowRun:
    """A new run with one pending step run per step, started at once (its first steps queued on
    commit). ``data`` is already validated input; ``request_key`` is unique per agency when set
    (an IntegrityError for a second run with it)."""
    data = storable_json(data, "The workflow input")
    now = timezone.now()
    with transaction.atomic():
        run = WorkflowRun.objects.create(
            agency_id=agency_id, workflow=workflow.name, state=RunState.RUNNING, input=data,
            created_by_id=user_id, started_at=now, request_key=request_key,
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
    run = lock_run(run_id)
    if run is None or run.state != RunState.RUNNING:
        return
    _advance(run, list(StepRun.objects.filter(run_id=run_id)))


def lock_run(run_id: int) -> WorkflowRun | None:
    """The run's row, locked until the transaction ends (PostgreSQL; SQLite serialises writers).
    Take it before writing any of the run's step runs (the lock order in the module docstring)."""
    return WorkflowRun.objects.select_for_update().filter(pk=run_id).first()


def _advance(run: WorkflowRun, rows: list[StepRun]) -> None:
    """``advance`` once the run (state running) is locked and its step runs read under the lock.
    A run whose workflow this process does not know (renamed or removed, or a rolling deploy
    where an older process runs the recovery beat) is left as it is, with a warning, instead of
    raising into the caller: the recovery beat advances every agency's runs in one pass, and a
    process that knows the workflow advances it later (``execute`` leaves such steps queued too)."""
    workflow = definitions.get(run.workflow)
    if workflow is None:
        logger.warning("workflow run %s: workflow %r is not defined in this process; left as it is", run.pk,
                       run.workflow)  # fmt: skip
        return
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

    def finish(state: str, error: str) -> list[StepRun]:
        if StepRun.objects.filter(pk=row.pk, state=StepState.PENDING).update(state=state, error=error, finished_at=now):
            row.state, row.error, row.finished_at = state, error, now
        return []

    context = _context(run, row, rows, workflow)
    try:
        skip = step.when is not None and not step.when(context)
        items = storable_json(step.fan_out(context), f"Step {step.name!r}'s fan-out") if step.fan_out else None
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
    with statement_cursor() as cursor:  # on every step's path: written out (see _READ_STEP_RUNS)
        cursor.execute(_QUEUE, [StepState.QUEUED, _json_in(first), _when(now), row.pk, StepState.PENDING])
        if cursor.rowcount != 1:
            return []
    row.state, row.input, row.queued_at = StepState.QUEUED, first, now
    _publish_on_commit(row.pk, step)
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
        _publish_on_commit(created.pk, step)
    return extra


def _settle(run: WorkflowRun, workflow: Workflow, rows: list[StepRun]) -> None:
    """The run's state from its step runs (as ``advance`` left them): failed, needs attention,
    succeeded or still running."""
    failed = [row for row in rows if row.state == StepState.FAILED]
    if not failed and any(row.state in (StepState.QUEUED, StepState.RUNNING) for row in rows):
        return  # the common case, decided before building any query
    now = timezone.now()
    active = WorkflowRun.objects.filter(pk=run.pk, state=RunState.RUNNING)
    if failed:
        where = f"{failed[0].step}[{failed[0].index}]" if failed[0].index else failed[0].step
        if active.update(
            state=RunState.FAILED, error=f"Step {where} failed: {failed[0].error}"[:ERROR_LIMIT], finished_at=now
        ):
            _run_ended(run, RunState.FAILED, now)
        StepRun.objects.filter(run_id=run.pk, state=StepState.PENDING).update(state=StepState.CANCELLED)
        return
    if any(row.state in (StepState.QUEUED, StepState.RUNNING) for row in rows):
        return
    attention = [row for row in rows if row.state == StepState.NEEDS_ATTENTION]
    if attention:
        if active.update(
            state=RunState.NEEDS_ATTENTION, error=f"Step {attention[0].step} needs attention: {attention[0].error}"
        ):
            _run_ended(run, RunState.NEEDS_ATTENTION, now)
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
        if active.update(state=RunState.SUCCEEDED, output=output, error="", finished_at=now):
            _run_ended(run, RunState.SUCCEEDED, now)


def _run_ended(run: WorkflowRun, state: str, now) -> None:
    """``workflow.run``: how long a run took from its start to ``state`` (docs/metrics.md); once
    per settling, since only the update that moved the run out of running calls it."""
    seconds = max((now - run.started_at).total_seconds(), 0.0) if run.started_at else 0.0
    emit("workflow.run", seconds, "Seconds", {"workflow": run.workflow, "outcome": state})


def _describe(error: BaseException) -> str:
    if isinstance(error, ApplicationError):
        return error.message[:ERROR_LIMIT]
    return f"{type(error).__name__}: {error}"[:ERROR_LIMIT]


def backoff_seconds(attempt: int) -> float:
    base = settings.WORKFLOW_RETRY_BACKOFF_SECONDS
    return min(base * (2 ** max(attempt - 1, 0)), 300.0)


def execute(step_run_id: int, *, worker: str = WORKER_ID, timeout: Any = None, idempotent: Any = None) -> str:
    """Claim and run one queued step run; answers what happened (for logs and tests).

    ``timeout`` and ``idempotent`` are the claim's terms from the message (``message_headers``): on
    PostgreSQL the claim then rides in the read's statement. Without them (an older message, a
    direct call) the read and the claim are two statements."""
    now = timezone.now()
    # The claim's token names this worker and this claim: a later claim (after recovery) differs.
    token = f"{worker}:{uuid.uuid4().hex[:8]}"[:200]
    terms = _ClaimTerms(token=token, now=now, timeout=timeout, idempotent=idempotent)
    early = terms.usable()
    # One read for the step run, its run and its siblings: the dependencies' outputs the context
    # needs are final before a step is queued, so rows read before the claim serve it.
    rows, claimed = _read_step_runs(step_run_id, claim=terms if early else None)
    row = next((other for other in rows if other.pk == step_run_id), None)
    if row is None:
        return "missing"
    workflow = definitions.get(row.run.workflow)
    step = workflow.by_name.get(row.step) if workflow is not None else None
    if step is None:
        # A workflow or step this process does not define (a deploy in progress, WORKFLOW_MODULES
        # differing between processes): left queued for a worker that has it (the recovery task
        # publishes it again), its claim undone when the read made one. A second delivery seeing
        # that brief claim leaves it to the recovery task too.
        logger.warning("workflow step run %s: %r of workflow %r is not defined in this process", row.pk, row.step,
                       row.run.workflow)  # fmt: skip
        if claimed:
            undo = {"attempts": F("attempts") - 1, "claimed_by": "", "claim_expires_at": None}
            _held(row.pk, token).update(state=StepState.QUEUED, **undo)
        return "missing"
    if not early:
        claimed = _claim(row, step, token=token, now=now)
    if not claimed:
        return "not-claimed"
    # The definition changed since the message was sent: the claim expires after this process's
    # timeout, and this durable commit flushes the WAL past the claim's unflushed one, so a step
    # that is no longer idempotent is never run twice after a database crash.
    changed = early and (timeout != step.timeout or (idempotent and not step.idempotent))
    if changed and not _held(row.pk, token).update(claim_expires_at=now + timedelta(seconds=step.timeout)):
        return "lost-claim"
    row.state, row.attempts, row.claimed_by = StepState.RUNNING, row.attempts + 1, token
    context = _context(row.run, row, rows, workflow)
    notice = _announce_claim(row, token)
    started = time.perf_counter()
    outcome = _run_claimed(row, step, context, token, notice)
    emit("workflow.step", (time.perf_counter() - started) * 1000.0, "Milliseconds",  # docs/metrics.md
         {"workflow": workflow.name, "step": step.name, "outcome": outcome})  # fmt: skip
    return outcome


def _run_claimed(row: _StepRow, step: Step, context: StepContext, token: str, notice) -> str:
    """Run a claimed step's task and store what happened: ``succeeded``, ``failed``, ``retrying``
    or ``lost-claim``."""
    try:
        output = storable_json(step.task(context), f"Step {step.name!r}'s output")
    except ApplicationError as error:
        _notices.cancel(notice)
        _finish(row, step, state=StepState.FAILED, error=_describe(error))
        return "failed"
    except Exception as error:
        _notices.cancel(notice)
        logger.warning("workflow %s step %s attempt %s failed", row.run_id, row.step, row.attempts, exc_info=True)
        if row.attempts <= step.retries:
            delay = backoff_seconds(row.attempts)
            with transaction.atomic():
                if _held(row.pk, token).update(
                    state=StepState.QUEUED, error=_describe(error), claim_expires_at=None,
                    queued_at=timezone.now() + timedelta(seconds=delay),
                ):  # fmt: skip
                    _publish_on_commit(row.pk, step, delay)
                    run_changed(run_id=row.run_id, agency_id=row.agency_id, step=row.step, state=StepState.QUEUED)
            return "retrying"
        _finish(row, step, state=StepState.FAILED, error=_describe(error))
        return "failed"
    _notices.cancel(notice)
    if not _finish(row, step, state=StepState.SUCCEEDED, output=output):
        return "lost-claim"  # cancelled, or taken over after the claim expired
    return "succeeded"


def _held(step_run_id: int, token: str):
    """The step run while it is still running under the claim ``token``."""
    return StepRun.objects.filter(pk=step_run_id, state=StepState.RUNNING, claimed_by=token)


def _finish(row: _StepRow, step: Step, *, state: str, output: Any = None, error: str = "") -> bool:
    """In one transaction: lock the run and store this worker's result in ONE statement (only
    while it still holds the claim), then read the step runs and advance the run. False (nothing
    written) when the claim was lost: cancelled, or taken over after it expired. A failure keeps
    the output the step run had."""
    no_flush = _no_flush(step)  # decided outside the block: only when the transaction is its own
    with transaction.atomic():
        if not _store(row, state=state, output=output, error=error, no_flush=no_flush):
            return False
        # Read after the lock: a sibling that finished first is seen with its result. The run's
        # other fields never change; its state is read with the rows.
        rows, run_state = _read_states(row.run_id)
        if rows and run_state == RunState.RUNNING:
            _advance(row.run, rows)
    return True


def _no_flush(step: Step) -> bool:
    """An idempotent step's claim and result commit without waiting for the disk (PostgreSQL;
    apps/core/outbox.py ``unflushed``): a database crash that loses them makes the step run again,
    which it allows. A step that is not idempotent keeps durable commits: its claim must outlive
    any crash so that it is held for a human rather than run twice. Inside a caller's transaction
    (eager tasks, tests) nothing changes: the caller's commit stays as the caller made it."""
    return step.idempotent and connection.vendor == "postgresql" and not connection.in_atomic_block


# --- One step's statements, written out ----------------------------------------------------
# Every step reads its run, claims, stores its result, reads the states and queues the next step.
# These five are SQL the engine writes itself rather than querysets: building and compiling a
# queryset cost about 0.7 ms of CPU per statement on the project's machine, several times the
# statement's round trip (bench/workflow_steps.py; docs/benchmarks.md, "Workflow engine step
# overhead, fourth pass"). The rarer writes (skipping, settling the run, the members' actions,
# recovery) stay querysets. Both backends run them; the row lock is PostgreSQL's (SQLite
# serialises writers).


@dataclass(slots=True, eq=False)
class _StepRow:
    """A step run as the per-step path reads it: the fields the engine's logic uses, named as on
    StepRun, so ``_context``, ``_advance`` and ``_settle`` take either."""

    pk: int
    run_id: int
    agency_id: int
    step: str
    index: int
    state: str
    input: Any
    output: Any
    error: str = ""
    attempts: int = 0
    claimed_by: str = ""
    run: WorkflowRun | None = None
    queued_at: Any = None
    finished_at: Any = None


_STEP_RUN = StepRun._meta.db_table
_RUN = WorkflowRun._meta.db_table
_READ_COLUMNS = f"""
SELECT s.id, s.agency_id, s.step, s."index", s.state, s.input, s.output, s.attempts,
       r.id, r.agency_id, r.workflow, r.state, r.input, r.created_by_id, r.started_at{{claimed}}
FROM {_STEP_RUN} s JOIN {_RUN} r ON r.id = s.run_id
WHERE s.run_id = (SELECT run_id FROM {_STEP_RUN} WHERE id = %s)
ORDER BY s.id
"""  # noqa: S608 (table names from the models)
_READ_STEP_RUNS = _READ_COLUMNS.format(claimed="")
# The run's state is an EXISTS, not a join: PostgreSQL re-checks it against the row another worker
# claimed meanwhile, so two deliveries of one message never both claim it (test_step_cost.py).
_CLAIM = f"""
UPDATE {_STEP_RUN} SET state = %s, attempts = attempts + 1, claimed_by = %s, claim_expires_at = %s,
    started_at = %s, finished_at = NULL
WHERE id = %s AND state = %s
    AND EXISTS (SELECT 1 FROM {_RUN} r WHERE r.id = {_STEP_RUN}.run_id AND r.state = %s){{no_flush}}
"""  # noqa: S608 (table names from the models)
# The run's row lock first (the lock order in the module docstring), in the same statement.
_STORE = f"""
UPDATE {_STEP_RUN} SET state = %s, {{output}}error = %s, finished_at = %s, claim_expires_at = NULL
WHERE id = %s AND state = %s AND claimed_by = %s
    AND run_id IN (SELECT id FROM {_RUN} WHERE id = %s{{lock}}){{no_flush}}
"""  # noqa: S608 (table names from the models)
_QUEUE = f"""
UPDATE {_STEP_RUN} SET state = %s, input = %s, queued_at = %s WHERE id = %s AND state = %s
"""  # noqa: S608 (the table name from the model)
_READ_STATES = f"""
SELECT s.id, s.agency_id, s.step, s."index", s.state, s.input, s.output, s.error, s.attempts, r.state
FROM {_STEP_RUN} s JOIN {_RUN} r ON r.id = s.run_id
WHERE s.run_id = %s
ORDER BY s.id
"""  # noqa: S608 (table names from the models)
# PostgreSQL, when the message carries the claim's terms: the claim in the read's statement (a
# data-modifying WITH runs once, to completion). The SELECT sees the rows as they were before
# the claim, as the separate read did; its last column says whether this statement claimed.
_READ_AND_CLAIM = "WITH claimed AS ({claim} RETURNING id)" + _READ_COLUMNS.format(  # noqa: S608 (constants)
    claimed=", EXISTS (SELECT 1 FROM claimed)"
)
_JSON = StepRun._meta.get_field("output")
_STARTED_AT = WorkflowRun._meta.get_field("started_at")


def _json_in(value: Any) -> Any:
    return _JSON.get_db_prep_save(value, connection)


def _json_out(value: Any) -> Any:
    return _JSON.from_db_value(value, None, connection)


def _when(value) -> Any:
    return connection.ops.adapt_datetimefield_value(value)


def _started_at_out(value: Any) -> Any:
    """The run's ``started_at`` as read by our own SQL, through the backend's converters as the ORM
    applies them (SQLite's turns its text into an aware datetime; PostgreSQL's driver already did)."""
    column = _STARTED_AT.get_col(_RUN)
    for converter in connection.ops.get_db_converters(column):
        value = converter(value, column, connection)
    return value


@dataclass(slots=True)
class _ClaimTerms:
    """A claim made in the read's statement: its token and time, and the terms from the message."""

    token: str
    now: Any
    timeout: Any
    idempotent: Any

    def usable(self) -> bool:
        """PostgreSQL, and terms a publisher of this engine wrote (else: the read, then the claim)."""
        timeout = self.timeout
        return (
            connection.vendor == "postgresql"
            and isinstance(self.idempotent, bool)
            and type(timeout) in (int, float)
            and 0 < timeout <= 86_400 * 365  # also refuses NaN
        )

    def statement(self) -> tuple[str, list[Any]]:
        no_flush = self.idempotent and not connection.in_atomic_block  # as ``_no_flush`` decides
        claim = _CLAIM.format(no_flush=NO_FLUSH_SQL if no_flush else "")
        params = [StepState.RUNNING, self.token, _when(self.now + timedelta(seconds=self.timeout)), _when(self.now)]
        return _READ_AND_CLAIM.format(claim=claim), params


def _read_step_runs(step_run_id: int, *, claim: _ClaimTerms | None = None) -> tuple[list[_StepRow], bool]:
    """The step runs of ``step_run_id``'s run, in id order, each with the run (one SELECT); with
    ``claim``, the same statement claims the step run (answers whether it did).

    The first statement of a ``run_step`` task, and its connection's health check: Django's
    (CONN_HEALTH_CHECKS) would send a ``SELECT 1`` before it on every task. A kept connection that
    fails this read is closed and the read made once more on a new one: one the server dropped,
    or one whose prepared read no longer matches its tables because a migration changed a column
    it returns ("cached plan must not change result type"). Either failed before the statement
    ran, or the server dropped the connection after committing a claim, which the second try finds
    held under this claim's token."""
    if claim is None:
        sql, params = _READ_STEP_RUNS, [step_run_id]
    else:
        sql, head = claim.statement()
        params = [*head, step_run_id, StepState.QUEUED, RunState.RUNNING, step_run_id]
    reused = connection.connection is not None and not connection.in_atomic_block
    if reused:
        connection.health_check_done = True
    try:
        with statement_cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchall()
    except (OperationalError, InterfaceError, NotSupportedError) as error:
        stale_plan = isinstance(error, NotSupportedError)
        if not reused or not (stale_plan or not connection.is_usable()):  # a real error
            raise
        logger.info("workflow step run %s: the kept database connection was %s; reconnecting", step_run_id,
                    "left with a stale prepared read" if stale_plan else "dropped", exc_info=True)  # fmt: skip
        connection.close()
        with statement_cursor() as cursor:
            cursor.execute(sql, params)
            found = cursor.fetchall()
        if claim is not None and found and not found[0][15]:
            # The first try may have claimed before the connection dropped: the token says so.
            found[0] = (*found[0][:15], _held(step_run_id, claim.token).exists())
    if not found:
        return [], False
    run_id, agency_id, workflow, state, data, created_by_id, started_at = found[0][8:15]
    run = WorkflowRun(
        id=run_id, agency_id=agency_id, workflow=workflow, state=state, input=_json_out(data),
        created_by_id=created_by_id, started_at=_started_at_out(started_at),
    )  # fmt: skip
    rows = [
        _StepRow(pk=pk, run_id=run_id, agency_id=agency, step=name, index=index, state=state, input=_json_out(item),
                 output=_json_out(output), attempts=attempts, run=run)
        for pk, agency, name, index, state, item, output, attempts, *_ in found
    ]  # fmt: skip
    return rows, claim is not None and bool(found[0][15])


def _claim(row: _StepRow, step: Step, *, token: str, now) -> bool:
    """queued → running for this worker (attempts + 1, claim expiring after the step's timeout),
    only while the run is running; its own commit: from here the recovery task knows it ran."""
    sql = _CLAIM.format(no_flush=NO_FLUSH_SQL if _no_flush(step) else "")
    params = [StepState.RUNNING, token, _when(now + timedelta(seconds=step.timeout)), _when(now), row.pk,
              StepState.QUEUED, RunState.RUNNING]  # fmt: skip
    with statement_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _store(row: _StepRow, *, state: str, output: Any, error: str, no_flush: bool) -> bool:
    """Lock the run, then store this claim's result (a success's output; a failure's error)."""
    success = state == StepState.SUCCEEDED
    sql = _STORE.format(
        output="output = %s, " if success else "",
        lock=" FOR UPDATE" if connection.features.has_select_for_update else "",
        no_flush=NO_FLUSH_SQL if no_flush else "",
    )
    params = [state, *([_json_in(output)] if success else []), error, _when(timezone.now()), row.pk,
              StepState.RUNNING, row.claimed_by, row.run_id]  # fmt: skip
    with statement_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1


def _read_states(run_id: int) -> tuple[list[_StepRow], str | None]:
    """The run's step runs as they are now (read under the run's lock) and the run's state."""
    with statement_cursor() as cursor:
        cursor.execute(_READ_STATES, [run_id])
        found = cursor.fetchall()
    rows = [
        _StepRow(pk=pk, run_id=run_id, agency_id=agency, step=name, index=index, state=state, input=_json_out(item),
                 output=_json_out(output), error=error, attempts=attempts)
        for pk, agency, name, index, state, item, output, error, attempts, _ in found
    ]  # fmt: skip
    return rows, (found[0][9] if found else None)


# --- Announcing claims of slow steps --------------------------------------------------------


@dataclass(order=True)
class _Notice:
    due: float
    step_run_id: int = field(compare=False)
    token: str = field(compare=False)
    run_id: int = field(compare=False)
    agency_id: int = field(compare=False)
    step: str = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class _Notices:
    """One daemon thread per process that announces, RUNNING_NOTICE_SECONDS after a claim, the
    claims of steps still running: ``run_changed`` (state running) in its own transaction, only
    while the step run is still running under the same claim (its row locked meanwhile, so the
    announcement commits before the step's finish and never after it). Losing one (the process
    dies) loses a page redraw, never state."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked worker starts its own thread

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[_Notice] = []
        self._thread: threading.Thread | None = None
        self._wakes_at: float | None = None  # when the thread wakes next (None: when told)

    def schedule(self, notice: _Notice) -> None:
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="workflow-notices", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, notice)
            if self._wakes_at is None or notice.due < self._wakes_at:
                self._cond.notify()  # a fast step's notice is later than the one it waits for

    def cancel(self, notice: _Notice | None) -> None:
        if notice is not None:
            with self._cond:
                notice.cancelled = True

    def _next_due(self) -> _Notice:
        with self._cond:
            while True:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._wakes_at = None
                    return heapq.heappop(self._heap)
                self._wakes_at = self._heap[0].due if self._heap else None
                if self._wakes_at is None:
                    with contextlib.suppress(Exception):
                        connection.close()  # this thread's own connection: none kept open while idle
                self._cond.wait(None if self._wakes_at is None else self._wakes_at - now)

    def _loop(self) -> None:
        while True:
            notice = self._next_due()
            try:
                _announce_running(notice)
            except Exception:
                logger.warning("workflow %s step %s: announcing the claim failed", notice.run_id, notice.step,
                               exc_info=True)  # fmt: skip


_notices = _Notices()


def _announce_claim(row: StepRun, token: str) -> _Notice | None:
    """Announce the claim now inside a caller's transaction (eager tasks, tests: another thread
    could not see the claim), else later on the notice thread if the step is still running."""
    if connection.in_atomic_block:
        run_changed(run_id=row.run_id, agency_id=row.agency_id, step=row.step, state=StepState.RUNNING)
        return None
    notice = _Notice(
        due=time.monotonic() + RUNNING_NOTICE_SECONDS, step_run_id=row.pk, token=token, run_id=row.run_id,
        agency_id=row.agency_id, step=row.step,
    )  # fmt: skip
    _notices.schedule(notice)
    return notice


def _announce_running(notice: _Notice) -> None:
    from django.db import close_old_connections

    close_old_connections()
    with transaction.atomic():
        still = StepRun.objects.select_for_update().filter(
            pk=notice.step_run_id, state=StepState.RUNNING, claimed_by=notice.token
        )
        if still.exists():
            run_changed(run_id=notice.run_id, agency_id=notice.agency_id, step=notice.step, state=StepState.RUNNING)


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
            lock_run(row.run_id)  # before the step run: a worker finishing it late locks in this order too
            if step is not None and step.idempotent and row.attempts <= step.retries:
                if claim.update(state=StepState.QUEUED, error=lost, claim_expires_at=None, queued_at=now):
                    _publish_on_commit(row.pk, step)
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
            _publish(row.pk, step)
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
