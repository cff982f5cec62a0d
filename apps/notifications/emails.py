"""The email copy of a notification, for members whose preferences ask for one."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from apps.accounts.models import Agency, User


def notification_email_send(*, user_id: int, agency_id: int, title: str, body: str, url: str) -> bool:
    """Send it to the user's address; False when the user or agency is gone or deactivated."""
    user = User.objects.filter(pk=user_id, is_active=True).first()
    agency = Agency.objects.filter(pk=agency_id).first()
    if user is None or agency is None:
        return False
    link = settings.SITE_URL + url if url.startswith("/") else ""
    context = {"user": user, "agency": agency, "title": title, "body": body, "link": link}
    context["settings_url"] = settings.SITE_URL + reverse("notifications:preferences")
    send_mail(
        # One line: a newline in a name or title is a header Django refuses (BadHeaderError), losing the email.
        subject=" ".join(f"[{agency.name}] {title}".split()),
        message=render_to_string("notifications/email/notification.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    return True
