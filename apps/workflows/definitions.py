"""Workflow definitions in code: ``Workflow(name, steps=[Step(...)])`` and the registry of them.

A workflow is a DAG of named steps. Each step names a plain function ``fn(ctx) -> JSON`` that the
generic ``run_step`` Celery task (tasks.py) runs on the step's queue, with a timeout (how long a
worker's claim on it lasts), a retry budget for transient errors and an idempotency flag (may the
recovery task run it again after a worker died mid-step?). ``when`` makes a step conditional (false:
skipped); ``fan_out`` turns it into one step run per item of a list, and the steps after it receive
the list of outputs.

Definitions are checked when they are registered: a duplicate step, an unknown dependency, a cycle,
an unknown queue or a bad timeout raises ``ImproperlyConfigured`` naming the steps, so a broken
definition stops the process at start-up rather than a run in the middle of the night.

Discovery follows apps/core/registry.py: every app may have a ``workflows.py`` that calls
``register``; ``WORKFLOW_MODULES`` (settings) names extra modules (tests use it to give a real
worker their sample workflows). Not here: execution (engine.py) and persistence (models.py).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# The queues huntaze/celery.py declares (apps never import the project package).
QUEUES = ("interactive", "default", "bulk")


@dataclass
class StepContext:
    """What a step function receives: the run's input, its dependencies' outputs (a list of
    outputs for a fan-out dependency), its own fan-out item and who started the run."""

    run_id: int
    step_run_id: int
    agency_id: int
    user_id: int | None
    input: dict[str, Any]
    deps: dict[str, Any]
    item: Any = None
    attempt: int = 1

    def membership(self):
        """The membership of the member who started the run (a step acts in their name)."""
        from apps.accounts.models import Membership
        from apps.workflows.errors import PermanentStepError

        found = Membership.objects.filter(agency_id=self.agency_id, user_id=self.user_id).first()
        if found is None:
            raise PermanentStepError("The member who started this run is no longer in the agency.")
        return found


@dataclass(frozen=True)
class Step:
    name: str
    task: Callable[[StepContext], Any]
    depends_on: tuple[str, ...] | list[str] = ()
    queue: str = "default"
    timeout: int = 300
    retries: int = 2
    idempotent: bool = True
    when: Callable[[StepContext], bool] | None = None
    fan_out: Callable[[StepContext], list] | None = None
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()


@dataclass
class Workflow:
    name: str
    steps: list[Step]
    title: str = ""
    description: str = ""
    # clean_input(membership, raw: dict) -> dict: validated input, or ApplicationError naming the field.
    clean_input: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None
    # Runs whose output only those who manage the agency may read (Perm.EDIT: owners, managers),
    # such as the agency's AI spend; other runs are read as apps/workflows/selectors.py says.
    managers_only: bool = False
    by_name: dict[str, Step] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name = {}
        validate(self)

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()

    def dependents(self, name: str) -> list[Step]:
        return [step for step in self.steps if name in step.depends_on]

    def levels(self) -> list[list[Step]]:
        """Steps grouped by depth (a step sits one column after its deepest dependency): the
        columns of the DAG drawn on the run page."""
        depth: dict[str, int] = {}
        for step in self.steps:  # validate() left self.steps in dependency order
            depth[step.name] = 1 + max((depth[dep] for dep in step.depends_on), default=-1)
        columns: list[list[Step]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
        for step in self.steps:
            columns[depth[step.name]].append(step)
        return columns


def validate(workflow: Workflow) -> None:
    """Refuse a definition that could not run, naming what is wrong; order steps topologically."""
    prefix = f"Workflow {workflow.name!r}"
    if not workflow.name or not workflow.name.replace("_", "").replace("-", "").isalnum():
        raise ImproperlyConfigured(f"{prefix}: a workflow name is letters, digits, '-' and '_'.")
    if not workflow.steps:
        raise ImproperlyConfigured(f"{prefix} has no steps.")
    names: dict[str, Step] = {}
    for step in workflow.steps:
        if step.name in names:
            raise ImproperlyConfigured(f"{prefix}: step {step.name!r} is defined twice.")
        if not step.name or len(step.name) > 100:
            raise ImproperlyConfigured(f"{prefix}: every step needs a name of at most 100 characters.")
        if not callable(step.task):
            raise ImproperlyConfigured(f"{prefix}: step {step.name!r} has no callable task.")
        if step.queue not in QUEUES:
            raise ImproperlyConfigured(f"{prefix}: step {step.name!r} uses unknown queue {step.queue!r} ({QUEUES}).")
        if step.timeout < 1 or step.retries < 0:
            raise ImproperlyConfigured(f"{prefix}: step {step.name!r} needs timeout >= 1 s and retries >= 0.")
        names[step.name] = step
    for step in workflow.steps:
        for dep in step.depends_on:
            if dep not in names:
                raise ImproperlyConfigured(f"{prefix}: step {step.name!r} depends on unknown step {dep!r}.")
            if dep == step.name:
                raise ImproperlyConfigured(f"{prefix}: step {step.name!r} depends on itself.")
    ordered: list[Step] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = [*path[path.index(name) :], name]
            raise ImproperlyConfigured(f"{prefix} has a cycle (each step depends on the next): {' -> '.join(cycle)}.")
        state[name] = "visiting"
        for dep in names[name].depends_on:
            visit(dep, [*path, name])
        state[name] = "done"
        ordered.append(names[name])

    for step in workflow.steps:
        visit(step.name, [])
    workflow.steps = ordered
    workflow.by_name = names


_registry: dict[str, Workflow] = {}
_discovered = False


def register(workflow: Workflow) -> Workflow:
    """Add a definition (already validated by ``Workflow``); a second one of the same name is an error."""
    existing = _registry.get(workflow.name)
    if existing is not None and existing is not workflow:
        raise ImproperlyConfigured(f"Workflow {workflow.name!r} is registered twice.")
    _registry[workflow.name] = workflow
    return workflow


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    from django.conf import settings

    from apps.core.registry import app_modules

    app_modules("workflows")
    for module in getattr(settings, "WORKFLOW_MODULES", []):
        importlib.import_module(module)
    _discovered = True


def all_workflows() -> list[Workflow]:
    _discover()
    return sorted(_registry.values(), key=lambda workflow: workflow.label)


def managers_only() -> list[str]:
    """The names of the workflows whose runs only members with Perm.EDIT may read."""
    _discover()
    return sorted(name for name, workflow in _registry.items() if workflow.managers_only)


def get(name: str) -> Workflow | None:
    _discover()
    return _registry.get(name)
