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
