"""The budget form of the AI cost pages. The rules live in apps/monitoring/budgets.py; this form
parses the fields and shows the services' errors next to them."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.core.errors import ApplicationError
from apps.monitoring.budgets import MAX_THRESHOLD, thresholds_clean
from apps.monitoring.models import Budget


class BudgetForm(forms.Form):
    creator = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="Whole agency (all creators)",
        help_text="An agency-wide budget counts every AI call; a creator's budget counts that creator's calls.",
    )
    monthly_usd = forms.DecimalField(
        label="Monthly budget (USD)",
        max_digits=12,
        decimal_places=2,
        help_text="What AI may cost in a calendar month (UTC), e.g. 50.00.",
    )
    thresholds = forms.CharField(
        label="Alert at (% of the budget)",
        required=False,
        max_length=100,
        initial="50, 80, 100",
        help_text=f"Comma-separated whole percentages from 1 to {MAX_THRESHOLD}; owners and managers are told once "
        "a month as each is reached.",
    )
    hard_stop = forms.BooleanField(
        label="Hard stop: refuse AI requests once the budget is used up",
        required=False,
        help_text="Off: requests go on and only the alerts fire.",
    )

    def __init__(self, *args, membership: Membership, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["creator"].queryset = creator_list(membership=membership, include_archived=True)

    @classmethod
    def initial_for(cls, budget: Budget) -> dict:
        return {
            "creator": budget.creator_id,
            "monthly_usd": budget.monthly_usd,
            "thresholds": ", ".join(str(pct) for pct in budget.thresholds or []),
            "hard_stop": budget.hard_stop,
        }

    def clean_monthly_usd(self) -> Decimal:
        value = self.cleaned_data["monthly_usd"]
        if value is None or value <= 0:
            raise forms.ValidationError("The monthly budget must be more than $0.")
        return value

    def clean_thresholds(self) -> list[int]:
        try:
            return thresholds_clean(self.cleaned_data["thresholds"])
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
