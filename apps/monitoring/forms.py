"""Forms of the monitoring pages: an SLO, an alert webhook.

Field errors, never a 500: an objective outside (0, 100), an unknown indicator, a latency SLO
without a threshold or with one that is not a histogram bound (SLO.clean()), a malformed webhook
URL or one pointing where the egress policy does not connect (apps/monitoring/webhooks.py).
"""

from __future__ import annotations

from django import forms

from apps.accounts.models import Agency
from apps.ai.egress import RefusedURL
from apps.core.metrics import BOUNDS_MS
from apps.monitoring import webhooks
from apps.monitoring.models import SLO

THRESHOLD_CHOICES = [("", "—")] + [(str(int(bound)), f"{bound:g} ms") for bound in BOUNDS_MS]


class SLOForm(forms.ModelForm):
    # A select of the histogram bounds: the indicator is exact only there (apps/monitoring/slo.py).
    threshold_ms = forms.TypedChoiceField(
        choices=THRESHOLD_CHOICES, coerce=int, empty_value=None, required=False, label="Latency threshold",
        help_text="AI latency only: a generation is good when it succeeds within this time.",
    )  # fmt: skip

    class Meta:
        model = SLO
        fields = ["name", "indicator", "objective", "window_days", "threshold_ms", "enabled"]
        labels = {"objective": "Objective (%)", "window_days": "Window"}

    def clean(self) -> dict:
        data = super().clean()
        if data.get("indicator") and data["indicator"] != SLO.Indicator.AI_LATENCY:
            data["threshold_ms"] = None  # only the latency indicator has one
            self.instance.threshold_ms = None
        return data


class WebhookForm(forms.Form):
    url = forms.URLField(
        label="URL", max_length=500, assume_scheme="https",
        help_text="An https endpoint that accepts a JSON POST; each one is signed (Huntaze-Signature header).",
    )  # fmt: skip
    description = forms.CharField(max_length=200, required=False)
    agency = forms.ModelChoiceField(
        queryset=Agency.objects.order_by("name"), required=False, empty_label="Service alerts (SLOs)",
        label="Alerts of", help_text="Service alerts, or one agency's alerts (its AI budgets).",
    )  # fmt: skip

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        try:
            webhooks.check_url(url)
        except RefusedURL as refusal:
            raise forms.ValidationError(refusal.message) from None
        return url
