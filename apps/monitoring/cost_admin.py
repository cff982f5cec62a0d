"""Budget admin. apps/monitoring/admin.py imports this module (Django's admin discovers only
``admin`` modules). Edits here reach the gateway's check at once: the cached budget configuration
of the agency (and of the agency a budget moved from) is forgotten once the admin's transaction
commits, and a budget moved to another scope has its month's counters seeded again."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from apps.core.errors import ApplicationError
from apps.monitoring.budgets import budget_changed_on_commit, forget_config_on_commit, thresholds_clean
from apps.monitoring.models import Budget


class BudgetAdminForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["agency", "creator", "monthly_usd", "thresholds", "hard_stop"]

    def clean_thresholds(self):
        try:
            return thresholds_clean(self.cleaned_data.get("thresholds"))
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None

    def clean(self):
        cleaned = super().clean()
        creator, agency = cleaned.get("creator"), cleaned.get("agency")
        if creator is not None and agency is not None and creator.agency_id != agency.pk:
            self.add_error("creator", "This creator belongs to another agency.")
        return cleaned


@admin.register(Budget)
class BudgetAdmin(admin.ModelAdmin):
    form = BudgetAdminForm
    list_display = ("agency", "creator", "monthly_usd", "thresholds", "hard_stop", "updated_at")
    list_filter = ("hard_stop",)
    search_fields = ("agency__name", "creator__display_name")
    list_select_related = ("agency", "creator")
    raw_id_fields = ("agency", "creator")

    def save_model(self, request, obj, form, change) -> None:
        before = Budget.objects.filter(pk=obj.pk).values_list("agency_id", "creator_id").first() if change else None
        super().save_model(request, obj, form, change)
        old_agency_id, old_creator_id = before or (None, None)
        budget_changed_on_commit(obj, old_agency_id=old_agency_id, old_creator_id=old_creator_id)

    def delete_model(self, request, obj) -> None:
        agency_id = obj.agency_id
        super().delete_model(request, obj)
        forget_config_on_commit(agency_id)

    def delete_queryset(self, request, queryset) -> None:
        agency_ids = set(queryset.values_list("agency_id", flat=True))
        super().delete_queryset(request, queryset)
        forget_config_on_commit(*agency_ids)
