"""The permission map, role by role: what each role may do, and chatters' creator scope."""

from __future__ import annotations

import pytest

from apps.accounts.permissions import Perm, can_grant, can_manage, has_perm

EXPECTED = {
    "owner": {Perm.VIEW, Perm.EDIT, Perm.SEND_MESSAGES, Perm.MANAGE_MEMBERS, Perm.MANAGE_BILLING},
    "manager": {Perm.VIEW, Perm.EDIT, Perm.SEND_MESSAGES, Perm.MANAGE_MEMBERS},
    "chatter": {Perm.VIEW, Perm.SEND_MESSAGES},
    "viewer": {Perm.VIEW},
}


@pytest.mark.parametrize("role", EXPECTED)
def test_role_permissions(world, role):
    membership = world.member(role)
    assert {perm for perm in Perm if has_perm(membership, perm)} == EXPECTED[role]


def test_chatter_is_limited_to_assigned_creators(world):
    assert has_perm(world.chatter, Perm.SEND_MESSAGES, world.creator)
    assert not has_perm(world.chatter, Perm.SEND_MESSAGES, world.other_creator)
    assert has_perm(world.manager, Perm.SEND_MESSAGES, world.other_creator)


def test_no_permission_on_another_agencys_creator(world, other_world):
    assert not has_perm(world.owner, Perm.VIEW, other_world.creator)


def test_managers_cannot_touch_owners_or_grant_owner(world):
    assert can_manage(world.owner, world.manager)
    assert can_manage(world.manager, world.chatter)
    assert not can_manage(world.manager, world.owner)
    assert not can_grant(world.manager, "owner")
    assert can_grant(world.owner, "owner")
    assert not can_manage(world.viewer, world.chatter)


def test_nobody_manages_members_of_another_agency(world, other_world):
    assert not can_manage(world.owner, other_world.viewer)
