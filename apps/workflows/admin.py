"""Admin for workflow definitions, runs, step runs and the audit trail: read-only (actions go
through the pages and the API, which keep the audit trail); no secrets are stored on these rows.

Definitions live in code (apps/workflows/workflows.py), not in the database: the runs' changelist
links to a page listing each one with its steps (dependencies, queue, timeout, retries,
idempotency, condition, fan-out) and its runs by state, each count linking to those runs."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.workflows import definitions
from apps.workflows.models import RunState, StepRun, WorkflowAction, WorkflowRun


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StepRunInline(admin.TabularInline):
    model = StepRun
    fields = (
        "step",
        "index",
        "state",
        "attempts",
        "error",
        "claimed_by",
        "claim_expires_at",
        "started_at",
        "finished_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(WorkflowRun)
class WorkflowRunAdmin(ReadOnly):
    list_display = ("id", "workflow", "agency", "state", "created_by", "created_at", "finished_at")
    list_filter = ("state", "workflow")
    search_fields = ("workflow", "agency__name", "error")
    list_select_related = ("agency", "created_by")
    readonly_fields = ("agency", "workflow", "state", "input", "output", "error", "created_by", "created_at",
                       "started_at", "finished_at")  # fmt: skip
    inlines = [StepRunInline]
    change_list_template = "admin/workflows/workflowrun/change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(self.definitions_view)
        return [path("definitions/", view, name="workflows_definitions"), *super().get_urls()]

    def definitions_view(self, request):
        """Every registered workflow with its steps and its runs by state (one aggregate query).
        Staff without the permission to view runs get the admin's own 403."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        counts: dict[str, dict[str, int]] = {}
        for row in WorkflowRun.objects.values("workflow", "state").annotate(n=Count("id")).order_by():
            counts.setdefault(row["workflow"], {})[row["state"]] = row["n"]
        changelist = reverse("admin:workflows_workflowrun_changelist")
        rows = []
        for workflow in definitions.all_workflows():
            by_state = counts.get(workflow.name, {})
            rows.append({
                "workflow": workflow,
                "steps": [  # plain values: a template would call the step's callables
                    {"column": column, "name": step.name, "label": step.label, "depends_on": list(step.depends_on),
                     "queue": step.queue, "timeout": step.timeout, "retries": step.retries,
                     "idempotent": step.idempotent, "fan_out": step.fan_out is not None,
                     "conditional": step.when is not None}
                    for column, level in enumerate(workflow.levels(), start=1) for step in level
                ],
                "total": sum(by_state.values()),
                "states": [(label, by_state.get(value, 0), f"{changelist}?workflow={workflow.name}&state={value}")
                           for value, label in RunState.choices],
                "runs_url": f"{changelist}?workflow={workflow.name}",
            })  # fmt: skip
        context = {**self.admin_site.each_context(request), "title": "Workflow definitions", "rows": rows,
                   "opts": self.model._meta}  # fmt: skip
        return TemplateResponse(request, "admin/workflows/definitions.html", context)


@admin.register(StepRun)
class StepRunAdmin(ReadOnly):
    list_display = ("id", "run", "agency", "step", "index", "state", "attempts", "claimed_by", "claim_expires_at")
    list_filter = ("state",)
    search_fields = ("step", "error", "claimed_by")
    list_select_related = ("run", "agency")
    raw_id_fields = ("run",)


@admin.register(WorkflowAction)
class WorkflowActionAdmin(ReadOnly):
    list_display = ("id", "run", "agency", "kind", "actor", "created_at")
    list_filter = ("kind",)
    search_fields = ("note", "actor__email")
    list_select_related = ("run", "agency", "actor")
