"""Writes for the agency's reusable messaging things: saved segments, message templates and the
fan rules (tier thresholds, lifecycle days). Pages and the API call these; reads are in
selectors.py.

Who may do what (the rules the permission map alone cannot state):

- a segment or template for **one creator**: any member allowed to send messages for that creator
  (``Perm.SEND_MESSAGES`` with the creator: owners, managers, and chatters assigned to it);
- a segment or template for **all creators** (``creator=None``): ``Perm.EDIT`` (owners and
  managers), because it reaches creators a chatter does not handle;
- changing or deleting **another member's** item: ``Perm.EDIT``; a chatter changes and deletes
  only what they created;
- the **fan rules**: ``Perm.EDIT``.

Validation names the field: a segment's filters go through ``segments.segment_filters_parse``
(the error names the bad key), a template's text through ``templating.template_variables`` (the
error names the unknown variable). A name already used in the agency is a ConflictError on
``name``. The fan rules are checked for order before saving, so the database's check constraints
are never what refuses them.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

from django.db import IntegrityError, transaction
from django.http import Http404

from apps.accounts.models import Creator, Membership
from apps.accounts.permissions import Perm, has_perm, require
from apps.core.errors import ApplicationError, ConflictError
from apps.messaging.models import FanRules, MessageTemplate, Segment, TemplateCategory
from apps.messaging.segments import segment_filters_parse
from apps.messaging.templating import template_variables

NAME_MAX = 80
TEMPLATE_TEXT_MAX = 2000
MONEY_MAX = Decimal("99999999.99")  # DecimalField(max_digits=10, decimal_places=2)

TIER_FIELDS = ("low_min", "mid_min", "high_min", "whale_min")  # ascending
DAY_FIELDS = ("new_days", "at_risk_days", "churned_days")
DAY_RANGES = {"new_days": (1, 365), "at_risk_days": (1, 365), "churned_days": (2, 730)}
RULE_FIELDS = TIER_FIELDS + DAY_FIELDS


# --- Shared checks ------------------------------------------------------------------------------


def _require_scope(membership: Membership, creator: Creator | None) -> None:
    """Authorise writing an item for ``creator`` (None: all of the agency's creators)."""
    if creator is None:
        require(membership, Perm.EDIT)
        return
    if creator.agency_id != membership.agency_id:
        raise Http404("No such creator.")
    require(membership, Perm.SEND_MESSAGES, creator=creator)


def _require_owner_or_edit(membership: Membership, item: Segment | MessageTemplate) -> None:
    """The item's author may change it; anyone else needs the edit permission."""
    if item.agency_id != membership.agency_id:
        raise Http404("No such item.")
    if item.created_by_id != membership.user_id:
        require(membership, Perm.EDIT)


def _clean_name(name: str, *, model: type[Segment] | type[MessageTemplate], agency_id: int, exclude_pk=None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ApplicationError("Give it a name.", field="name")
    if len(name) > NAME_MAX:
        raise ApplicationError(f"A name holds at most {NAME_MAX} characters (this one has {len(name)}).", field="name")
    taken = model.objects.for_agency(agency_id).filter(name__iexact=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise ConflictError(f"“{name}” is already used in this agency: choose another name.", field="name")
    return name


def _save(item: Segment | MessageTemplate) -> None:
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError as exc:  # a colleague took the name between the check and the save
        raise ConflictError(
            f"“{item.name}” is already used in this agency: choose another name.", field="name"
        ) from exc


# --- Segments -----------------------------------------------------------------------------------


def segment_create(
    *, membership: Membership, name: str, filters: dict[str, Any] | None, creator: Creator | None = None
) -> Segment:
    """A saved, live filter over fans; ``creator=None`` spans every creator the reader may see."""
    _require_scope(membership, creator)
    parsed = segment_filters_parse(filters)
    segment = Segment(
        agency_id=membership.agency_id,
        creator=creator,
        name=_clean_name(name, model=Segment, agency_id=membership.agency_id),
        filters=parsed.as_json(),
        created_by=membership.user,
    )
    _save(segment)
    return segment


def segment_update(
    *,
    membership: Membership,
    segment: Segment,
    name: str,
    filters: dict[str, Any] | None,
    creator: Creator | None = None,
) -> Segment:
    """Replace the segment's name, creator and filters."""
    _require_owner_or_edit(membership, segment)
    if segment.creator_id is not None:
        _require_scope(membership, segment.creator)
    _require_scope(membership, creator)
    parsed = segment_filters_parse(filters)
    segment.name = _clean_name(name, model=Segment, agency_id=membership.agency_id, exclude_pk=segment.pk)
    segment.creator = creator
    segment.filters = parsed.as_json()
    _save(segment)
    return segment


def segment_delete(*, membership: Membership, segment: Segment) -> None:
    _require_owner_or_edit(membership, segment)
    _require_scope(membership, segment.creator)
    segment.delete()


# --- Templates ----------------------------------------------------------------------------------


def _clean_template(text: str, category: str) -> tuple[str, str]:
    text = (text or "").strip()
    if not text:
        raise ApplicationError("A template needs some text.", field="text")
    if len(text) > TEMPLATE_TEXT_MAX:
        raise ApplicationError(
            f"A template holds at most {TEMPLATE_TEXT_MAX} characters (this one has {len(text)}).", field="text"
        )
    template_variables(text)
    if category not in TemplateCategory.values:
        raise ApplicationError(
            f"Unknown category “{category}”: use one of {', '.join(TemplateCategory.values)}.", field="category"
        )
    return text, category


def template_create(
    *,
    membership: Membership,
    name: str,
    text: str,
    category: str = TemplateCategory.CUSTOM,
    creator: Creator | None = None,
) -> MessageTemplate:
    """Reusable message text; ``creator=None`` shares it with all of the agency's creators."""
    _require_scope(membership, creator)
    text, category = _clean_template(text, category)
    template = MessageTemplate(
        agency_id=membership.agency_id,
        creator=creator,
        name=_clean_name(name, model=MessageTemplate, agency_id=membership.agency_id),
        category=category,
        text=text,
        created_by=membership.user,
    )
    _save(template)
    return template


def template_update(
    *,
    membership: Membership,
    template: MessageTemplate,
    name: str,
    text: str,
    category: str,
    creator: Creator | None = None,
) -> MessageTemplate:
    _require_owner_or_edit(membership, template)
    if template.creator_id is not None:
        _require_scope(membership, template.creator)
    _require_scope(membership, creator)
    text, category = _clean_template(text, category)
    template.name = _clean_name(name, model=MessageTemplate, agency_id=membership.agency_id, exclude_pk=template.pk)
    template.creator = creator
    template.category = category
    template.text = text
    _save(template)
    return template


def template_delete(*, membership: Membership, template: MessageTemplate) -> None:
    """Messages sent from it keep their text and audit record (their link is set to null)."""
    _require_owner_or_edit(membership, template)
    _require_scope(membership, template.creator)
    template.delete()


# --- Fan rules ----------------------------------------------------------------------------------


def _money(name: str, value: Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip().replace("$", ""))
    except (InvalidOperation, ValueError):
        raise ApplicationError(f"“{value}” is not an amount.", field=name) from None
    if not amount.is_finite() or amount <= 0:
        raise ApplicationError("Must be above zero.", field=name)
    if amount > MONEY_MAX:
        raise ApplicationError(f"Must be at most {MONEY_MAX}.", field=name)
    if amount != amount.quantize(Decimal("0.01")):
        raise ApplicationError("Use at most two decimals.", field=name)
    return amount.quantize(Decimal("0.01"))


def _days(name: str, value: Any) -> int:
    try:
        days = int(str(value).strip())
    except ValueError:
        raise ApplicationError(f"“{value}” is not a whole number of days.", field=name) from None
    low, high = DAY_RANGES[name]
    if not low <= days <= high:
        raise ApplicationError(f"Must be between {low} and {high} days.", field=name)
    return days


def fan_rules_update(*, membership: Membership, **thresholds: Any) -> FanRules:
    """Change some or all of the agency's tier thresholds and lifecycle days (the rest keep their
    values). Tiers must rise strictly low < mid < high < whale; churned_days must be above
    at_risk_days."""
    require(membership, Perm.EDIT)
    unknown = sorted(set(thresholds) - set(RULE_FIELDS))
    if unknown:
        raise ApplicationError(
            f"Unknown rule(s): {', '.join(unknown)}. Rules are: {', '.join(RULE_FIELDS)}.", field=unknown[0]
        )
    values: dict[str, Any] = {}
    for name, value in thresholds.items():
        values[name] = _money(name, value) if name in TIER_FIELDS else _days(name, value)
    with transaction.atomic():
        rules, _ = FanRules.objects.select_for_update().get_or_create(agency_id=membership.agency_id)
        for name, value in values.items():
            setattr(rules, name, value)
        for lower, higher in pairwise(TIER_FIELDS):
            if getattr(rules, higher) <= getattr(rules, lower):
                raise ApplicationError(
                    f"{_label(higher)} ({getattr(rules, higher)}) must be above {_label(lower)} "
                    f"({getattr(rules, lower)}).",
                    field=higher if higher in values else lower,
                )
        if rules.churned_days <= rules.at_risk_days:
            raise ApplicationError(
                f"Churned after ({rules.churned_days} days) must be longer than at risk after "
                f"({rules.at_risk_days} days).",
                field="churned_days" if "churned_days" in values else "at_risk_days",
            )
        rules.save()
    return rules


RULE_LABELS = {
    "whale_min": "Whale from",
    "high_min": "High from",
    "mid_min": "Mid from",
    "low_min": "Low from",
    "new_days": "New for",
    "at_risk_days": "At risk after",
    "churned_days": "Churned after",
}


def _label(name: str) -> str:
    return RULE_LABELS[name]


def can_change(membership: Membership, item: Segment | MessageTemplate) -> bool:
    """Whether ``membership`` may edit or delete ``item`` (for showing the buttons)."""
    if item.created_by_id != membership.user_id and not has_perm(membership, Perm.EDIT):
        return False
    if item.creator_id is None:
        return has_perm(membership, Perm.EDIT)
    return has_perm(membership, Perm.SEND_MESSAGES)
