"""Workflow tasks: the one generic step task and the recovery beat task (``workflows-recover``).

``run_step`` is published to the step's own queue by engine.py. It is safe to deliver twice (the
claim is a conditional UPDATE), so it is acknowledged late: a worker killed mid-step leaves the
message to the broker, and the recovery task to the step's claim.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(bind=True, ignore_result=True, acks_late=True)
def run_step(self, step_run_id: int) -> str:
    """The claim's terms come in the message's headers (engine.py ``message_headers``); a message
    without them (sent by an older release) is run all the same."""
    from apps.workflows.engine import CLAIM_IDEMPOTENT_HEADER, CLAIM_TIMEOUT_HEADER, execute

    headers = self.request.headers or {}
    return execute(
        step_run_id, timeout=headers.get(CLAIM_TIMEOUT_HEADER), idempotent=headers.get(CLAIM_IDEMPOTENT_HEADER)
    )


@shared_task(queue="default", ignore_result=True)
def recover_workflows() -> dict[str, int]:
    from apps.workflows.engine import recover

    return recover()
