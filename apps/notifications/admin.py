from django.contrib import admin

from apps.notifications.models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "agency", "kind", "level", "created_at", "read_at"]
    list_filter = ["agency", "kind", "level"]
    search_fields = ["title", "user__email"]
    list_select_related = ["user", "agency"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "in_app", "email", "updated_at"]
    list_filter = ["kind", "in_app", "email"]
    search_fields = ["user__email"]
    list_select_related = ["user"]
