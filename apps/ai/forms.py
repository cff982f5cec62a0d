"""The settings form for an agency's own provider connection."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.ai.models import ProviderKind
from apps.ai.services import credential_urls_check
from apps.core.errors import ApplicationError


class CredentialForm(forms.Form):
    kind = forms.ChoiceField(label="Provider", choices=ProviderKind.choices)
    label = forms.CharField(max_length=60, help_text="A name you will recognise, e.g. “OpenAI main”.")
    api_key = forms.CharField(
        label="API key",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Stored encrypted. Leave empty when editing to keep the current key; changing the URL "
        "or the provider needs the key again.",
    )
    base_url = forms.URLField(
        assume_scheme="https",
        label="Base URL",
        required=False,
        max_length=200,  # the column's length (a longer URL would fail the insert)
        help_text="OpenAI-compatible servers only, e.g. http://localhost:11434/v1",
    )
    azure_endpoint = forms.URLField(
        assume_scheme="https",
        label="Azure endpoint",
        required=False,
        max_length=200,  # the column's length (a longer URL would fail the insert)
        help_text="Azure OpenAI only, e.g. https://my-resource.openai.azure.com",
    )
    azure_api_version = forms.CharField(label="Azure API version", required=False, max_length=32, initial="2024-10-21")
    model_names = forms.CharField(
        label="Models",
        max_length=1000,
        help_text="Comma-separated, cheapest first (for Azure: deployment names), e.g. gpt-4o-mini, gpt-4o",
    )
    priority = forms.IntegerField(min_value=0, max_value=1000, initial=10, help_text="Lower is tried first.")
    is_enabled = forms.BooleanField(label="Enabled", required=False, initial=True)

    def clean_model_names(self) -> list[str]:
        names = [name.strip() for name in self.cleaned_data["model_names"].split(",") if name.strip()]
        if not names:
            raise forms.ValidationError("List at least one model name.")
        if len(names) > 20 or any(len(name) > 120 for name in names):
            raise forms.ValidationError("At most 20 model names of up to 120 characters.")
        return names

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if "kind" in cleaned and not self.has_error("base_url") and not self.has_error("azure_endpoint"):
            try:
                credential_urls_check(
                    kind=cleaned["kind"],
                    base_url=cleaned.get("base_url") or "",
                    azure_endpoint=cleaned.get("azure_endpoint") or "",
                )
            except ApplicationError as error:
                self.add_error(error.field, error.message)
        return cleaned

    @classmethod
    def initial_for(cls, credential) -> dict:
        return {
            "kind": credential.kind,
            "label": credential.label,
            "base_url": credential.base_url,
            "azure_endpoint": credential.azure_endpoint,
            "azure_api_version": credential.azure_api_version,
            "model_names": ", ".join(credential.model_names),
            "priority": credential.priority,
            "is_enabled": credential.is_enabled,
        }
