"""Admin for workflow runs, step runs and the audit trail: read-only (actions go through the
pages and the API, which keep the audit trail); no secrets are stored on these rows."""

from django.contrib import admin

from apps.workflows.models import StepRun, WorkflowAction, WorkflowRun


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
