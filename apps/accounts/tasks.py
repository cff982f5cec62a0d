"""Background work for accounts: invitation emails (queue ``interactive``: someone is waiting)."""

from __future__ import annotations

from celery import shared_task


@shared_task(
    queue="interactive",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def send_invitation_email(invitation_id: int) -> bool:
    """Email the invitation link. Idempotent: a sent or withdrawn invitation is left alone."""
    from apps.accounts.emails import invitation_email_send

    return invitation_email_send(invitation_id=invitation_id)
