from django.contrib import admin

from apps.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "agency", "level", "created_at", "read_at"]
    list_filter = ["agency", "level"]
    search_fields = ["title", "user__email"]
    list_select_related = ["user", "agency"]
