"""Background work for accounts: invitation and email verification emails (queue ``interactive``:
someone is waiting)."""

from __future__ import annotations

from celery import shared_task

# Account emails are retried only on network errors (SMTP unreachable), with backoff and jitter.
EMAIL_TASK = {
    "queue": "interactive",
    "autoretry_for": (OSError,),
    "retry_backoff": True,
    "retry_jitter": True,
    "max_retries": 5,
}


@shared_task(**EMAIL_TASK)
def send_invitation_email(invitation_id: int) -> bool:
    """Email the invitation link. Idempotent: a sent or withdrawn invitation is left alone."""
    from apps.accounts.emails import invitation_email_send

    return invitation_email_send(invitation_id=invitation_id)


@shared_task(**EMAIL_TASK)
def send_verification_email(user_id: int) -> bool:
    """Email the verification link. A verified address is left alone, so a retry sends nothing."""
    from apps.accounts.emails import verification_email_send

    return verification_email_send(user_id=user_id)


@shared_task(queue="bulk", acks_late=True)
def build_data_export(export_id: int) -> bool:
    """Build a user's data export. Idempotent: only the run that claims the pending row works."""
    from apps.accounts.data_export import data_export_build

    return data_export_build(export_id=export_id)


@shared_task(queue="bulk")
def purge_expired_data_exports() -> int:
    """Drop the ZIPs of data exports past DATA_EXPORT_TTL_HOURS (scheduled hourly by beat)."""
    from apps.accounts.data_export import data_exports_purge_expired

    return data_exports_purge_expired()
