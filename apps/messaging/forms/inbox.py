"""Forms of the inbox: the list's filters, the composer, a fan note and a fan's tags.

Shape only: the platform's text limit, the safety policy, the PPV range and conflicts between
two members are the services' rules (``message_validate``/``message_send``); their errors land on
these forms through ``form_add_error`` so the typed text is never lost.
"""

from __future__ import annotations

from django import forms

from apps.messaging.models import DraftKind

# Far above every platform's limit (apps.delivery.connectors.PLATFORM_LIMITS): the service names
# the platform's own limit; this only keeps absurd bodies out of the form.
TEXT_CEILING = 50_000


class InboxFilterForm(forms.Form):
    """The inbox list's search and filters, read from the query string."""

    q = forms.CharField(label="Search fans", required=False, max_length=80)
    creator = forms.TypedChoiceField(label="Creator", required=False, coerce=int, empty_value=None)
    segment = forms.TypedChoiceField(label="Segment", required=False, coerce=int, empty_value=None)
    tag = forms.CharField(label="Tag", required=False, max_length=40)
    waiting = forms.BooleanField(label="Waiting only", required=False)

    def __init__(self, data, *, creators, segments, **kwargs) -> None:
        super().__init__(data, **kwargs)
        self.fields["creator"].choices = [("", "All creators"), *[(c.pk, c.display_name) for c in creators]]
        self.fields["segment"].choices = [("", "All fans"), *[(s.pk, s.name) for s in segments]]
        self.segments = {s.pk: s for s in segments}

    def clean_tag(self) -> str:
        return self.cleaned_data["tag"].strip().lower()

    @property
    def is_filtered(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return any(data.get(name) for name in ("q", "creator", "segment", "tag", "waiting"))


class MessageForm(forms.Form):
    """The composer. ``seen_message_count`` and ``idempotency_key`` are set when the form is
    rendered: the first detects a colleague's answer (or a new fan message) sent meanwhile, the
    second turns a double submission into one message."""

    text = forms.CharField(
        label="Message",
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "id": "composer-text", "autocomplete": "off"}),
    )
    ppv_price = forms.DecimalField(
        label="PPV price (optional)", required=False, min_value=0, max_digits=8, decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "min": "0"}),
    )  # fmt: skip
    media_count = forms.IntegerField(label="Media attached", required=False, min_value=0, max_value=50, initial=0)
    template = forms.TypedChoiceField(label="Template", required=False, coerce=int, empty_value=None)
    draft = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    seen_message_count = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args, templates=(), text_limit: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", "Choose a template…"), *[(t.pk, t.name) for t in templates]]
        if text_limit:
            self.fields["text"].widget.attrs["data-limit"] = str(text_limit)
            self.fields["text"].help_text = f"Up to {text_limit} characters on this platform."
            self.fields["text"].widget.attrs["aria-describedby"] = "composer-counter"

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        if len(text) > TEXT_CEILING:
            raise forms.ValidationError(f"This message is {len(text)} characters: far too long to send.")
        return text

    def clean_media_count(self) -> int:
        return self.cleaned_data["media_count"] or 0


class DraftRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=DraftKind.choices, initial=DraftKind.REPLY)


class FanNoteForm(forms.Form):
    text = forms.CharField(
        label="Add a note", max_length=2000, widget=forms.Textarea(attrs={"rows": 2, "id": "note-text"})
    )


class FanTagsForm(forms.Form):
    tags = forms.CharField(
        label="Edit tags",
        required=False,
        max_length=2000,
        help_text="Separated by commas.",
        widget=forms.TextInput(attrs={"id": "fan-tags"}),
    )

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]
