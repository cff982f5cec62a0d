"""The errors a step raises to say how its failure should be handled.

- ``PermanentStepError`` (an ``ApplicationError``, as is any other ``ApplicationError`` a service
  raises): the step failed for a reason retrying will not change; the run fails with this message.
- ``RetryableStepError`` (or any other exception): transient; retried with backoff up to the
  step's ``retries``, then the step and the run fail with the last error.
"""

from __future__ import annotations

from apps.core.errors import ApplicationError, ConflictError


class PermanentStepError(ApplicationError):
    code = "step_failed"


class RetryableStepError(Exception):
    pass


class WorkflowStateError(ConflictError):
    """An action that does not fit the run's or step's current state (retry a succeeded step)."""
