"""The automations API's shapes (django-ninja), for apps/campaigns/automation_api.py;
docs/api-automations.md.

Inputs state the bounds automations.py also holds (3 messages, a wait of 0 minutes to 30 days, 20
media references of 200 characters, a PPV price above 0 to the cent) so a client, and the fuzz
gate, can tell a valid request from a 422. The rules that depend on the kind, the step or stored
data stay in automations.py and answer 400 naming the step's field (``step2_delay``,
``step1_text``, ``step1_price``, ``step1_media``, ``steps``, ``enabled``): a PPV follow-up's
first wait of at least 30 minutes and a later message's of at least 10, known template variables,
the platforms' text limits and the safety policy, the creator's PPV range, media with a price, an
archived creator switched on.

The edit body (``AutomationIn``) has no required field (an omitted one keeps its value), so a
request for another agency's creator reaches the lookup and answers 404.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from ninja import Field, Schema

from apps.accounts.models import Creator
from apps.campaigns.automations import MAX_DELAY_MINUTES, MAX_STEPS
from apps.campaigns.models import Automation, AutomationKind, AutomationRun, AutomationRunStatus, wait_label
from apps.campaigns.schemas import MediaRef, PpvPrice
from apps.campaigns.services import MAX_MEDIA

KindName = Literal[tuple(AutomationKind.values)]
RunStatusName = Literal[tuple(AutomationRunStatus.values)]

CENTS = Decimal("0.01")
KIND = (
    '"welcome" (a fan subscribes), "renewal_off" (a subscribed fan switches auto-renewal off), '
    '"expired" (a subscription ran out) or "ppv_followup" (a PPV offer stays locked).'
)
DELAY = (
    "Minutes to wait: the first message's from the event, a later one's from the message before. 0 to "
    f"{MAX_DELAY_MINUTES} (30 days); a PPV follow-up's first at least 30, a later message at least 10 (400)."
)


# --- Output -------------------------------------------------------------------------------------


class AutomationStepOut(Schema):
    delay_minutes: int = Field(description=DELAY)
    wait: str = Field(description='The wait as the pages show it: "5 min", "1 day 6 h", "at once".')
    text: str = Field(description="May use template variables such as {fan.first_name|babe}, filled per fan.")
    ppv_price: Decimal | None = Field(description="A PPV price in the creator's currency; null: a plain message.")
    media: list[str] = Field(description="Vault media references sent with the message.")


class AutomationRunCountsOut(Schema):
    active: int = Field(description="Runs waiting for their next message.")
    done: int = Field(description="Runs that sent all their messages.")
    stopped: int = Field(description="Runs stopped early (the fan replied or bought, it was switched off, …).")


class AutomationOut(Schema):
    id: int | None = Field(
        description="null until the automation is first saved (it is then off, with the suggested messages)."
    )
    creator_id: int
    kind: KindName = Field(description=KIND)
    label: str = Field(description='What it does, as the pages name it: "Welcome a new subscriber".')
    enabled: bool
    enabled_at: datetime | None = Field(description="Switched on at (UTC): only events from then on start runs.")
    steps: list[AutomationStepOut] = Field(
        description=f"The messages sent after the event, in order (1 to {MAX_STEPS})."
    )
    summary: str = Field(description='Its waits in words: "after 6 h, then 1 day (PPV 9.00)".')
    runs_last_7_days: AutomationRunCountsOut = Field(description="Runs started in the last 7 days, by status now.")
    updated_at: datetime | None = Field(description="Last saved at (UTC); null if never saved.")

    @staticmethod
    def resolve_label(obj: Automation) -> str:
        return AutomationKind(obj.kind).label

    @staticmethod
    def resolve_steps(obj: Automation) -> list[dict]:
        return [
            {
                "delay_minutes": int(step["delay_minutes"]),
                "wait": wait_label(int(step["delay_minutes"])),
                "text": step["text"],
                # Stored as given ("15"); answered to the cent, as campaigns are.
                "ppv_price": Decimal(step["ppv_price"]).quantize(CENTS) if step.get("ppv_price") else None,
                "media": list(step.get("media") or []),
            }
            for step in obj.steps or []
        ]

    @staticmethod
    def resolve_summary(obj: Automation) -> str:
        return obj.schedule_summary

    @staticmethod
    def resolve_runs_last_7_days(obj: Automation) -> dict:
        counts = obj.run_counts  # set by the operations, for a whole page at once
        return {status: counts.get(status, 0) for status in AutomationRunStatus.values}

    @staticmethod
    def resolve_updated_at(obj: Automation) -> datetime | None:
        return obj.updated_at if obj.pk else None


class CreatorAutomationsOut(Schema):
    creator_id: int
    display_name: str
    is_archived: bool
    automations: list[AutomationOut] = Field(description="Its four automations, one of each kind, in a fixed order.")

    @staticmethod
    def resolve_creator_id(obj: Creator) -> int:
        return obj.pk

    @staticmethod
    def resolve_automations(obj: Creator) -> list[Automation]:
        return obj.automation_list  # set by the operation, for a whole page at once


class AutomationRunOut(Schema):
    id: int
    fan_id: int
    fan_username: str
    fan_display_name: str
    trigger: str = Field(
        description='The event the run answers, one run per event: "sub-<time>", "renew-off-<time>", '
        '"expired-<time>" (Unix seconds) or "ppv-<message id>".'
    )
    event_at: datetime = Field(description="When the event happened (UTC).")
    status: RunStatusName = Field(description='"active" (waiting for its next message), "done" or "stopped".')
    stop_reason: str = Field(description='Why it stopped ("The fan replied; the inbox takes over."); empty otherwise.')
    step: int = Field(description="The next message to send, 0 for the first.")
    sent: int = Field(description="Messages handed to the delivery pipeline so far.")
    next_at: datetime | None = Field(description="When the next message is due (UTC); null once done or stopped.")
    created_at: datetime

    @staticmethod
    def resolve_fan_username(obj: AutomationRun) -> str:
        return obj.fan.username

    @staticmethod
    def resolve_fan_display_name(obj: AutomationRun) -> str:
        return obj.fan.display_name


# --- Input --------------------------------------------------------------------------------------


class AutomationStepIn(Schema):
    delay_minutes: int = Field(ge=0, le=MAX_DELAY_MINUTES, description=DELAY, examples=[5])
    text: str = Field(
        max_length=10_000,
        description="May use template variables such as {fan.first_name|babe}; checked against the platforms' "
        "limits and the safety policy.",
        examples=["Hey {fan.first_name|babe}, welcome! 💕"],
    )
    ppv_price: PpvPrice | None = Field(None, description="Within the creator's PPV range; needs media.")
    media: list[MediaRef] = Field(default_factory=list, max_length=MAX_MEDIA)


class AutomationIn(Schema):
    """Omitted (or null) fields keep their value: for an automation never saved, off and the
    suggested messages. ``{"enabled": true}`` switches one on as it stands."""

    enabled: bool | None = Field(
        None,
        description="On: events from now on start runs. Off: its waiting runs stop (a message already handed "
        "to the pipeline is still sent).",
    )
    steps: list[AutomationStepIn] | None = Field(
        None, max_length=MAX_STEPS, description=f"Replaces its messages: 1 to {MAX_STEPS}, in order."
    )
