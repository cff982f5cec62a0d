"""The campaign form: shape only. What makes a campaign valid (audience, price range, send
time, text limits, variables) is services.py's; its ApplicationErrors land on the field they
name (``form_add_error``)."""

from __future__ import annotations

from django import forms

from apps.accounts.models import Creator
from apps.campaigns.models import CampaignMode, CampaignRepeat
from apps.messaging.models import Fan, Segment


class CampaignForm(forms.Form):
    creator = forms.TypedChoiceField(label="Creator", coerce=int)
    name = forms.CharField(label="Name", max_length=120, help_text="For your team; fans never see it.")
    segment = forms.TypedChoiceField(
        label="Audience: a segment", coerce=int, required=False, empty_value=None,
        help_text="Resolved when sending starts, so fans who join the segment until then are included.",
    )  # fmt: skip
    fan_usernames = forms.CharField(
        label="…or these fans", required=False, max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Usernames separated by commas or lines, when no segment is chosen.",
    )  # fmt: skip
    mode = forms.ChoiceField(
        label="How to send", choices=CampaignMode.choices, required=False, initial=CampaignMode.DIRECT,
        widget=forms.RadioSelect,
        help_text="Direct: one message per fan, sent at the account's pace; personal variables such as "
        "{fan.first_name} allowed. Mass: one call to the platform, the same text for every fan, so no {fan.…} "
        "variables ({creator.…} ones are fine), on platforms that have mass messages.",
    )  # fmt: skip
    text = forms.CharField(
        label="Message", required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Variables such as {fan.first_name|babe} are filled per fan (direct messages only).",
    )  # fmt: skip
    ppv_price = forms.DecimalField(
        label="PPV price", required=False, min_value=0, max_digits=8, decimal_places=2,
        help_text="Leave empty for a free message.",
    )  # fmt: skip
    explore_prices = forms.BooleanField(
        label="Explore prices", required=False,
        help_text="Direct PPV messages only: fans are split across nearby prices (within the creator's PPV range), "
        "each fan's price drawn by Thompson sampling from what past offers say, so the pricing advice learns "
        "faster. The campaign page shows each price's results.",
    )  # fmt: skip
    media = forms.CharField(
        label="Media", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One vault reference per line; a PPV offer needs at least one.",
    )  # fmt: skip
    send_at = forms.DateTimeField(
        label="Send at", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="In the creator's timezone. Empty: send as soon as it is scheduled.",
    )  # fmt: skip
    exclude_messaged_within_hours = forms.IntegerField(
        label="Skip fans messaged in the last … hours", required=False, min_value=1, max_value=720
    )
    exclude_no_spend_days = forms.IntegerField(
        label="Skip fans who spent nothing in … days", required=False, min_value=1, max_value=3650
    )
    exclude_bought_offer = forms.BooleanField(
        label="Skip fans who already bought this offer", required=False,
        help_text="Fans who unlocked an earlier PPV campaign of this creator with the same media.",
    )  # fmt: skip
    repeat = forms.ChoiceField(
        label="Repeat", choices=CampaignRepeat.choices, required=False,
        help_text="Each occurrence is scheduled when the one before starts sending, at the same local time, "
        "its audience counted again at its own send time. Needs a send time.",
    )  # fmt: skip
    repeat_until = forms.DateTimeField(
        label="Repeat until", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        help_text="In the creator's timezone, at most a year ahead. Empty: until you cancel the scheduled occurrence.",
    )  # fmt: skip

    def __init__(self, *args, creators: list[Creator], segments: list[Segment], **kwargs):
        super().__init__(*args, **kwargs)
        self.creators = {creator.pk: creator for creator in creators}
        self.segments = {segment.pk: segment for segment in segments}
        self.fields["creator"].choices = [(creator.pk, creator.display_name) for creator in creators]
        self.fields["segment"].choices = [("", "— none: the fans below —")] + [
            (segment.pk, f"{segment.name} ({segment.creator.display_name if segment.creator else 'all creators'})")
            for segment in segments
        ]

    def usernames(self) -> list[str]:
        raw = self.cleaned_data.get("fan_usernames") or ""
        return sorted({name.strip().lstrip("@") for name in raw.replace("\n", ",").split(",") if name.strip()})

    def fan_ids(self, agency_id: int, chosen: list[int] | None = None) -> list[int]:
        """The chosen fans' ids; an unknown username is a form error naming it, and so is one that
        several of the creator's fans share (usernames are not unique), unless the campaign being
        edited already chose among them (``chosen``, its fan ids): those are kept."""
        names = self.usernames()
        if not names:
            return []
        creator_id = self.cleaned_data["creator"]
        found: dict[str, list[int]] = {}
        for username, pk in (
            Fan.objects.for_agency(agency_id)
            .filter(creator_id=creator_id, username__in=names)
            .order_by("pk")
            .values_list("username", "pk")
        ):
            found.setdefault(username, []).append(pk)
        missing = [name for name in names if name not in found]
        if missing:
            shown = ", ".join(missing[:5]) + ("…" if len(missing) > 5 else "")
            self.add_error("fan_usernames", f"No fan of this creator is called {shown}.")
        kept = set(chosen or [])
        ids, shared = [], []
        for name in names:
            fans = found.get(name, [])
            if len(fans) > 1:
                fans = [pk for pk in fans if pk in kept]
                if not fans:
                    shared.append(name)
            ids += fans
        if shared:
            shown = ", ".join(shared[:5]) + ("…" if len(shared) > 5 else "")
            self.add_error(
                "fan_usernames",
                f"Several fans of this creator are called {shown}: choose them with a segment instead.",
            )
        return ids

    def media_list(self) -> list[str]:
        return [line.strip() for line in (self.cleaned_data.get("media") or "").splitlines() if line.strip()]


class CampaignSettingsForm(forms.Form):
    approval_above = forms.IntegerField(
        label="Campaigns to more fans than this need approval", required=False, min_value=1, max_value=10_000_000,
        help_text="Applies to chatters; owners and managers approve. Empty: no approval needed.",
    )  # fmt: skip
    fan_cap_per_day = forms.IntegerField(
        label="Messages one fan may get from campaigns and automations in 24 hours", required=False,
        min_value=1, max_value=50,
        help_text="A fan at the cap is left out of the next campaign and an automation waits. Empty: no cap.",
    )  # fmt: skip


class AutomationForm(forms.Form):
    """An automation: on or off, and up to three messages, each after a wait. The rules (waits,
    prices, text limits, variables) are automations.py's; its errors land on the step they name."""

    enabled = forms.BooleanField(label="On", required=False)

    def __init__(self, *args, **kwargs) -> None:
        from apps.campaigns.automations import MAX_STEPS

        super().__init__(*args, **kwargs)
        for number in range(1, MAX_STEPS + 1):
            after = "the event" if number == 1 else f"message {number - 1}"
            self.fields[f"step{number}_delay"] = forms.IntegerField(
                label=f"Wait (minutes after {after})", required=False, min_value=0, max_value=30 * 24 * 60
            )
            self.fields[f"step{number}_text"] = forms.CharField(
                label=f"Message {number}", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}),
                help_text="Variables such as {fan.first_name|babe} are filled per fan." if number == 1 else "",
            )  # fmt: skip
            self.fields[f"step{number}_price"] = forms.DecimalField(
                label="PPV price", required=False, min_value=0, max_digits=8, decimal_places=2
            )
            self.fields[f"step{number}_media"] = forms.CharField(
                label="Media references", required=False, max_length=4000,
                help_text="Vault ids separated by commas; needed for a PPV.",
            )  # fmt: skip

    def add_service_error(self, error) -> None:
        """A service's error on the field it names (``step2_delay``); "steps" (none written) on
        the first message."""
        field = "step1_text" if error.field == "steps" else error.field
        self.add_error(field if field in self.fields else None, error.message)

    def step_groups(self) -> list[dict]:
        from apps.campaigns.automations import MAX_STEPS

        return [
            {name: self[f"step{number}_{name}"] for name in ("delay", "text", "price", "media")} | {"number": number}
            for number in range(1, MAX_STEPS + 1)
        ]

    def steps(self):
        from apps.campaigns.automations import MAX_STEPS, StepInput

        data = self.cleaned_data
        return [
            StepInput(
                delay_minutes=data[f"step{number}_delay"],
                text=data[f"step{number}_text"],
                ppv_price=data[f"step{number}_price"],
                media=[item for item in data[f"step{number}_media"].split(",") if item.strip()],
            )
            for number in range(1, MAX_STEPS + 1)
        ]

    @staticmethod
    def initial_for(automation) -> dict:
        initial = {"enabled": automation.enabled}
        for number, step in enumerate(automation.steps or [], start=1):
            initial[f"step{number}_delay"] = step.get("delay_minutes")
            initial[f"step{number}_text"] = step.get("text", "")
            initial[f"step{number}_price"] = step.get("ppv_price")
            initial[f"step{number}_media"] = ", ".join(step.get("media") or [])
        return initial
