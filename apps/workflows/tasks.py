"""Workflow tasks: the one generic step task and the recovery beat task (``workflows-recover``).

``run_step`` is published to the step's own queue by engine.py. It is safe to deliver twice (the
claim is a conditional UPDATE), so it is acknowledged late: a worker killed mid-step leaves the
message to the broker, and the recovery task to the step's claim.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(ignore_result=True, acks_late=True)
def run_step(step_run_id: int, timeout: int | None = None, idempotent: bool | None = None) -> str:
    """``timeout`` and ``idempotent``: the claim's terms (engine.py ``message_terms``); a message
    without them (sent before they existed) is run all the same."""
    from apps.workflows.engine import execute

    return execute(step_run_id, timeout=timeout, idempotent=idempotent)


@shared_task(queue="default", ignore_result=True)
def recover_workflows() -> dict[str, int]:
    from apps.workflows.engine import recover

    return recover()
