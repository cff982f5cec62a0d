"""The websockets' per-message check (``member_and_creator``, ``membership_refresh``): one written-out
statement that must answer exactly what the querysets it replaced answered, with the same values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Agency, Creator, Membership, Role, User
from apps.accounts.selectors import creator_get_for_member, member_and_creator, membership_current, membership_refresh
from tests.accounts.factories import CreatorFactory

pytestmark = pytest.mark.django_db


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_every_field_reads_back_as_the_orm_reads_it(world):
    world.agency.require_two_factor = True
    world.agency.save()
    creator = CreatorFactory(
        agency=world.agency, sample_texts=["hey you 💋", "morning!"], avoid_words=["cheap"],
        ppv_price_min=Decimal("7.50"), handles={"onlyfans": "star", "fansly": "star2"},
    )  # fmt: skip

    with CaptureQueriesContext(connection) as queries:
        membership, found = member_and_creator(membership=world.owner, creator_id=creator.pk)

    assert len(queries) == 1
    assert _fields(membership) == _fields(Membership.objects.get(pk=world.owner.pk))
    assert _fields(membership.agency) == _fields(Agency.objects.get(pk=world.agency.pk))
    assert _fields(membership.user) == _fields(User.objects.get(pk=world.owner.user_id))
    assert _fields(found) == _fields(Creator.objects.get(pk=creator.pk))
    # Types, not only equality: a JSON list, an exact decimal, an aware datetime, a real boolean.
    assert found.sample_texts == ["hey you 💋", "morning!"]
    assert found.ppv_price_min == Decimal("7.50") and isinstance(found.ppv_price_min, Decimal)
    assert found.created_at.tzinfo is not None
    assert membership.agency.require_two_factor is True
    assert found.is_archived is False
    # Saving what was read writes it back unchanged.
    found.save()
    assert Creator.objects.get(pk=creator.pk).sample_texts == ["hey you 💋", "morning!"]


@pytest.mark.parametrize(
    ("role", "creator", "visible"),
    [
        ("owner", "creator", True),
        ("owner", "other_creator", True),
        ("manager", "other_creator", True),
        ("chatter", "creator", True),  # assigned to the chatter
        ("chatter", "other_creator", False),  # not assigned
        ("viewer", "other_creator", True),  # sees it; generating is refused by has_perm, not here
    ],
)
def test_a_creator_is_answered_exactly_when_the_queryset_answers_it(world, role, creator, visible):
    membership = world.member(role)
    target = getattr(world, creator)

    _, found = member_and_creator(membership=membership, creator_id=target.pk)

    assert (found is not None) == visible
    try:
        expected = creator_get_for_member(membership=membership, creator_id=target.pk, include_archived=False)
    except Http404:
        expected = None
    assert (found.pk if found else None) == (expected.pk if expected else None)


def test_another_agencys_creator_an_archived_one_and_a_missing_id_are_not_answered(world, other_world):
    archived = CreatorFactory(agency=world.agency, is_archived=True)

    assert member_and_creator(membership=world.owner, creator_id=other_world.creator.pk)[1] is None
    assert member_and_creator(membership=world.owner, creator_id=archived.pk)[1] is None
    assert member_and_creator(membership=world.owner, creator_id=archived.pk, include_archived=True)[1] == archived
    assert member_and_creator(membership=world.owner, creator_id=10**9)[1] is None
    # Beyond a bigint: no database error, just no creator; the membership is still answered.
    membership, creator = member_and_creator(membership=world.owner, creator_id=2**70)
    assert membership == world.owner and creator is None


def test_a_changed_role_is_seen_and_a_removed_member_or_deactivated_user_is_gone(world):
    Membership.objects.filter(pk=world.manager.pk).update(role=Role.VIEWER)
    assert membership_refresh(membership=world.manager).role == Role.VIEWER

    User.objects.filter(pk=world.chatter.user_id).update(is_active=False)
    assert member_and_creator(membership=world.chatter, creator_id=world.creator.pk) == (None, None)

    stale = Membership.objects.get(pk=world.owner.pk)
    world.owner.delete()
    assert membership_refresh(membership=stale) is None
    assert member_and_creator(membership=stale, creator_id=world.creator.pk) == (None, None)


def test_the_current_membership_is_the_chosen_agencys_else_the_first(world, other_world):
    from tests.accounts.factories import MembershipFactory

    user = world.manager.user
    second = MembershipFactory(agency=other_world.agency, user=user, role=Role.VIEWER)

    with CaptureQueriesContext(connection) as queries:
        chosen = membership_current(user=user, agency_id=other_world.agency.pk)
    assert len(queries) == 1
    assert chosen == second and chosen.agency.name == other_world.agency.name
    assert _fields(chosen.agency) == _fields(Agency.objects.get(pk=other_world.agency.pk))
    # No choice, a choice the user is no member of, or junk in the session: the first membership.
    for agency_id in (None, 10**9, "junk", 2**70, str(other_world.agency.pk)):
        expected = second if agency_id == str(other_world.agency.pk) else world.manager
        assert membership_current(user=user, agency_id=agency_id) == expected
    Membership.objects.filter(user=user).delete()
    assert membership_current(user=user, agency_id=None) is None


def test_a_chatters_assignment_read_with_the_creator_is_not_queried_again(world):
    from apps.accounts.permissions import Perm, has_perm

    membership, creator = member_and_creator(membership=world.chatter, creator_id=world.creator.pk)
    with CaptureQueriesContext(connection) as queries:
        assert has_perm(membership, Perm.SEND_MESSAGES, creator)
    assert len(queries) == 0
    # Another creator is still asked about: the statement only knew this one's assignment.
    with CaptureQueriesContext(connection) as queries:
        assert not has_perm(membership, Perm.SEND_MESSAGES, world.other_creator)
    assert len(queries) == 1


def test_a_chatters_archived_creator_and_an_unassigned_one_are_refused_without_a_second_query(world):
    from apps.accounts.permissions import Perm, has_perm

    Creator.objects.filter(pk=world.creator.pk).update(is_archived=True)
    assert member_and_creator(membership=world.chatter, creator_id=world.creator.pk)[1] is None
    assert member_and_creator(membership=world.chatter, creator_id=world.creator.pk, include_archived=True)[1]

    membership, found = member_and_creator(membership=world.chatter, creator_id=world.other_creator.pk)
    assert found is None and membership.creator_assignment == (world.other_creator.pk, False)
    with CaptureQueriesContext(connection) as queries:
        assert not has_perm(membership, Perm.SEND_MESSAGES, world.other_creator)
    assert len(queries) == 0
