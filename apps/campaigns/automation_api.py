"""API: automations (mounted at /api/v1/ by huntaze/api.py); docs/api-automations.md.

Read every visible creator's four automations with what they did in the last 7 days, read or
save one, and page through its runs: each operation parses, looks up the creator and calls
apps/campaigns/automations.py, which decides (a 400 naming the step's field for a rule its
input breaks). An automation never saved answers as the pages show it: off, with the suggested
messages and ``id`` null.

Every member reads the automations of the creators they may see (a chatter: their assigned
ones); another agency's creator, or one a chatter does not handle, answers 404. Saving needs the
edit permission on the creator (owners and managers), so a chatter, a viewer or a read-scoped
token gets 403. An unknown ``kind`` in a path is a 422 naming ``kind`` (the kinds are an enum in
the schema), not a 404.

What this module does not do: start, advance or stop runs (the beat tick in automations.py does).
"""

# No `from __future__ import annotations`: @paginate resolves parameter annotations in ninja's
# module, where names such as RunStatusName would not be found.
from django.http import HttpRequest
from ninja import Query, Router
from ninja.pagination import paginate

from apps.accounts.api import api_membership
from apps.accounts.models import Creator
from apps.accounts.permissions import Perm, require
from apps.accounts.selectors import creator_get_for_member, creator_list
from apps.campaigns import automations
from apps.campaigns.automation_schemas import (
    AutomationIn,
    AutomationOut,
    AutomationRunOut,
    CreatorAutomationsOut,
    KindName,
    RunStatusName,
)
from apps.campaigns.models import Automation, AutomationRun
from apps.core.openapi import MAX_ID, Id
from apps.messaging.api.common import PageHookPagination

router = Router(tags=["automations"])


def _with_automations(creators: list[Creator]) -> None:
    """Each creator's four automations and their runs' counts, for a whole page at once."""
    for entry in automations.automation_overview(creators=creators):
        kinds = []
        for item in entry["kinds"]:
            item["automation"].run_counts = item["counts"]
            kinds.append(item["automation"])
        # Not `automations`: that name is the creator's reverse relation to its saved ones.
        entry["creator"].automation_list = kinds


def _complete_page(request: HttpRequest, creators: list[Creator]) -> None:
    _with_automations(creators)


def _automation(creator: Creator, kind: str) -> Automation:
    """The creator's automation of that kind (saved, or the default off) with its runs' counts."""
    _with_automations([creator])
    return next(automation for automation in creator.automation_list if automation.kind == kind)


@router.get(
    "/automations",
    response=list[CreatorAutomationsOut],
    summary="List every creator's automations",
)
@paginate(PageHookPagination, complete=_complete_page, page_size=25)
def automation_list(
    request: HttpRequest,
    creator_id: int | None = Query(None, ge=1, le=MAX_ID, description="Only this creator (archived ones too)."),
):
    """The creators the caller may see (not archived ones, unless asked for by ``creator_id``), by
    name, each with its four automations, saved or the default (off, suggested messages, ``id``
    null), and the runs each started in the last 7 days by status. A page costs the same few
    queries whatever its length."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    if creator_id is not None:
        creator_get_for_member(membership=membership, creator_id=creator_id)
        return creator_list(membership=membership, include_archived=True).filter(pk=creator_id)
    return creator_list(membership=membership)


@router.get(
    "/creators/{creator_id}/automations/{kind}",
    response=AutomationOut,
    summary="Get one automation",
)
def automation_detail(request: HttpRequest, creator_id: Id, kind: KindName):
    """The creator's automation of that kind: its messages, whether it is on, and its runs of the
    last 7 days by status. One never saved answers off, with the suggested messages and ``id``
    null."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    creator = creator_get_for_member(membership=membership, creator_id=creator_id)
    return _automation(creator, kind)


@router.put(
    "/creators/{creator_id}/automations/{kind}",
    response=AutomationOut,
    summary="Save an automation (switch it on or off, change its messages)",
)
def automation_update(request: HttpRequest, creator_id: Id, kind: KindName, payload: AutomationIn):
    """Save the creator's automation of that kind (created on its first save). ``steps`` replaces
    its messages; an omitted field keeps its value. Switching it on watches for events from now
    on (never the past); switching it off stops its waiting runs. A rule the messages break is a
    400 naming the step's field (``step2_delay``, ``step1_text``, ``step1_price``,
    ``step1_media``), and nothing is saved. Owners and managers only."""
    membership = api_membership(request)
    require(membership, Perm.EDIT)
    creator = creator_get_for_member(membership=membership, creator_id=creator_id)
    current = automations.automation_for(creator=creator, kind=kind)
    if payload.steps is not None:
        steps = [automations.StepInput(**step.model_dump()) for step in payload.steps]
    else:
        steps = [
            automations.StepInput(
                delay_minutes=step["delay_minutes"],
                text=step["text"],
                ppv_price=step.get("ppv_price"),
                media=step.get("media"),
            )
            for step in current.steps
        ]
    automations.automation_save(
        membership=membership,
        creator=creator,
        kind=kind,
        enabled=current.enabled if payload.enabled is None else payload.enabled,
        steps=steps,
    )
    return _automation(creator, kind)


@router.get(
    "/creators/{creator_id}/automations/{kind}/runs",
    response=list[AutomationRunOut],
    summary="List an automation's runs",
)
@paginate(page_size=25)
def automation_run_list(request: HttpRequest, creator_id: Id, kind: KindName, status: RunStatusName | None = None):
    """The automation's runs, newest first: one per fan and event, with the message it is at,
    how many it sent, when the next is due and, once stopped, why. Empty for an automation never
    saved."""
    membership = api_membership(request)
    require(membership, Perm.VIEW)
    creator = creator_get_for_member(membership=membership, creator_id=creator_id)
    automation = automations.automation_for(creator=creator, kind=kind)
    if automation.pk is None:
        return AutomationRun.objects.none()
    runs = automations.automation_runs(automation=automation)
    return runs.filter(status=status) if status else runs
