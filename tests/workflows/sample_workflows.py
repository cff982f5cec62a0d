"""Workflows used by the tests (and, through WORKFLOW_MODULES, by the real worker they start)."""

from __future__ import annotations

import time

from apps.workflows.definitions import Step, Workflow, register
from apps.workflows.errors import PermanentStepError, RetryableStepError


def _first(ctx):
    return {"value": ctx.input.get("start", 1)}


def _double(ctx):
    return {"value": ctx.deps["first"]["value"] * 2}


def _last(ctx):
    return {"value": ctx.deps["double"]["value"] + 1}


register(
    Workflow(
        "test_chain",
        steps=[
            Step("last", _last, depends_on=["double"]),
            Step("double", _double, depends_on=["first"]),
            Step("first", _first),
        ],
    )
)


register(
    Workflow(
        "test_branches",
        steps=[
            Step("items", lambda ctx: {"items": ctx.input["items"]}),
            Step(
                "only_if_asked", lambda ctx: {"ran": True}, depends_on=["items"], when=lambda ctx: ctx.input.get("ask")
            ),
            Step("after_condition", lambda ctx: {"saw": ctx.deps["only_if_asked"]}, depends_on=["only_if_asked"]),
            Step(
                "square",
                lambda ctx: ctx.item * ctx.item,
                depends_on=["items"],
                fan_out=lambda ctx: ctx.deps["items"]["items"],
            ),
            Step(
                "total",
                lambda ctx: {"squares": ctx.deps["square"], "sum": sum(ctx.deps["square"])},
                depends_on=["square"],
            ),
        ],
    )
)


def _refuse(ctx):
    raise PermanentStepError("The creator's persona is empty.")


register(
    Workflow(
        "test_permanent",
        steps=[
            Step("prepare", lambda ctx: {"ok": True}),
            Step("refuse", _refuse, depends_on=["prepare"]),
            Step("never", lambda ctx: {"ran": True}, depends_on=["refuse"]),
        ],
    )
)


def _flaky(ctx):
    if ctx.attempt <= ctx.input.get("fail_times", 1):
        raise RetryableStepError(f"provider busy (attempt {ctx.attempt})")
    return {"attempt": ctx.attempt}


register(Workflow("test_flaky", steps=[Step("flaky", _flaky, retries=2)]))


def _sleep(ctx):
    """Sleeps on its first attempt only: the attempt a test's SIGKILL interrupts."""
    if ctx.attempt == 1:
        time.sleep(ctx.input.get("seconds", 0))
    return {"slept": ctx.input.get("seconds", 0), "attempt": ctx.attempt}


register(
    Workflow(
        "test_slow",
        steps=[Step("slow", _sleep, timeout=3, retries=2, idempotent=True), Step("after", _first, depends_on=["slow"])],
    )
)
register(Workflow("test_slow_once", steps=[Step("slow", _sleep, timeout=3, retries=2, idempotent=False)]))
register(
    Workflow(
        "test_noop", steps=[Step(f"s{i}", lambda ctx: None, depends_on=[f"s{i - 1}"] if i else []) for i in range(10)]
    )
)
