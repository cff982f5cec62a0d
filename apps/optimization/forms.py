"""Forms of the optimization pages: they parse and validate query strings and posts; the rules
live in services.py and imports.py, whose ApplicationErrors are shown next to the fields."""

from __future__ import annotations

from django import forms

from apps.accounts.models import Creator
from apps.optimization.models import Anomaly, Recommendation, Risk, Sensitivity, Severity, Strategy


def _choices(choices, empty: str) -> list[tuple[str, str]]:
    return [("", empty), *choices]


class AdviceOptionsForm(forms.Form):
    """The overview's strategy, risk and sensitivity selectors (query parameters). Blank means
    the creator's saved settings."""

    strategy = forms.ChoiceField(choices=_choices(Strategy.choices, "Saved setting"), required=False)
    risk = forms.ChoiceField(label="Risk tolerance", choices=_choices(Risk.choices, "Saved setting"), required=False)
    sensitivity = forms.ChoiceField(
        label="Anomaly sensitivity", choices=_choices(Sensitivity.choices, "Saved setting"), required=False
    )


class RecommendationFilterForm(forms.Form):
    status = forms.ChoiceField(choices=_choices(Recommendation.Status.choices, "Any status"), required=False)
    kind = forms.ChoiceField(label="Type", choices=_choices(Recommendation.Kind.choices, "Any type"), required=False)
    creator = forms.TypedChoiceField(coerce=int, choices=(), required=False, empty_value=None)

    def __init__(self, *args, creators: list[Creator], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["creator"].choices = [("", "All creators"), *((c.pk, c.display_name) for c in creators)]


class AnomalyFilterForm(forms.Form):
    status = forms.ChoiceField(choices=_choices(Anomaly.Status.choices, "Any status"), required=False)
    severity = forms.ChoiceField(choices=_choices(Severity.choices, "Any severity"), required=False)
    creator = forms.TypedChoiceField(coerce=int, choices=(), required=False, empty_value=None)

    def __init__(self, *args, creators: list[Creator], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["creator"].choices = [("", "All creators"), *((c.pk, c.display_name) for c in creators)]


class DismissForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False, strip=True)


class SettingsForm(forms.Form):
    creator = forms.TypedChoiceField(
        label="Applies to",
        coerce=int,
        choices=(),
        required=False,
        empty_value=None,
        help_text="The agency default applies to every creator without settings of their own.",
    )
    strategy = forms.ChoiceField(
        choices=Strategy.choices,
        help_text="Most revenue: the price that earns the most per fan. Most unlocks: the price most fans buy at "
        "while earning about as much. Balanced: in between.",
    )
    risk = forms.ChoiceField(
        label="Risk tolerance",
        choices=Risk.choices,
        help_text="Conservative plans on a pessimistic unlock rate, aggressive on an optimistic one.",
    )
    sensitivity = forms.ChoiceField(
        label="Anomaly sensitivity",
        choices=Sensitivity.choices,
        help_text="High flags smaller changes (more alerts), low only large ones.",
    )
    explore_prices = forms.BooleanField(
        label="Let PPV campaigns try nearby prices to learn faster",
        required=False,
    )

    def __init__(self, *args, creators: list[Creator], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["creator"].choices = [("", "Agency default"), *((c.pk, c.display_name) for c in creators)]


class ImportForm(forms.Form):
    KIND_CHOICES = (("daily", "Daily performance"), ("offers", "PPV offers"))

    kind = forms.ChoiceField(label="What the file holds", choices=KIND_CHOICES)
    creator = forms.TypedChoiceField(coerce=int, choices=())
    file = forms.FileField(label="CSV file (up to 5 MB)")

    def __init__(self, *args, creators: list[Creator], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["creator"].choices = [(c.pk, c.display_name) for c in creators]
