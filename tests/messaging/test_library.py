"""Segments, templates and fan rules: validation named by field, permissions by role, outsiders 404."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.core.errors import ApplicationError, ConflictError
from apps.messaging.library import (
    fan_rules_update,
    segment_create,
    segment_delete,
    segment_update,
    template_create,
    template_delete,
    template_update,
)
from apps.messaging.models import FanRules, MessageTemplate, Segment
from apps.messaging.tiers import rules_for

pytestmark = pytest.mark.django_db


# --- Segments -------------------------------------------------------------------------------------


def test_segment_create_stores_normalised_filters(world):
    segment = segment_create(
        membership=world.manager, name="  Big   spenders ", filters={"tiers": ["whale"], "tags": ["VIP "]}
    )
    segment.refresh_from_db()
    assert segment.name == "Big spenders"
    assert segment.filters == {"tiers": ["whale"], "tags": ["vip"]}
    assert segment.created_by == world.manager.user


def test_segment_unknown_filter_key_is_named(world):
    with pytest.raises(ApplicationError) as raised:
        segment_create(membership=world.owner, name="Typo", filters={"teirs": ["whale"]})
    assert "teirs" in raised.value.message
    assert raised.value.extra["key"] == "teirs"
    assert not Segment.objects.exists()


def test_segment_name_taken_is_a_conflict_on_name(world):
    segment_create(membership=world.owner, name="Whales", filters={})
    with pytest.raises(ConflictError) as raised:
        segment_create(membership=world.owner, name="whales", filters={})
    assert raised.value.field == "name"
    assert Segment.objects.count() == 1


def test_chatter_creates_for_assigned_creator_only(world):
    mine = segment_create(membership=world.chatter, name="Mine", filters={}, creator=world.creator)
    assert mine.creator == world.creator
    with pytest.raises(PermissionDenied):
        segment_create(membership=world.chatter, name="Theirs", filters={}, creator=world.other_creator)
    with pytest.raises(PermissionDenied):  # all creators needs the edit permission
        segment_create(membership=world.chatter, name="Everyone", filters={})


def test_viewer_cannot_create_segments_or_templates(world):
    with pytest.raises(PermissionDenied):
        segment_create(membership=world.viewer, name="No", filters={}, creator=world.creator)
    with pytest.raises(PermissionDenied):
        template_create(membership=world.viewer, name="No", text="Hi", creator=world.creator)
    assert not Segment.objects.exists() and not MessageTemplate.objects.exists()


def test_chatter_cannot_change_or_delete_a_managers_segment(world):
    segment = segment_create(membership=world.manager, name="Managers", filters={}, creator=world.creator)
    with pytest.raises(PermissionDenied):
        segment_update(membership=world.chatter, segment=segment, name="Mine now", filters={}, creator=world.creator)
    with pytest.raises(PermissionDenied):
        segment_delete(membership=world.chatter, segment=segment)
    segment.refresh_from_db()
    assert segment.name == "Managers"


def test_chatter_changes_and_deletes_own_segment(world):
    segment = segment_create(membership=world.chatter, name="Mine", filters={}, creator=world.creator)
    segment_update(
        membership=world.chatter, segment=segment, name="Mine too", filters={"tiers": ["mid"]}, creator=world.creator
    )
    segment.refresh_from_db()
    assert (segment.name, segment.filters) == ("Mine too", {"tiers": ["mid"]})
    segment_delete(membership=world.chatter, segment=segment)
    assert not Segment.objects.exists()


def test_outsider_gets_404_on_segment_and_creator(world, other_world):
    segment = segment_create(membership=world.owner, name="Ours", filters={})
    with pytest.raises(Http404):
        segment_delete(membership=other_world.owner, segment=segment)
    with pytest.raises(Http404):
        segment_create(membership=other_world.owner, name="Theirs", filters={}, creator=world.creator)
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_segment_update_bad_filters_changes_nothing(world):
    segment = segment_create(membership=world.owner, name="Whales", filters={"tiers": ["whale"]})
    with pytest.raises(ApplicationError) as raised:
        segment_update(membership=world.owner, segment=segment, name="Renamed", filters={"spent_min": "lots"})
    assert "spent_min" in raised.value.message
    segment.refresh_from_db()
    assert (segment.name, segment.filters) == ("Whales", {"tiers": ["whale"]})


# --- Templates ------------------------------------------------------------------------------------


def test_template_unknown_variable_is_a_field_error_naming_it(world):
    with pytest.raises(ApplicationError) as raised:
        template_create(membership=world.owner, name="Hi", text="Hey {fan.nickname|babe}")
    assert raised.value.field == "text"
    assert "fan.nickname" in raised.value.message
    assert not MessageTemplate.objects.exists()


def test_template_stray_brace_and_empty_text_and_bad_category(world):
    with pytest.raises(ApplicationError) as raised:
        template_create(membership=world.owner, name="Brace", text="Hey {fan.name")
    assert raised.value.field == "text"
    with pytest.raises(ApplicationError) as raised:
        template_create(membership=world.owner, name="Empty", text="   ")
    assert raised.value.field == "text"
    with pytest.raises(ApplicationError) as raised:
        template_create(membership=world.owner, name="Cat", text="Hi", category="spam")
    assert raised.value.field == "category"
    with pytest.raises(ApplicationError) as raised:
        template_create(membership=world.owner, name="Long", text="x" * 2001)
    assert raised.value.field == "text"


def test_template_create_update_delete(world):
    template = template_create(
        membership=world.chatter, name="Welcome", text="Hi {fan.first_name|babe}", category="welcome",
        creator=world.creator,
    )  # fmt: skip
    template_update(
        membership=world.chatter, template=template, name="Welcome!", text="Hello {fan.name}", category="custom",
        creator=world.creator,
    )  # fmt: skip
    template.refresh_from_db()
    assert (template.name, template.text, template.category) == ("Welcome!", "Hello {fan.name}", "custom")
    with pytest.raises(PermissionDenied):
        template_delete(membership=world.viewer, template=template)
    template_delete(membership=world.manager, template=template)
    assert not MessageTemplate.objects.exists()


def test_template_for_all_creators_needs_edit(world):
    with pytest.raises(PermissionDenied):
        template_create(membership=world.chatter, name="Shared", text="Hi")
    shared = template_create(membership=world.manager, name="Shared", text="Hi")
    assert shared.creator is None


def test_template_outsider_404(world, other_world):
    template = template_create(membership=world.owner, name="Ours", text="Hi")
    with pytest.raises(Http404):
        template_update(membership=other_world.owner, template=template, name="x", text="y", category="custom")
    template.refresh_from_db()
    assert template.name == "Ours"


# --- Fan rules ------------------------------------------------------------------------------------


def test_fan_rules_update_saves_and_tiers_follow(world):
    rules = fan_rules_update(membership=world.manager, whale_min="1000", high_min="200", churned_days=45)
    assert rules.pk is not None
    current = rules_for(world.agency.pk)
    assert (current.whale_min, current.high_min, current.churned_days) == (Decimal("1000.00"), Decimal("200"), 45)
    assert current.mid_min == Decimal("25.00")  # untouched keeps its value


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"mid_min": "150"}, "mid_min"),  # above high_min (100)
        ({"whale_min": "50"}, "whale_min"),  # below high_min
        ({"low_min": "0"}, "low_min"),
        ({"low_min": "abc"}, "low_min"),
        ({"churned_days": "5"}, "churned_days"),  # not above at_risk_days (7)
        ({"new_days": "0"}, "new_days"),
        ({"at_risk_days": "seven"}, "at_risk_days"),
        ({"whales": "5"}, "whales"),
    ],
)
def test_fan_rules_invalid_is_a_field_error_and_changes_nothing(world, changes, field):
    fan_rules_update(membership=world.owner, whale_min="600")
    with pytest.raises(ApplicationError) as raised:
        fan_rules_update(membership=world.owner, **changes)
    assert raised.value.field == field
    rules = FanRules.objects.get(agency=world.agency)
    assert (rules.whale_min, rules.mid_min, rules.churned_days) == (Decimal("600.00"), Decimal("25.00"), 30)


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_fan_rules_need_edit(world, role):
    with pytest.raises(PermissionDenied):
        fan_rules_update(membership=world.member(role), whale_min="900")
    assert not FanRules.objects.exists()
