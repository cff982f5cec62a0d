from django.contrib import admin

from apps.studio.models import ContentIdea, Generation, Post


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["creator", "agency", "platform", "category", "posted_at", "views", "likes", "revenue"]
    list_filter = ["platform", "category", "agency"]
    search_fields = ["caption", "creator__display_name", "agency__name"]
    list_select_related = ["creator", "agency"]
    date_hierarchy = "posted_at"


@admin.register(ContentIdea)
class ContentIdeaAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "creator",
        "agency",
        "category",
        "estimated_engagement",
        "trend_score",
        "is_favourite",
        "used_at",
    ]
    list_filter = ["category", "difficulty", "is_favourite", "agency"]
    search_fields = ["title", "description", "creator__display_name", "agency__name"]
    list_select_related = ["creator", "agency"]


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ["created_at", "creator", "agency", "type", "status", "provider", "model", "cost_usd", "degraded"]
    list_filter = ["type", "status", "degraded", "agency"]
    search_fields = ["text", "creator__display_name", "agency__name"]
    list_select_related = ["creator", "agency"]
    readonly_fields = ["created_at"]
