from __future__ import annotations

from decimal import Decimal

import factory
from django.utils import timezone

from apps.accounts.models import Agency, Creator, CreatorAssignment, Invitation, Membership, Role, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password(PASSWORD)
    # Verified by default, as every user who existed before verification was; tests of the
    # unverified state pass email_verified_at=None.
    email_verified_at = factory.LazyFunction(timezone.now)


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency

    name = factory.Sequence(lambda n: f"Agency {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    agency = factory.SubFactory(AgencyFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.OWNER


class CreatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Creator

    agency = factory.SubFactory(AgencyFactory)
    display_name = factory.Sequence(lambda n: f"Creator {n}")
    niche = "fitness"
    persona = "Upbeat trainer."
    voice = "Short, energetic."
    language = "en"
    timezone = "Europe/Paris"
    ppv_price_min = Decimal("5.00")
    ppv_price_max = Decimal("40.00")
    handles = factory.LazyFunction(lambda: {"onlyfans": "someone"})


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreatorAssignment

    membership = factory.SubFactory(MembershipFactory, role=Role.CHATTER)
    creator = factory.SubFactory(CreatorFactory)
    agency = factory.SelfAttribute("membership.agency")


class InvitationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invitation

    agency = factory.SubFactory(AgencyFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.CHATTER
