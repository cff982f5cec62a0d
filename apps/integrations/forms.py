"""Forms of the integrations pages."""

from __future__ import annotations

from django import forms

from apps.core.errors import ApplicationError
from apps.integrations.models import OAUTH_PLATFORMS, PUBLISH_PLATFORMS, CRMEventKind, PostMediaType


class OAuthConnectForm(forms.Form):
    platform = forms.ChoiceField(choices=[(p.value, p.label) for p in OAUTH_PLATFORMS])


class ApiConnectionForm(forms.Form):
    """The third-party API account of one platform; rendered with the platform as prefix (one
    form per platform on the page), the platform itself posted as a plain ``platform`` field."""

    api_base_url = forms.URLField(
        label="API base URL",
        max_length=200,
        assume_scheme="https",
        help_text="The third-party API provider's base URL, for example https://api.example-of-api.com/v1.",
    )
    api_key = forms.CharField(
        label="API key", max_length=500, widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted; never shown again.",
    )  # fmt: skip
    api_account_id = forms.CharField(
        label="Account id", max_length=128, help_text="The creator's account id at the API provider."
    )

    def clean_api_base_url(self) -> str:
        from apps.integrations.connectors import api_url_check

        url = self.cleaned_data["api_base_url"].rstrip("/")
        try:  # https only, no private address; nothing is connected to here (connectors.py resolves later)
            api_url_check(url, resolve=False)
        except ApplicationError as error:
            raise forms.ValidationError(error.message) from None
        return url


class CRMConnectionForm(forms.Form):
    """A CRM connection; the field mapping is typed one ``our_field = crm_field`` pair a line."""

    name = forms.CharField(max_length=100)
    target_url = forms.URLField(
        label="Webhook URL", max_length=500, assume_scheme="https",
        help_text="Where Huntaze POSTs the events (https).",
    )  # fmt: skip
    event_kinds = forms.MultipleChoiceField(
        label="Events sent", choices=CRMEventKind.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    field_mapping = forms.CharField(
        label="Fan field mapping", required=False, widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One per line: our_field = crm_field. Empty: every fan field under our names.",
    )  # fmt: skip
    active = forms.BooleanField(required=False, initial=True, help_text="Off: nothing is sent or accepted.")

    def clean_field_mapping(self) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["field_mapping"].splitlines(), start=1):
            if not line.strip():
                continue
            ours, sep, theirs = line.partition("=")
            if not sep or not ours.strip() or not theirs.strip():
                raise forms.ValidationError(f"Line {number}: write our_field = crm_field.")
            if ours.strip() in mapping:
                raise forms.ValidationError(f"Line {number}: {ours.strip()!r} is mapped twice.")
            mapping[ours.strip()] = theirs.strip()
        return mapping

    @staticmethod
    def mapping_text(mapping: dict[str, str]) -> str:
        return "\n".join(f"{ours} = {theirs}" for ours, theirs in mapping.items())


class ScheduledPostForm(forms.Form):
    """A post to schedule; the time is read in the chosen creator's time zone."""

    creator = forms.TypedChoiceField(coerce=int, choices=())
    platform = forms.ChoiceField(choices=[(p.value, p.label) for p in PUBLISH_PLATFORMS])
    scheduled_at = forms.DateTimeField(
        label="Publish at", input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In the creator's time zone.",
    )  # fmt: skip
    caption = forms.CharField(required=False, max_length=40000, widget=forms.Textarea(attrs={"rows": 5}))
    title = forms.CharField(required=False, max_length=300, help_text="Reddit: required. TikTok photos: optional.")
    subreddit = forms.CharField(required=False, max_length=23, help_text="Reddit only, without r/.")
    media_type = forms.ChoiceField(choices=PostMediaType.choices, initial=PostMediaType.VIDEO)
    media_urls = forms.CharField(
        label="Media", required=False, max_length=20000, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Public https:// addresses, one per line: one video, or photos in order.",
    )  # fmt: skip
    generation_id = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    variation = forms.IntegerField(required=False, min_value=0, max_value=20, widget=forms.HiddenInput)
    draft_id = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args, creators=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.creators = {creator.pk: creator for creator in creators}
        self.fields["creator"].choices = [(pk, creator.display_name) for pk, creator in self.creators.items()]

    def clean_media_urls(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["media_urls"].splitlines() if line.strip()]

    def clean(self) -> dict:
        from django.utils import timezone

        from apps.core.timezones import zone_or_utc

        data = super().clean()
        creator = self.creators.get(data.get("creator"))
        if creator is not None and data.get("scheduled_at") is not None:
            naive = (
                timezone.make_naive(data["scheduled_at"])
                if timezone.is_aware(data["scheduled_at"])
                else (data["scheduled_at"])
            )
            data["scheduled_at"] = timezone.make_aware(naive, zone_or_utc(creator.timezone))
        data["creator"] = creator
        return data
