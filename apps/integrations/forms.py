"""Forms of the integrations pages."""

from __future__ import annotations

from django import forms

from apps.integrations.models import OAUTH_PLATFORMS


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
        url = self.cleaned_data["api_base_url"].rstrip("/")
        if not url.startswith("https://"):
            raise forms.ValidationError("Use an https:// address: the API key travels with every request.")
        return url
