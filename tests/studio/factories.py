from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from apps.studio.analytics import title_fingerprint
from apps.studio.models import ContentIdea, Post
from tests.accounts.factories import CreatorFactory


class PostFactory(factory.django.DjangoModelFactory):
    """A post from yesterday with a 6% engagement rate ((50 + 10) / 1000) and no revenue."""

    class Meta:
        model = Post

    creator = factory.SubFactory(CreatorFactory)
    agency = factory.SelfAttribute("creator.agency")
    platform = "onlyfans"
    posted_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    caption = "new set just dropped"
    tags = factory.LazyFunction(list)
    category = "photo"
    media_type = "photo"
    views = 1000
    likes = 50
    comments = 10
    tips = Decimal("0")
    ppv_unlocks = 0
    revenue = Decimal("0")


class ContentIdeaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContentIdea

    creator = factory.SubFactory(CreatorFactory)
    agency = factory.SelfAttribute("creator.agency")
    title = factory.Sequence(lambda n: f"Idea number {n}")
    description = "A photo set."
    category = "photo"
    tags = factory.LazyFunction(list)
    fingerprint = factory.LazyAttribute(lambda idea: title_fingerprint(idea.title))
