"""Forms of the workflow pages: the run list's filters and the start form."""

from __future__ import annotations

import uuid

from django import forms

from apps.studio.selectors import platform_choices
from apps.workflows import definitions
from apps.workflows.models import RunState


class RunFilterForm(forms.Form):
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *RunState.choices])
    workflow = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [("", "Any workflow")] + [
            (workflow.name, workflow.label) for workflow in definitions.all_workflows()
        ]


class StartForm(forms.Form):
    """One form for every built-in: fields a workflow does not use are ignored by its clean_input."""

    workflow = forms.ChoiceField(label="Workflow")
    creator_id = forms.TypedChoiceField(
        label="Creator (content plan, re-engagement)", required=False, coerce=int, empty_value=None
    )
    ideas = forms.IntegerField(
        label="Posts to plan (content plan)", required=False, min_value=1, max_value=7, initial=3
    )
    platform = forms.ChoiceField(
        label="Platform (content plan)", required=False, initial="onlyfans",
        help_text="TikTok, Instagram and Reddit plans also become draft posts on the publishing calendar.",
    )  # fmt: skip
    month = forms.CharField(label="Month, YYYY-MM (cost report; empty: last month)", required=False, max_length=7)
    # A new key each time the form is drawn: submitting it twice (a double click, the browser's
    # resend) starts one run (services.run_start).
    request_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, creators=(), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["workflow"].choices = [(workflow.name, workflow.label) for workflow in definitions.all_workflows()
                                           if not workflow.name.startswith("test_")]  # fmt: skip
        self.fields["creator_id"].choices = [("", "—")] + [(creator.pk, creator.display_name) for creator in creators]
        self.fields["platform"].choices = platform_choices()
        if not self.is_bound:
            self.initial.setdefault("request_key", uuid.uuid4().hex)

    def input_data(self) -> dict:
        data = self.cleaned_data
        keys = ("creator_id", "ideas", "platform", "month")
        return {key: data[key] for key in keys if data.get(key) not in (None, "")}
