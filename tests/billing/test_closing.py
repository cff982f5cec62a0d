"""Closing an agency (its last member deletes their account) as the customer and Stripe meet it:
the Stripe subscription is cancelled before anything is deleted, so the customer stops being
charged; when Stripe refuses, nothing is deleted and the user is told why. Two co-owners leaving
at the same moment cannot leave the agency without an owner (PostgreSQL row locks)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest
from django.db import connection, connections, transaction
from django.test import Client
from django.urls import reverse

from apps.accounts.account_deletion import account_delete
from apps.accounts.models import Agency, Membership, Role, User
from apps.billing.models import BillingEvent, Subscription, SubscriptionChange
from apps.core.errors import ApplicationError
from tests.accounts.factories import PASSWORD, CreatorFactory, MembershipFactory
from tests.billing.test_stripe import WEBHOOK, subscribe
from tests.fakes.stripe_server import deliver

DELETE = reverse("accounts:account-delete")


def solo_agency(name: str = "Solo Studio") -> Membership:
    owner = MembershipFactory(agency__name=name, role=Role.OWNER)
    CreatorFactory(agency=owner.agency, display_name="Solo Star")
    return owner


def signed_in(membership: Membership) -> Client:
    client = Client()
    assert (
        client.post(reverse("accounts:login"), {"username": membership.user.email, "password": PASSWORD}).status_code
        == 302
    )
    return client


def close(client: Client, name: str = "Solo Studio"):
    return client.post(DELETE, {"password": PASSWORD, "confirmation": name})


@pytest.mark.django_db
def test_closing_an_agency_cancels_its_stripe_subscription_first(stripe_on):
    owner = solo_agency()
    subscription = subscribe(SimpleNamespace(owner=owner), stripe_on, "creator")
    assert Subscription.objects.get(agency=owner.agency).stripe_subscription_id == subscription["id"]

    response = close(signed_in(owner))

    assert response.status_code == 302 and response["Location"] == reverse("accounts:account-deleted")
    assert stripe_on.subscriptions[subscription["id"]]["status"] == "canceled"  # no more charges
    assert ("DELETE", f"/v1/subscriptions/{subscription['id']}") in [(m, p) for m, p, _ in stripe_on.requests]
    assert not Agency.objects.filter(pk=owner.agency_id).exists()
    assert not Subscription.objects.filter(agency_id=owner.agency_id).exists()

    # Stripe then tells us the subscription is deleted: expected, so not flagged for the admin.
    event = stripe_on.event("customer.subscription.deleted", stripe_on.subscriptions[subscription["id"]])
    assert deliver(Client(), WEBHOOK, event).status_code == 200
    stored = BillingEvent.objects.get(stripe_id=event["id"])
    assert stored.processed_at is not None and not stored.flagged and stored.error == ""


@pytest.mark.django_db
def test_when_stripe_fails_nothing_is_deleted_and_the_user_is_told(stripe_on):
    owner = solo_agency()
    subscription = subscribe(SimpleNamespace(owner=owner), stripe_on)
    for _ in range(3):  # the SDK retries a 500 twice
        stripe_on.fail_next(500)
    client = signed_in(owner)

    response = close(client)

    assert response.status_code == 400
    body = response.content.decode()
    assert "could not be cancelled, so nothing was deleted" in body and "try again in a minute" in body
    assert stripe_on.subscriptions[subscription["id"]]["status"] == "active"
    assert User.objects.filter(pk=owner.user_id).exists() and Agency.objects.filter(pk=owner.agency_id).exists()
    assert Subscription.objects.get(agency=owner.agency).status == "active"
    assert client.get(reverse("accounts:profile")).status_code == 200  # still signed in
    # Once Stripe answers again, the same form closes the agency.
    assert close(client).status_code == 302
    assert stripe_on.subscriptions[subscription["id"]]["status"] == "canceled"


@pytest.mark.django_db
def test_a_subscription_stripe_no_longer_knows_does_not_block_closing(stripe_on):
    owner = solo_agency()
    subscription = subscribe(SimpleNamespace(owner=owner), stripe_on)
    del stripe_on.subscriptions[subscription["id"]]  # removed on Stripe's side meanwhile
    assert close(signed_in(owner)).status_code == 302
    assert not Agency.objects.filter(pk=owner.agency_id).exists()


@pytest.mark.django_db
def test_without_stripe_a_manual_plan_has_nothing_to_cancel(stripe_server, settings):
    settings.STRIPE_SECRET_KEY = ""
    stripe_server.reset()
    owner = solo_agency()
    assert Subscription.objects.get(agency=owner.agency).source == "manual"
    assert close(signed_in(owner)).status_code == 302
    assert not Agency.objects.filter(pk=owner.agency_id).exists()
    assert stripe_server.requests == []


@pytest.mark.django_db
def test_a_stripe_subscription_with_the_key_removed_is_refused_with_the_way_out(stripe_on, settings):
    owner = solo_agency()
    subscribe(SimpleNamespace(owner=owner), stripe_on)
    settings.STRIPE_SECRET_KEY = ""
    response = close(signed_in(owner))
    assert response.status_code == 400 and "ask the operator to cancel it in Stripe" in response.content.decode()
    assert Agency.objects.filter(pk=owner.agency_id).exists()


@pytest.mark.django_db
def test_leaving_an_agency_that_goes_on_cancels_nothing(world, stripe_on):
    subscription = subscribe(world, stripe_on)
    assert signed_in(world.manager).post(DELETE, {"password": PASSWORD}).status_code == 302
    assert stripe_on.subscriptions[subscription["id"]]["status"] == "active"
    assert Subscription.objects.get(agency=world.agency).status == "active"


# --- Two co-owners at once -----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_co_owners_deleting_at_once_leave_one_owner(world):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks (SQLite runs one writer at a time and has no FOR UPDATE)")
    Membership.objects.filter(pk=world.manager.pk).update(role=Role.OWNER)
    owners = [world.owner.user, world.manager.user]
    results: dict[int, str] = {}
    holding = threading.Event()
    release = threading.Event()

    def hold_user_rows() -> None:
        # Another transaction holds both users' rows: each deletion gets as far as deleting its
        # user and waits there, so without the owners' lock both would have passed the check.
        try:
            with transaction.atomic():
                list(User.objects.select_for_update().filter(pk__in=[u.pk for u in owners]))
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    def delete(user: User) -> None:
        try:
            account_delete(user=User.objects.get(pk=user.pk), password=PASSWORD)
            results[user.pk] = "deleted"
        except ApplicationError as error:
            results[user.pk] = error.message
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_user_rows)
    holder.start()
    assert holding.wait(10)
    workers = [threading.Thread(target=delete, args=(user,)) for user in owners]
    for worker in workers:
        worker.start()
    time.sleep(1.0)  # both deletions are waiting on a lock now
    release.set()
    for thread in (holder, *workers):
        thread.join(20)

    assert len(results) == 2 and list(results.values()).count("deleted") == 1, results  # not both
    (refused,) = [message for message in results.values() if message != "deleted"]
    assert "You are the only owner of Velvet" in refused
    assert Membership.objects.filter(agency=world.agency, role=Role.OWNER).count() == 1


@pytest.mark.django_db
def test_deleting_an_agency_in_the_admin_cancels_its_stripe_subscription_or_keeps_it(stripe_on):
    from tests.accounts.factories import UserFactory

    staff = UserFactory(is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(staff, backend="django.contrib.auth.backends.ModelBackend")
    owner = solo_agency()
    subscription = subscribe(SimpleNamespace(owner=owner), stripe_on)
    url = reverse("admin:accounts_agency_delete", args=[owner.agency_id])
    # With its plan history kept (nobody may delete those rows), the admin refuses to delete it
    # and Stripe is not asked at all.
    assert admin.post(url, {"post": "yes"}).status_code == 403
    assert stripe_on.subscriptions[subscription["id"]]["status"] == "active"
    SubscriptionChange.objects.filter(subscription__agency=owner.agency).delete()  # an agency without history
    changelist = admin.get(reverse("admin:accounts_agency_changelist")).content.decode()
    assert 'value="delete_selected"' not in changelist  # no bulk delete that would skip Stripe

    for _ in range(3):  # the SDK retries a 500 twice
        stripe_on.fail_next(500)
    refused = admin.post(url, {"post": "yes"}, follow=True)
    assert "could not be cancelled, so nothing was deleted" in refused.content.decode()
    assert Agency.objects.filter(pk=owner.agency_id).exists()
    assert stripe_on.subscriptions[subscription["id"]]["status"] == "active"

    assert admin.post(url, {"post": "yes"}).status_code == 302
    assert not Agency.objects.filter(pk=owner.agency_id).exists()
    assert stripe_on.subscriptions[subscription["id"]]["status"] == "canceled"
