"""Workflow run events on the bus: ``workflow.run_changed`` whenever a run or one of its step runs
changes state (queued, claimed, finished, retried, skipped, cancelled, recovered); a claim only
when its step is still running RUNNING_NOTICE_SECONDS later (engine.py), a fast step's finish
standing for both.

Published once, in the transaction of the change (apps/core/events.py), to the run's Channels group
(``run_group``), which the run page's websocket (consumers.py) joins after checking the member may
see the run; the agency's SSE stream and subscribers receive it too. The payload carries ids and
states only, never a step's input or output: the page re-reads the run through its scoped selector.

Not here: what changes state (engine.py, services.py) and how the page is drawn (views.py).
"""

from __future__ import annotations

from apps.core.events import publish

RUN_CHANGED = "workflow.run_changed"


def run_group(run_id: int) -> str:
    """The Channels group of one run's live page."""
    return f"workflows.run.{run_id}"


def run_changed(*, run_id: int, agency_id: int, step: str = "", state: str = "") -> None:
    """Announce that a run (or its step ``step``, now in ``state``) changed; call inside the
    transaction of the change, so a rolled-back change announces nothing."""
    publish(
        RUN_CHANGED,
        agency_id=agency_id,
        payload={"run_id": run_id, "step": step, "state": state},
        groups=[run_group(run_id)],
    )
