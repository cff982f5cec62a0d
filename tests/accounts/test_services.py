"""Account services: the rules the database cannot state."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, connections, transaction

from apps.accounts import services
from apps.accounts.models import Creator, Membership, Role, User
from apps.core.errors import ApplicationError, ConflictError
from apps.notifications.models import Notification
from tests.accounts.factories import MembershipFactory, UserFactory


def test_signup_creates_user_agency_and_owner_membership(db):
    membership = services.user_signup(
        email="New@Example.com", password="a-long-passphrase", full_name="Nia", agency_name="Nia Media"
    )
    assert membership.role == Role.OWNER
    assert membership.user.email == "new@example.com"
    assert membership.agency.name == "Nia Media"
    with pytest.raises(ConflictError):
        services.user_signup(email="new@EXAMPLE.com", password="x" * 12, full_name="Dup", agency_name="Dup")


def test_one_membership_per_user_and_agency_is_a_database_rule(world):
    with pytest.raises(IntegrityError):
        Membership.objects.create(agency=world.agency, user=world.viewer.user, role=Role.MANAGER)


def test_creator_price_range_is_validated_and_constrained(world):
    with pytest.raises(ApplicationError) as error:
        services.creator_create(
            membership=world.owner,
            data={"display_name": "X", "ppv_price_min": Decimal("30"), "ppv_price_max": Decimal("10")},
        )
    assert error.value.field == "ppv_price_max"
    with pytest.raises(IntegrityError):
        Creator.objects.create(
            agency=world.agency, display_name="Bad", ppv_price_min=Decimal("0"), ppv_price_max=Decimal("5")
        )


def test_duplicate_creator_name_is_a_conflict(world):
    with pytest.raises(ConflictError):
        services.creator_create(membership=world.owner, data={"display_name": world.creator.display_name})


@pytest.mark.parametrize("role", ["chatter", "viewer"])
def test_roles_without_edit_cannot_create_creators(world, role):
    with pytest.raises(PermissionDenied):
        services.creator_create(membership=world.member(role), data={"display_name": "Nope"})


def test_last_owner_cannot_leave_or_be_demoted(world):
    with pytest.raises(ApplicationError):
        services.member_remove(by=world.owner, member=world.owner)
    with pytest.raises(ApplicationError):
        services.member_change_role(by=world.owner, member=world.owner, role=Role.MANAGER)
    second = MembershipFactory(agency=world.agency, role=Role.OWNER)
    services.member_change_role(by=second, member=world.owner, role=Role.MANAGER)
    assert Membership.objects.get(pk=world.owner.pk).role == Role.MANAGER


def test_manager_cannot_remove_owner_or_promote_to_owner(world):
    with pytest.raises(ApplicationError):
        services.member_remove(by=world.manager, member=world.owner)
    with pytest.raises(ApplicationError):
        services.member_change_role(by=world.manager, member=world.viewer, role=Role.OWNER)
    services.member_change_role(by=world.manager, member=world.viewer, role=Role.CHATTER)
    assert Membership.objects.get(pk=world.viewer.pk).role == Role.CHATTER


def test_changing_a_chatter_to_another_role_clears_assignments(world):
    services.member_change_role(by=world.owner, member=world.chatter, role=Role.VIEWER)
    assert not world.chatter.assignments.exists()


def test_assignments_replace_and_reject_foreign_creators(world, other_world):
    services.member_set_assignments(by=world.manager, member=world.chatter, creators=[world.other_creator])
    assert list(world.chatter.assignments.values_list("creator_id", flat=True)) == [world.other_creator.pk]
    with pytest.raises(ApplicationError):
        services.member_set_assignments(by=world.manager, member=world.chatter, creators=[other_world.creator])
    with pytest.raises(ApplicationError):
        services.member_set_assignments(by=world.manager, member=world.viewer, creators=[world.creator])


def test_invitation_rules(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        invitation = services.invitation_create(by=world.manager, email=" Friend@Example.com ", role=Role.CHATTER)
    assert invitation.email == "friend@example.com"
    assert len(callbacks) == 1  # the email task is enqueued after commit
    with pytest.raises(ConflictError):
        services.invitation_create(by=world.manager, email="friend@example.com", role=Role.VIEWER)
    with pytest.raises(ConflictError):
        services.invitation_create(by=world.owner, email=world.viewer.user.email, role=Role.VIEWER)
    with pytest.raises(ApplicationError):
        services.invitation_create(by=world.manager, email="boss@example.com", role=Role.OWNER)
    with pytest.raises(PermissionDenied):
        services.invitation_create(by=world.chatter, email="pal@example.com", role=Role.VIEWER)


def test_invitation_accept_only_by_its_address_and_only_once(world):
    invitation = services.invitation_create(by=world.owner, email="guest@example.com", role=Role.VIEWER)
    stranger = UserFactory(email="stranger@example.com")
    with pytest.raises(ApplicationError):
        services.invitation_accept(invitation=invitation, user=stranger)
    guest = UserFactory(email="guest@example.com")
    membership = services.invitation_accept(invitation=invitation, user=guest)
    assert membership.role == Role.VIEWER and membership.agency == world.agency
    news = Notification.objects.get(user=world.owner.user)
    assert news.title == f"{guest.get_full_name()} joined as viewer" and news.agency == world.agency
    with pytest.raises(ApplicationError):
        services.invitation_accept(invitation=invitation, user=guest)


def test_api_token_is_hashed_shown_once_and_revocable(world):
    token, secret = services.api_token_create(membership=world.owner, name="CRM sync")
    assert secret.startswith("hz_") and secret not in token.token_hash
    assert services.api_token_authenticate(secret).pk == token.pk
    assert services.api_token_authenticate(secret + "x") is None
    services.api_token_revoke(membership=world.owner, token=token)
    assert services.api_token_authenticate(secret) is None


def test_api_token_dies_with_its_membership(world):
    _token, secret = services.api_token_create(membership=world.manager, name="Zap")
    services.member_remove(by=world.owner, member=world.manager)
    assert services.api_token_authenticate(secret) is None


@pytest.mark.django_db(transaction=True)
def test_a_double_submitted_signup_is_a_conflict_on_the_email_not_a_server_error():
    """The second submit checks the address while the first is inserted but not committed: its
    insert waits for the first, then meets the unique constraint."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serialises writers, so the second submit sees the first")
    signup = {"email": "twice@example.com", "password": "a-long-passphrase", "full_name": "Tw", "agency_name": "Tw"}
    inserted = threading.Event()

    def first_submit() -> None:
        try:
            with transaction.atomic():
                services.user_signup(**signup)
                inserted.set()
                with connection.cursor() as cursor:  # commit once the second insert waits on this one
                    for _ in range(200):
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.05)
        finally:
            connections.close_all()

    first = threading.Thread(target=first_submit)
    first.start()
    assert inserted.wait(10)
    with pytest.raises(ConflictError) as conflict:
        services.user_signup(**signup)
    first.join(10)
    assert conflict.value.field == "email" and "already exists" in conflict.value.message
    assert User.objects.filter(email="twice@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_owners_removing_each_other_at_once_leave_one_owner():
    """Each removal alone leaves an owner; the second must count the owners the first left."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite's IMMEDIATE transactions serialise the two removals")
    from tests.conftest import build_world

    world = build_world("Coup")
    second = MembershipFactory(agency=world.agency, role=Role.OWNER)
    removed, done = threading.Event(), threading.Event()

    def first_removal() -> None:
        try:
            with transaction.atomic():
                services.member_remove(by=world.owner, member=second)
                removed.set()
                with connection.cursor() as cursor:  # commit once the other removal waits (or ended)
                    for _ in range(200):
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0] or done.is_set():
                            break
                        time.sleep(0.05)
        finally:
            connections.close_all()

    first = threading.Thread(target=first_removal)
    first.start()
    assert removed.wait(10)
    try:
        with pytest.raises(ApplicationError, match="at least one owner"):
            services.member_remove(by=second, member=world.owner)
    finally:
        done.set()
        first.join(10)
    assert list(Membership.objects.filter(agency=world.agency, role=Role.OWNER)) == [world.owner]
