"""What notifications does when something happens in a lower layer.

accounts (layer 1) cannot import this app (layer 2), so it announces its events as Django
signals (apps/accounts/signals.py) and this module, connected in ``NotificationsConfig.ready``,
turns them into notifications through the one service.
"""

from __future__ import annotations

from django.dispatch import receiver
from django.urls import reverse

from apps.accounts.signals import member_joined
from apps.notifications.models import Notification
from apps.notifications.services import notification_send


@receiver(member_joined, dispatch_uid="notifications.notify_inviter")
def notify_inviter(sender, *, membership, inviter, **kwargs) -> None:
    """Tell the member who sent an invitation that it was accepted."""
    if inviter is None:
        return
    notification_send(
        membership=inviter,
        title=f"{membership.user.get_full_name()} joined as {membership.get_role_display().lower()}",
        url=reverse("accounts:member-list"),
        level=Notification.Level.SUCCESS,
        kind="team",
    )
