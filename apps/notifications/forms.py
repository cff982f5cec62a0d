"""The notification preferences form: one row per kind, with an in-app and an email checkbox."""

from __future__ import annotations

from django import forms

from apps.notifications.preferences import KINDS, Channels


class PreferencesForm(forms.Form):
    def __init__(self, *args, current: dict[str, Channels], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for kind in KINDS:
            channels = current[kind.key]
            self.fields[f"{kind.key}_in_app"] = forms.BooleanField(
                label=f"{kind.label}: in the app", required=False, initial=channels.in_app
            )
            self.fields[f"{kind.key}_email"] = forms.BooleanField(
                label=f"{kind.label}: by email", required=False, initial=channels.email
            )

    def rows(self) -> list[tuple]:
        return [(kind, self[f"{kind.key}_in_app"], self[f"{kind.key}_email"]) for kind in KINDS]

    def choices(self) -> dict[str, Channels]:
        data = self.cleaned_data
        return {
            kind.key: Channels(in_app=data[f"{kind.key}_in_app"], email=data[f"{kind.key}_email"]) for kind in KINDS
        }
