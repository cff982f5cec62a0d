"""Forms of the fan CRM pages: fan filters (one field per segment key), segments, templates,
the fan rules, CSV imports and the audit log's filters.

Shape only. The filter keys are validated by ``segments.segment_filters_parse``, templates by
``templating.template_variables`` and the rules' order by ``library.fan_rules_update``; their
ApplicationErrors land on the field they name (``add_service_error``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from apps.core.errors import ApplicationError, form_add_error
from apps.core.timezones import FIRST_YEAR, LAST_YEAR, moment_in_range
from apps.messaging.library import RULE_LABELS
from apps.messaging.models import ImportKind, Platform, Source, SubscriptionState, TemplateCategory
from apps.messaging.segments import SegmentFilters, segment_filters_parse
from apps.messaging.tiers import Lifecycle, Tier

DAYS = {"min_value": 1, "max_value": 3650, "required": False}
MONEY = {"min_value": 0, "max_digits": 12, "decimal_places": 2, "required": False}
FILTER_KEYS = tuple(SegmentFilters.model_fields)


def add_service_error(form: forms.Form, error: ApplicationError) -> None:
    """An ApplicationError on the form field it names; a segment filter error names its key
    (``extra["key"]``, e.g. ``tiers.0``), which is the form field of the same name."""
    key = str(error.extra.get("key", "")).split(".")[0]
    if key in form.fields:
        form.add_error(key, error.message)
    else:
        form_add_error(form, error)


class SegmentFilterFields(forms.Form):
    """One field per documented segment key (segments.py); ``filters()`` gives the JSON object."""

    tiers = forms.MultipleChoiceField(
        label="Spend tier", required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(t.value, t.label) for t in reversed(list(Tier))],
    )  # fmt: skip
    lifecycles = forms.MultipleChoiceField(
        label="Lifecycle", required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(s.value, s.label) for s in Lifecycle],
    )  # fmt: skip
    subscription_states = forms.MultipleChoiceField(
        label="Subscription", required=False, widget=forms.CheckboxSelectMultiple, choices=SubscriptionState.choices
    )
    platforms = forms.MultipleChoiceField(
        label="Platform", required=False, widget=forms.CheckboxSelectMultiple, choices=Platform.choices
    )
    tags = forms.CharField(label="Any of these tags", required=False, max_length=2000, help_text="Separated by commas.")
    spent_min = forms.DecimalField(label="Spent at least", **MONEY)
    spent_max = forms.DecimalField(label="Spent at most", **MONEY)
    purchased_within_days = forms.IntegerField(label="Bought in the last … days", **DAYS)
    no_purchase_for_days = forms.IntegerField(label="Bought nothing for … days", **DAYS)
    active_within_days = forms.IntegerField(label="Active in the last … days", **DAYS)
    inactive_for_days = forms.IntegerField(label="Inactive for … days", **DAYS)

    def clean_tags(self) -> list[str]:
        return [tag.strip().lower() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]

    def filters(self) -> dict[str, Any]:
        """The given keys as a segment's filters object (empty values left out)."""
        out: dict[str, Any] = {}
        for key in FILTER_KEYS:
            value = self.cleaned_data.get(key)
            if value in (None, "", []):
                continue
            out[key] = str(value) if isinstance(value, Decimal) else value
        return out

    def parsed(self) -> SegmentFilters | None:
        """The validated filters, or None with the error on the field it names."""
        try:
            return segment_filters_parse(self.filters())
        except ApplicationError as error:
            add_service_error(self, error)
            return None

    @staticmethod
    def initial_from(filters: Any) -> dict[str, Any]:
        """The form's initial values from saved filters, also from ones that no longer parse
        (their page says so): what is not a filter key or not a list of tags is left out."""
        if not isinstance(filters, dict):
            return {}
        initial = {key: value for key, value in filters.items() if key in FILTER_KEYS}
        if "tags" in initial:
            tags = initial["tags"]
            initial["tags"] = ", ".join(str(tag) for tag in tags) if isinstance(tags, list) else ""
        return initial


def _creator_choices(creators, empty: str) -> list[tuple[Any, str]]:
    return [("", empty), *[(c.pk, c.display_name) for c in creators]]


class FanFilterForm(SegmentFilterFields):
    """The fan list: creator, a saved segment, a search and the ad-hoc filters (query string)."""

    q = forms.CharField(label="Search", required=False, max_length=80)
    creator = forms.TypedChoiceField(label="Creator", required=False, coerce=int, empty_value=None)
    segment = forms.TypedChoiceField(label="Segment", required=False, coerce=int, empty_value=None)

    def __init__(self, data, *, creators, segments, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.fields["creator"].choices = _creator_choices(creators, "All creators")
        self.fields["segment"].choices = [("", "All fans"), *[(s.pk, s.name) for s in segments]]
        self.segments = {s.pk: s for s in segments}


class SegmentForm(SegmentFilterFields):
    name = forms.CharField(label="Name", max_length=80)
    creator = forms.TypedChoiceField(
        label="Creator", required=False, coerce=int, empty_value=None,
        help_text="All creators: the segment spans every creator its reader may see.",
    )  # fmt: skip
    field_order = ["name", "creator"]

    def __init__(self, *args, creators, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["creator"].choices = _creator_choices(creators, "All creators")
        self.creators = {c.pk: c for c in creators}


class TemplateForm(forms.Form):
    name = forms.CharField(label="Name", max_length=80)
    category = forms.ChoiceField(label="Category", choices=TemplateCategory.choices, initial=TemplateCategory.CUSTOM)
    creator = forms.TypedChoiceField(
        label="Creator", required=False, coerce=int, empty_value=None,
        help_text="All creators: shared by every creator of the agency.",
    )  # fmt: skip
    text = forms.CharField(
        label="Text", max_length=2000, widget=forms.Textarea(attrs={"rows": 6}),
        help_text="Variables such as {fan.first_name|babe}: the value, or the fallback after | when it is empty. "
        "Write {{ or }} for a literal brace.",
    )  # fmt: skip

    def __init__(self, *args, creators, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["creator"].choices = _creator_choices(creators, "All creators")
        self.creators = {c.pk: c for c in creators}


class TemplatePreviewForm(forms.Form):
    text = forms.CharField(label="Text", max_length=2000, required=False, strip=False)
    fan = forms.TypedChoiceField(label="Preview for", coerce=int, empty_value=None, required=False)

    def __init__(self, *args, fans, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["fan"].choices = [("", "Choose a fan…"), *[(f.pk, f"{f.name} (@{f.username})") for f in fans]]
        self.fans = {f.pk: f for f in fans}


RULE_HELP = {
    "whale_min": "Lifetime spend from which a fan is a whale.",
    "high_min": "Lifetime spend from which a fan is high (below the whale threshold).",
    "mid_min": "Lifetime spend from which a fan is mid.",
    "low_min": "Any spend from this amount is low; below it a fan is free.",
    "new_days": "A fan subscribed fewer than this many days ago is new.",
    "at_risk_days": "No activity for this many days (or renewal switched off) makes a fan at risk.",
    "churned_days": "No activity for this many days (or never active) makes a fan churned. Longer than at risk.",
}


class FanRulesForm(forms.Form):
    low_min = forms.DecimalField(min_value=Decimal("0.01"), max_digits=10, decimal_places=2)
    mid_min = forms.DecimalField(min_value=Decimal("0.01"), max_digits=10, decimal_places=2)
    high_min = forms.DecimalField(min_value=Decimal("0.01"), max_digits=10, decimal_places=2)
    whale_min = forms.DecimalField(min_value=Decimal("0.01"), max_digits=10, decimal_places=2)
    new_days = forms.IntegerField(min_value=1, max_value=365)
    at_risk_days = forms.IntegerField(min_value=1, max_value=365)
    churned_days = forms.IntegerField(min_value=2, max_value=730)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.label = RULE_LABELS[name] + (" (days)" if name.endswith("_days") else "")
            field.help_text = RULE_HELP[name]


class FanImportForm(forms.Form):
    creator = forms.TypedChoiceField(label="Creator", coerce=int)
    kind = forms.ChoiceField(label="The file holds", choices=ImportKind.choices, initial=ImportKind.FANS)
    file = forms.FileField(label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))

    def __init__(self, *args, creators, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["creator"].choices = [(c.pk, c.display_name) for c in creators]
        self.creators = {c.pk: c for c in creators}


AUDIT_SOURCES = [(s.value, s.label) for s in (Source.HUMAN, Source.AI_DRAFT, Source.TEMPLATE, Source.AUTOMATION)]


class AuditFilterForm(forms.Form):
    creator = forms.TypedChoiceField(label="Creator", required=False, coerce=int, empty_value=None)
    member = forms.TypedChoiceField(label="Sent by", required=False, coerce=int, empty_value=None)
    source = forms.ChoiceField(label="Source", required=False, choices=[("", "Any source"), *AUDIT_SOURCES])
    since = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="To (inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, creators, members, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.fields["creator"].choices = _creator_choices(creators, "All creators")
        self.fields["member"].choices = [("", "Anyone"), *[(m.user_id, m.user.email) for m in members]]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("since", "until"):
            # A day outside these years overflows the conversion to a moment (apps/core/timezones.py).
            if data.get(name) and not moment_in_range(data[name]):
                self.add_error(name, f"Give a date between the years {FIRST_YEAR} and {LAST_YEAR}.")
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
        return data
