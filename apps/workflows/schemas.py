"""API shapes of workflows (docs/api-workflows.md)."""

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema

from apps.workflows import definitions
from apps.workflows.models import RunState

RunStateName = Literal[tuple(RunState.values)]  # type: ignore[valid-type]
# The built-in workflows, by name (a name the API does not know is a 422 naming the field).
WorkflowName = Literal[tuple(w.name for w in definitions.all_workflows() if not w.name.startswith("test_"))]  # type: ignore[valid-type]


class StepDefinitionOut(Schema):
    name: str
    title: str
    depends_on: list[str]
    queue: str
    timeout: int
    retries: int
    idempotent: bool
    conditional: bool
    fan_out: bool


class DefinitionOut(Schema):
    name: str
    title: str
    description: str
    steps: list[StepDefinitionOut]


class RunIn(Schema):
    workflow: WorkflowName = Field(..., description="A definition's name (GET /workflows/definitions).")
    input: dict[str, Any] = Field(
        default_factory=dict, description="The workflow's input (docs/workflows.md lists each built-in's)."
    )


class StepRunOut(Schema):
    id: int
    run_id: int
    step: str
    index: int
    state: str
    input: Any = None
    output: Any = None
    attempts: int
    error: str
    started_at: datetime | None
    finished_at: datetime | None


class RunOut(Schema):
    id: int
    workflow: str
    state: str
    input: dict[str, Any]
    output: Any = None
    error: str
    created_by_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunDetailOut(RunOut):
    steps: list[StepRunOut]
