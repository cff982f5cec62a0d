"""Workflow engine (issue 16's Speed section, the engine half): overhead per step of
apps/workflows against a bare Celery chain of the same no-op tasks, Redis as the broker and one
real worker process (``--pool=solo``, prefetch 1, queue ``default``).

- bare: ``chain(noop.si() x STEPS)`` published and waited for (``.get()`` on the chain's result in
  Redis); per step = wall time / STEPS.
- engine: a workflow of STEPS no-op steps in a line (``bench_noop``), started with
  ``engine.run_create``; per step = (finished_at - started_at) / STEPS from the run's own
  timestamps, so this process's polling is not counted. Each step is the generic ``run_step``
  task: read the step run with its run and siblings (one SELECT), claim it (conditional UPDATE,
  its own commit), call the function, then in one transaction lock the run and store the output
  (one UPDATE), read its step runs, queue the next step (conditional UPDATE) and write the
  ``workflow.run_changed`` event, publish the next step on commit and dispatch the event as the
  default EVENTS_DISPATCH_ON_COMMIT=inline does (one UPDATE marks it). No "running" event: a no-op
  step ends long before RUNNING_NOTICE_SECONDS. On PostgreSQL these steps are idempotent, so their
  claim and result commit without waiting for the disk, as production's idempotent steps do.

``step_overhead_p50_ms`` = the median over engine runs of (engine per step - the mean per step of
the two bare chains run just before and after it): paired samples, as the runs alternate bare,
engine, bare, …, bare. Target: ≤ 5 ms.

The database is SQLite under a private var/ directory unless DATABASE_URL is set (then database
``hz_bench_workflow_steps`` on that server); Redis is REDIS_URL, default redis://127.0.0.1:6379/0,
under a private key prefix deleted at the end. Prints a table, then one JSON line; exits 1 when
the target is missed. Usage:

    python bench/workflow_steps.py [--quick]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres python bench/workflow_steps.py [--quick]
    BENCH_WORKER_PROFILE=/tmp/worker.prof python bench/workflow_steps.py --quick   # cProfile the worker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from celery import shared_task  # noqa: E402

from apps.workflows.definitions import Step, Workflow, register  # noqa: E402

STEPS = 20
TARGET_MS = 5.0


@shared_task(name="bench.workflow_steps.noop", ignore_result=False)
def noop() -> None:
    return None


def _nothing(ctx) -> None:
    return None


register(
    Workflow(
        "bench_noop",
        steps=[Step(f"s{i:02d}", _nothing, depends_on=[f"s{i - 1:02d}"] if i else [], retries=0) for i in range(STEPS)],
    )
)


def _worker(env: dict[str, str]) -> subprocess.Popen:
    # BENCH_WORKER_PROFILE=<file>: run the worker under cProfile, the profile written at its exit.
    profile = os.environ.get("BENCH_WORKER_PROFILE")
    args = [
        sys.executable, *(["-m", "cProfile", "-o", profile] if profile else []),
        "-m", "celery", "-A", "huntaze", "worker", "-Q", "default", "--pool=solo",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=WARNING",
        "--include", "bench.workflow_steps",
    ]  # fmt: skip
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(worker_pid: int) -> dict[int, tuple[str, float]] | None:
    """CPU time (user + system) so far of the worker process and of every PostgreSQL and Redis
    server process, by pid, from /proc (Linux; None elsewhere). Less noisy than wall time on a
    shared machine: a step's CPU does not grow when another tenant takes the core. Every
    PostgreSQL process counts (the WAL writer's work is a commit's too), so nothing else should
    use the server meanwhile."""
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    found: dict[int, tuple[str, float]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        pid = int(entry.name)
        kind = (
            "worker" if pid == worker_pid
            else "postgres" if name == "postgres" else "redis" if name == "redis-server" else None
        )  # fmt: skip
        if kind:
            found[pid] = (kind, (int(fields[11]) + int(fields[12])) / _TICK)  # utime, stime
    return found


def _vacuum() -> None:
    """PostgreSQL: clear the dead rows earlier runs left in the tables a step writes, and refresh
    their statistics, as autovacuum would between runs in any deployment (it may be off on a
    benchmark machine: then each run would start slower than the last)."""
    from django.db import connection

    from apps.core.models import OutboxEvent
    from apps.workflows.models import StepRun, WorkflowRun

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for model in (StepRun, WorkflowRun, OutboxEvent):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(model._meta.db_table)}")


def _per_step(used: dict[str, float], steps: int) -> dict[str, float]:
    return {name: round(seconds * 1000 / steps, 3) for name, seconds in sorted(used.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (well under 60 s)")
    parser.add_argument("--runs", type=int, default=None, help="runs of each kind (default 30; --quick 8)")
    args = parser.parse_args(argv)
    runs = args.runs or (8 if args.quick else 30)
    started = time.monotonic()

    from bench._support import configure_django, delete_redis_keys

    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    prefix = f"hz-bench-steps-{uuid.uuid4().hex[:8]}"
    var_dir = ROOT / "var" / "bench-workflow-steps"  # kept: later runs skip the migrations
    mode = configure_django(
        var_dir,
        "hz_bench_workflow_steps",
        {
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": prefix,
        },
    )  # fmt: skip  (the worker imports this module with --include; here it is __main__)
    import django

    django.setup()
    from celery import chain
    from django.core.management import call_command

    from apps.accounts.models import Agency
    from apps.workflows import definitions, engine
    from apps.workflows.models import RunState

    call_command("migrate", verbosity=0)
    _vacuum()
    agency = Agency.objects.create(name=f"Bench steps {prefix}")
    workflow = definitions.get("bench_noop")
    worker = _worker({**os.environ, "PYTHONPATH": str(ROOT)})
    bare_ms: list[float] = []
    engine_ms: list[float] = []
    cpu: dict[str, dict[str, float]] = {"bare": {}, "engine": {}}
    try:
        # Warm up: the worker is up once a task comes back; one engine run loads its code paths.
        noop.si().apply_async(queue="default").get(timeout=60)
        warm = engine.run_create(agency_id=agency.pk, user_id=None, workflow=workflow, data={})
        if engine.wait_for(warm.pk, timeout=60).state != RunState.SUCCEEDED:
            raise RuntimeError("the warm-up run did not succeed")

        def measured(kind: str, body) -> None:  # adds the CPU that ``body`` cost to cpu[kind]
            before = _cpu_seconds(worker.pid)
            body()
            after = _cpu_seconds(worker.pid)
            if before is not None and after is not None:  # per process: one that ended takes nothing away
                for pid, (name, seconds) in after.items():
                    spent = seconds - (before[pid][1] if pid in before else 0.0)
                    cpu[kind][name] = cpu[kind].get(name, 0.0) + spent

        def bare_run() -> None:
            t0 = time.perf_counter()
            chain(*(noop.si() for _ in range(STEPS))).apply_async(queue="default").get(timeout=60)
            bare_ms.append((time.perf_counter() - t0) * 1000 / STEPS)

        def engine_run() -> None:
            run = engine.run_create(agency_id=agency.pk, user_id=None, workflow=workflow, data={})
            run = engine.wait_for(run.pk, timeout=60)
            if run.state != RunState.SUCCEEDED:
                raise RuntimeError(f"run {run.pk} ended {run.state}: {run.error}")
            engine_ms.append((run.finished_at - run.started_at).total_seconds() * 1000 / STEPS)

        measured("bare", bare_run)
        for _ in range(runs):  # bare, engine, bare, …, bare: each engine run between two bare ones
            measured("engine", engine_run)
            measured("bare", bare_run)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        delete_redis_keys(redis_url, prefix)

    bare_p50 = statistics.median(bare_ms)
    # Paired: each engine run against the mean of the bare runs just before and after it, so a slow
    # spell of this shared machine raises both sides of one difference instead of one side only.
    overheads = sorted(value - (bare_ms[i] + bare_ms[i + 1]) / 2 for i, value in enumerate(engine_ms))
    result = {
        "bench": "workflow_steps",
        "mode": mode,
        "database": "postgresql" if mode == "services" else "sqlite",
        "broker": "redis",
        "steps_per_run": STEPS,
        "runs": runs,
        "bare_chain_step_p50_ms": round(bare_p50, 3),
        "engine_step_p50_ms": round(statistics.median(engine_ms), 3),
        "step_overhead_p50_ms": round(statistics.median(overheads), 3),
        "step_overhead_max_ms": round(overheads[-1], 3),
        # CPU per step (ms) of the worker, PostgreSQL and Redis, engine against bare: the cost the
        # wall time above carries, without the noise of a shared machine.
        "cpu_ms_per_step": {
            kind: _per_step(used, STEPS * len(bare_ms if kind == "bare" else engine_ms)) for kind, used in cpu.items()
        },
        "target_ms": TARGET_MS,
        "seconds": round(time.monotonic() - started, 1),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }
    print(f"{'':<28}{'p50 ms/step':>12}")
    print(f"{'bare Celery chain':<28}{result['bare_chain_step_p50_ms']:>12.3f}")
    print(f"{'workflow engine':<28}{result['engine_step_p50_ms']:>12.3f}")
    print(f"{'overhead (target <= 5 ms)':<28}{result['step_overhead_p50_ms']:>12.3f}")
    result["ok"] = result["step_overhead_p50_ms"] <= TARGET_MS
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
