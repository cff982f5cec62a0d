from apps.notifications.selectors import notification_unread_count


def notifications(request):
    """The unread count for the top bar, counted only when a template shows it."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or not request.user.is_authenticated:
        return {}

    def unread() -> int:
        membership = tenant.membership
        return notification_unread_count(membership=membership) if membership else 0

    return {"unread_notifications": unread}
