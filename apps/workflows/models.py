"""Workflow runs, their step runs and the audit trail of what members did to them.

State lives here, not in Celery: a step run moves pending → queued → running → succeeded (or
failed, skipped, cancelled, needs_attention) only through conditional UPDATEs in engine.py, so two
workers, a worker and the recovery task, or a worker and a member pressing Cancel never both win.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.accounts.models import TenantQuerySet


class RunState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


ACTIVE_RUN_STATES = (RunState.PENDING, RunState.RUNNING)


class StepState(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    CANCELLED = "cancelled", "Cancelled"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


DONE_STEP_STATES = (StepState.SUCCEEDED, StepState.SKIPPED)


class WorkflowRun(models.Model):
    agency = models.ForeignKey("accounts.Agency", on_delete=models.CASCADE, related_name="+", db_index=True)
    workflow = models.CharField(max_length=100)
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.PENDING)
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The start request's key (the start form's one-time key, the API's Idempotency-Key): a
    # second request with the same key answers the run the first one started.
    request_key = models.CharField(max_length=64, blank=True, default="")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["agency", "-created_at"], name="wf_run_agency_created"),
            models.Index(fields=["agency", "state"], name="wf_run_agency_state"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["agency", "request_key"], condition=~models.Q(request_key=""), name="wf_run_one_per_request_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow} #{self.pk} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_RUN_STATES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class StepRun(models.Model):
    agency = models.ForeignKey("accounts.Agency", on_delete=models.CASCADE, related_name="+", db_index=True)
    # No index of its own: the unique (run, step, index) constraint's index starts with run_id.
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="step_runs", db_index=False)
    step = models.CharField(max_length=100)
    index = models.PositiveIntegerField(default=0, help_text="Position in a fan-out (0 for an ordinary step).")
    state = models.CharField(max_length=20, choices=StepState.choices, default=StepState.PENDING)
    input = models.JSONField(null=True, blank=True, help_text="The fan-out item this step run works on.")
    output = models.JSONField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True, help_text="When the step is due on its queue.")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["run_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step", "index"], name="wf_step_run_unique"),
        ]
        # Recovery's two searches (engine.recover). Partial, so a step run enters each only while
        # it is in that state: every step updates its row three times (queued, running, done), and
        # each update that is not HOT adds an entry to every index whose condition the new row meets.
        indexes = [
            models.Index(
                fields=["claim_expires_at"], condition=Q(state=StepState.RUNNING), name="wf_step_running_claims"
            ),
            models.Index(fields=["queued_at"], condition=Q(state=StepState.QUEUED), name="wf_step_queued_since"),
        ]

    def __str__(self) -> str:
        suffix = f"[{self.index}]" if self.index else ""
        return f"{self.step}{suffix} ({self.state})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class WorkflowAction(models.Model):
    """The audit trail: who started, retried, skipped or cancelled what, and what the recovery
    task did on its own (``actor`` empty)."""

    class Kind(models.TextChoices):
        START = "start", "Started"
        RETRY = "retry", "Retried a step"
        SKIP = "skip", "Skipped a step"
        CANCEL = "cancel", "Cancelled"
        RECOVER = "recover", "Recovered a step"

    agency = models.ForeignKey("accounts.Agency", on_delete=models.CASCADE, related_name="+", db_index=True)
    run = models.ForeignKey(WorkflowRun, on_delete=models.CASCADE, related_name="actions")
    step_run = models.ForeignKey(StepRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on run #{self.run_id}"
