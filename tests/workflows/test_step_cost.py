"""What one step costs the engine, and the claim's guarantees that the cheaper path keeps: a fixed
number of statements per step whatever the run's length, one event for a fast step and a "running"
announcement (before the finish) for a slow one, and one claim when two deliveries of a message
race (PostgreSQL, where they can)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from apps.core.models import OutboxEvent
from apps.workflows import definitions, engine, services
from apps.workflows.events import RUN_CHANGED
from apps.workflows.models import RunState, StepRun, StepState, WorkflowRun
from tests.conftest import build_world
from tests.workflows import sample_workflows  # noqa: F401  (registers the test workflows)

# Read with its run and siblings; claim (in the read on PostgreSQL, when the message carries the
# claim's terms); in one transaction: lock the run and store the result,
# read the step runs, queue the next step, write its event; mark the event dispatched. PostgreSQL
# adds the transaction's BEGIN and COMMIT to the count, SQLite its BEGIN IMMEDIATE.
MAX_STATEMENTS_PER_STEP = 9

pytestmark = pytest.mark.django_db(transaction=True)  # committed as a worker commits


def _queued(run_id: int) -> int:
    return StepRun.objects.filter(run_id=run_id, state=StepState.QUEUED).values_list("pk", flat=True).get()


def _headers(step_run_id: int) -> dict:
    """The headers a ``run_step`` message for this step run carries, as the engine sends them."""
    row = StepRun.objects.select_related("run").get(pk=step_run_id)
    return engine.message_headers(definitions.get(row.run.workflow).by_name[row.step])


def _terms(step_run_id: int) -> dict:
    """Those headers as ``execute``'s arguments (what ``run_step`` passes)."""
    headers = _headers(step_run_id)
    return {"timeout": headers[engine.CLAIM_TIMEOUT_HEADER], "idempotent": headers[engine.CLAIM_IDEMPOTENT_HEADER]}


def _statements_per_step(run_id: int, *, as_messages: bool = False) -> list[int]:
    counts = []
    while StepRun.objects.filter(run_id=run_id, state=StepState.QUEUED).exists():
        step_run_id = _queued(run_id)
        terms = _terms(step_run_id) if as_messages else {}
        with CaptureQueriesContext(connection) as queries:
            assert engine.execute(step_run_id, **terms) == "succeeded"
        counts.append(len(queries.captured_queries))
    return counts


def test_a_step_costs_the_same_few_statements_wherever_it_is_in_a_run_of_any_length(monkeypatch):
    # A no-op step stalled past the notice delay by a busy machine would announce itself too.
    monkeypatch.setattr(engine, "RUNNING_NOTICE_SECONDS", 30.0)
    world = build_world("Costs")
    short = services.run_start(membership=world.owner, workflow="test_chain", data={"start": 1})
    long = services.run_start(membership=world.owner, workflow="test_noop")
    short_counts, long_counts = _statements_per_step(short.pk), _statements_per_step(long.pk)
    assert len(short_counts) == 3 and len(long_counts) == 10
    # The last step settles the run (one more UPDATE) instead of queueing a next one.
    middle = short_counts[:-1] + long_counts[:-1]
    assert len(set(middle)) == 1 and middle[0] <= MAX_STATEMENTS_PER_STEP, (short_counts, long_counts)
    assert short_counts[-1] == long_counts[-1] <= MAX_STATEMENTS_PER_STEP
    for run in (short, long):
        run.refresh_from_db()
        assert run.state == RunState.SUCCEEDED
    # A fast step announces its finish only: one event per step (the last one's settles the run).
    events = OutboxEvent.objects.filter(kind=RUN_CHANGED, payload__run_id=long.pk)
    assert not events.filter(payload__state=StepState.RUNNING).exists()
    assert events.count() == 1 + 10  # the start's, then one per step
    assert not events.filter(dispatched_at__isnull=True).exists()


def test_a_message_carrying_the_claims_terms_claims_in_the_steps_first_statement():
    """The message says the step's timeout and whether it is idempotent, so on PostgreSQL the
    claim rides in the read: one statement fewer per step, with the same claim."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite has no UPDATE inside a WITH, so it reads, then claims")
    world = build_world("Terms")
    plain = services.run_start(membership=world.owner, workflow="test_noop")
    carried = services.run_start(membership=world.owner, workflow="test_noop")
    plain_counts = _statements_per_step(plain.pk)
    carried_counts = _statements_per_step(carried.pk, as_messages=True)
    assert [count + 1 for count in carried_counts] == plain_counts
    for run in (plain, carried):
        run.refresh_from_db()
        assert run.state == RunState.SUCCEEDED
        claims = StepRun.objects.filter(run=run).values_list("attempts", "claimed_by", "started_at")
        assert len(claims) == 10 and all(attempts == 1 and token and started for attempts, token, started in claims)


def test_a_published_step_carries_the_claims_terms_and_the_task_hands_them_to_the_claim():
    """What goes to the broker (Celery's publish signal sees the message's headers) and what the
    task makes of them: on PostgreSQL the step then costs one statement fewer."""
    from celery.signals import before_task_publish

    from apps.workflows.tasks import run_step

    world = build_world("Headers")
    run = services.run_start(membership=world.owner, workflow="test_slow_once", data={"seconds": 0})
    step_run_id = _queued(run.pk)
    step = definitions.get("test_slow_once").by_name["slow"]
    sent = []

    def seen(sender=None, headers=None, **kwargs) -> None:
        sent.append((sender, headers))

    before_task_publish.connect(seen)
    try:
        engine._publish(step_run_id, step)
    finally:
        before_task_publish.disconnect(seen)
    assert [(name, headers["argsrepr"]) for name, headers in sent] == [(run_step.name, repr([step_run_id]))]
    assert sent[0][1][engine.CLAIM_TIMEOUT_HEADER] == 3 and sent[0][1][engine.CLAIM_IDEMPOTENT_HEADER] is False

    other = services.run_start(membership=world.owner, workflow="test_slow_once", data={"seconds": 0})
    with CaptureQueriesContext(connection) as with_headers:
        assert run_step.apply(args=[step_run_id], headers=_headers(step_run_id)).get() == "succeeded"
    with CaptureQueriesContext(connection) as without:
        assert run_step.apply(args=[_queued(other.pk)]).get() == "succeeded"
    fewer = 1 if connection.vendor == "postgresql" else 0
    assert len(with_headers.captured_queries) + fewer == len(without.captured_queries)


def test_a_slow_step_announces_its_claim_before_its_finish():
    world = build_world("Announced")
    run = services.run_start(membership=world.owner, workflow="test_slow", data={"seconds": 0.5})
    slow = _queued(run.pk)
    assert engine.execute(slow) == "succeeded"
    deadline = time.monotonic() + 10  # the announcement's own dispatch runs on the notice thread
    while OutboxEvent.objects.filter(dispatched_at__isnull=True).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    kinds = list(
        OutboxEvent.objects.filter(kind=RUN_CHANGED, payload__run_id=run.pk)
        .order_by("id")
        .values_list("payload__step", "payload__state", "dispatched_at")
    )
    assert [(step, state) for step, state, _ in kinds] == [("", ""), ("slow", "running"), ("", "")]
    assert all(dispatched for _, _, dispatched in kinds)


@pytest.mark.parametrize("carried", [False, True], ids=["read-then-claim", "claim-in-read"])
def test_two_deliveries_of_one_message_claim_the_step_once(carried):
    """The second delivery reads the step run as queued, then waits on the row the first one is
    claiming; once that commits it must see the claim and change nothing (no second attempt)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the second claim reads after the first")
    world = build_world("Twice")
    run = services.run_start(membership=world.owner, workflow="test_slow_once", data={"seconds": 0})
    step_run_id = _queued(run.pk)
    claiming, release, outcome = threading.Event(), threading.Event(), {}

    def first_delivery() -> None:
        try:
            with transaction.atomic():
                StepRun.objects.filter(pk=step_run_id, state=StepState.QUEUED).update(
                    state=StepState.RUNNING, attempts=1, claimed_by="first-worker"
                )
                claiming.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    def second_delivery() -> None:
        try:
            terms = {"timeout": 3, "idempotent": False} if carried else {}
            outcome["second"] = engine.execute(step_run_id, worker="second-worker", **terms)
        finally:
            connections.close_all()

    first = threading.Thread(target=first_delivery)
    first.start()
    assert claiming.wait(10)
    second = threading.Thread(target=second_delivery)
    second.start()
    time.sleep(1.0)  # the second delivery has read the row and is waiting on its lock
    release.set()
    first.join(30)
    second.join(30)
    assert outcome["second"] == "not-claimed"
    row = StepRun.objects.get(pk=step_run_id)
    assert (row.state, row.attempts, row.claimed_by) == (StepState.RUNNING, 1, "first-worker")


def test_a_step_whose_kept_database_connection_died_reconnects_and_runs():
    """A worker's kept connection is not health-checked before each step (the step's first read is
    the check): when the server dropped it meanwhile, the step still runs, on a new connection."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: a server process to terminate under the kept connection")
    world = build_world("Reconnect")
    run = services.run_start(membership=world.owner, workflow="test_noop")
    step_run_id = _queued(run.pk)
    connection.ensure_connection()
    kept = connection.connection.info.backend_pid

    def terminate() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [kept])
        finally:
            connections.close_all()

    killer = threading.Thread(target=terminate)
    killer.start()
    killer.join(10)
    assert engine.execute(step_run_id) == "succeeded"
    assert connection.connection.info.backend_pid != kept
    assert StepRun.objects.get(pk=step_run_id).attempts == 1


def test_a_steps_statements_are_planned_once_per_connection_not_once_per_step(monkeypatch):
    """The statements every step runs (read, claim, store, read the states, queue the next, write
    its event) are prepared on the worker's connection the first time and reused after: a second
    run of ten steps prepares nothing more (apps/core/statements.py)."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite plans no statement on a server to keep")
    monkeypatch.setattr(engine, "RUNNING_NOTICE_SECONDS", 30.0)
    world = build_world("Prepared")

    def prepared() -> list[tuple[str, str]]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, statement FROM pg_prepared_statements")
            return sorted(cursor.fetchall())

    first = services.run_start(membership=world.owner, workflow="test_noop")
    assert len(_statements_per_step(first.pk)) == 10
    after_first = prepared()  # names too: one deallocated and prepared again would get a new name
    steps = [statement for _, statement in after_first if "workflows_steprun" in statement]
    assert any("WHERE s.run_id = (SELECT run_id FROM workflows_steprun WHERE id = $1)" in s for s in steps)
    assert any("SET state = $1, attempts = attempts + 1" in s for s in steps)  # the claim
    assert any(s.startswith('INSERT INTO "core_outboxevent"') for _, s in after_first)  # the step's event
    second = services.run_start(membership=world.owner, workflow="test_noop")
    assert len(_statements_per_step(second.pk)) == 10
    assert prepared() == after_first
    assert StepRun.objects.filter(run_id=second.pk, state=StepState.SUCCEEDED).count() == 10


def test_a_kept_connection_whose_prepared_read_a_migration_made_stale_reconnects_and_runs(monkeypatch):
    """A migration that changes a column the step's prepared read returns makes PostgreSQL refuse
    that prepared statement on connections that kept it ("cached plan must not change result
    type"); the worker's next step reconnects and runs instead of failing until the connection
    ages out."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite keeps no prepared statement on a server")
    monkeypatch.setattr(engine, "RUNNING_NOTICE_SECONDS", 30.0)
    world = build_world("Stale plan")
    run = services.run_start(membership=world.owner, workflow="test_noop")
    assert engine.execute(_queued(run.pk)) == "succeeded"  # the read is now prepared on this connection
    kept = connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE workflows_steprun ALTER COLUMN step TYPE varchar(101)")
    try:
        assert engine.execute(_queued(run.pk)) == "succeeded"
        assert connection.connection.info.backend_pid != kept
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE workflows_steprun ALTER COLUMN step TYPE varchar(100)")
    assert StepRun.objects.filter(run_id=run.pk, state=StepState.SUCCEEDED).count() == 2


def test_a_message_whose_terms_the_definition_no_longer_has_gets_the_definitions_claim():
    """A message queued under an older definition (longer timeout, idempotent) claims with its own
    terms; the worker then gives the claim the definition's expiry before the step runs."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: only there does the claim ride in the read with the message's terms")
    world = build_world("Changed")
    run = services.run_start(membership=world.owner, workflow="test_slow_once", data={"seconds": 2.0})
    step_run_id = _queued(run.pk)
    outcome = {}

    def deliver() -> None:
        try:
            outcome["result"] = engine.execute(step_run_id, timeout=86_400, idempotent=True)
        finally:
            connections.close_all()

    worker = threading.Thread(target=deliver)
    worker.start()
    seen = []  # the claim's length while the step runs
    deadline = time.monotonic() + 20
    while worker.is_alive() and time.monotonic() < deadline:
        row = StepRun.objects.get(pk=step_run_id)
        if row.state == StepState.RUNNING and row.claim_expires_at is not None:
            seen.append((row.claim_expires_at - row.started_at).total_seconds())
        time.sleep(0.02)
    worker.join(30)
    assert outcome["result"] == "succeeded"
    assert seen and 2.5 <= seen[-1] <= 3.5, seen  # the definition's 3 s, not the message's day


def test_a_message_for_a_step_this_process_does_not_know_leaves_it_queued_unclaimed():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: only there is the step claimed before its definition is read")
    world = build_world("Ghost")
    run = services.run_start(membership=world.owner, workflow="test_noop")
    ghost = StepRun.objects.create(
        agency=world.agency, run=run, step="ghost", index=0, state=StepState.QUEUED, input=None
    )
    with CaptureQueriesContext(connection) as queries:
        assert engine.execute(ghost.pk, timeout=300, idempotent=True) == "missing"
    # The read claimed it (server-bound statements are captured without their text), then undone:
    _read, undo = queries.captured_queries
    assert "running" in undo["sql"] and '"attempts" - 1' in undo["sql"] and "claimed_by" in undo["sql"]
    ghost.refresh_from_db()
    assert (ghost.state, ghost.attempts, ghost.claimed_by, ghost.claim_expires_at) == (StepState.QUEUED, 0, "", None)


@pytest.mark.parametrize("carried", [False, True], ids=["read-then-claim", "claim-in-read"])
def test_a_step_of_a_workflow_this_process_does_not_define_is_left_queued_for_a_worker_that_does(carried):
    world = build_world("Undefined")
    run = services.run_start(membership=world.owner, workflow="test_noop")
    WorkflowRun.objects.filter(pk=run.pk).update(workflow="added_by_the_next_release")
    step_run_id = _queued(run.pk)
    terms = {"timeout": 300, "idempotent": True} if carried else {}
    assert engine.execute(step_run_id, **terms) == "missing"
    row = StepRun.objects.get(pk=step_run_id)
    assert (row.state, row.attempts, row.claimed_by, row.claim_expires_at) == (StepState.QUEUED, 0, "", None)
    run.refresh_from_db()
    assert run.state == RunState.RUNNING
    WorkflowRun.objects.filter(pk=run.pk).update(workflow="test_noop")  # the worker that defines it
    assert engine.execute(step_run_id, **terms) == "succeeded"
