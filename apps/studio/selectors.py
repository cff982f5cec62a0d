"""Reads for the studio, scoped to the creators the member may see (404 otherwise)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q, QuerySet
from django.http import Http404

from apps.accounts.models import Membership
from apps.accounts.selectors import creator_list
from apps.studio.models import ContentIdea, Generation, Post
from apps.studio.platforms import PLATFORMS


def _visible(queryset: QuerySet, membership: Membership) -> QuerySet:
    return queryset.for_agency(membership.agency_id).filter(creator__in=creator_list(membership=membership))


def generation_list(*, membership: Membership, creator_id: int | None = None, saved: bool | None = None) -> QuerySet:
    generations = _visible(Generation.objects.select_related("creator"), membership)
    if creator_id is not None:
        generations = generations.filter(creator_id=creator_id)
    if saved is not None:
        generations = generations.filter(saved=saved)
    return generations


def generation_get_for_member(*, membership: Membership, generation_id: int) -> Generation:
    generation = generation_list(membership=membership).filter(pk=generation_id).first()
    if generation is None:
        raise Http404("No such generation.")
    return generation


def idea_list(
    *,
    membership: Membership,
    creator_id: int | None = None,
    category: str | None = None,
    favourite: bool | None = None,
    used: bool | None = None,
    query: str = "",
) -> QuerySet:
    ideas = _visible(ContentIdea.objects.select_related("creator"), membership)
    if creator_id is not None:
        ideas = ideas.filter(creator_id=creator_id)
    if category:
        ideas = ideas.filter(category=category)
    if favourite is not None:
        ideas = ideas.filter(is_favourite=favourite)
    if used is not None:
        ideas = ideas.filter(used_at__isnull=not used)
    if query:
        ideas = ideas.filter(Q(title__icontains=query) | Q(description__icontains=query))
    return ideas


def idea_get_for_member(*, membership: Membership, idea_id: int) -> ContentIdea:
    idea = idea_list(membership=membership).filter(pk=idea_id).first()
    if idea is None:
        raise Http404("No such idea.")
    return idea


def post_list(*, membership: Membership, creator_id: int | None = None) -> QuerySet:
    posts = _visible(Post.objects.select_related("creator"), membership)
    return posts.filter(creator_id=creator_id) if creator_id is not None else posts


def post_engagement_history(*, agency_id: int, since: datetime | None = None) -> QuerySet:
    """(creator_id, posted_at, likes + comments) of every post of the agency, oldest first: the
    optimization engines' evidence, read for a whole agency at once (no member: the nightly run)."""
    posts = Post.objects.for_agency(agency_id)
    if since is not None:
        posts = posts.filter(posted_at__gte=since)
    return posts.order_by("posted_at", "id").values_list("creator_id", "posted_at", F("likes") + F("comments"))


def platform_choices() -> list[tuple[str, str]]:
    """The platforms the studio writes for, as (name, label): what other apps offer to choose."""
    return [(name, rules.label) for name, rules in PLATFORMS.items()]


def hashtag_limit(platform: str) -> int:
    """How many hashtags the studio writes for a post on ``platform`` at most (0: none, e.g. Reddit)."""
    return PLATFORMS[platform].max_hashtags
