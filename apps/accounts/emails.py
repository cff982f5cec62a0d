"""Emails sent by accounts. Rendered from templates/accounts/email/."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Invitation, User
from apps.accounts.selectors import EMAIL_VERIFICATION_MAX_AGE, email_verification_token, invitation_token


def invitation_url(invitation: Invitation) -> str:
    return settings.SITE_URL + reverse("accounts:invitation-accept", args=[invitation_token(invitation)])


def invitation_email_send(*, invitation_id: int) -> bool:
    """Send once: claim the invitation with a conditional update, then send."""
    claimed = Invitation.objects.filter(
        pk=invitation_id, email_sent_at__isnull=True, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(email_sent_at=timezone.now())
    if not claimed:
        return False
    invitation = Invitation.objects.select_related("agency", "invited_by").get(pk=invitation_id)
    context = {
        "invitation": invitation,
        "url": invitation_url(invitation),
        "days": settings.INVITATION_MAX_AGE // 86400,
    }
    try:
        send_mail(
            subject=f"You're invited to join {invitation.agency.name} on Huntaze",
            message=render_to_string("accounts/email/invitation.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[invitation.email],
        )
    except Exception:
        Invitation.objects.filter(pk=invitation_id).update(email_sent_at=None)
        raise
    return True


def verification_url(user: User) -> str:
    return settings.SITE_URL + reverse("accounts:email-verify", args=[email_verification_token(user)])


def verification_email_send(*, user_id: int) -> bool:
    """Email a verification link, unless the address is verified already (a resend that raced a
    click, or a retried task)."""
    user = User.objects.filter(pk=user_id, email_verified_at__isnull=True, is_active=True).first()
    if user is None:
        return False
    context = {"user": user, "url": verification_url(user), "days": EMAIL_VERIFICATION_MAX_AGE // 86400}
    send_mail(
        subject="Confirm your email address for Huntaze",
        message=render_to_string("accounts/email/verify_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    return True
