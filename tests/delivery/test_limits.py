"""Send rate limits (apps/delivery/limits.py on apps.core.shared's GCRA limiter): a platform
account sends at most its rate, a full layer gives the delivery back without charging an attempt,
and a platform's 429 slows the account down until it recovers."""

from __future__ import annotations

import itertools
import time

import pytest
from django.utils import timezone

from apps.delivery import limits
from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.tasks import deliver
from huntaze.settings import _rate_limit_problems
from tests.delivery.conftest import enqueue

PLATFORM_LIKE = {
    "account": {"limit": 1, "seconds": 3, "burst": 1},
    "creator": {"limit": 100, "seconds": 1},
    "agency": {"limit": 100, "seconds": 1},
    "global": {"limit": 1000, "seconds": 1},
}


def second_due(delivery: Delivery):
    return Delivery.objects.values_list("next_attempt_at", flat=True).get(pk=delivery.pk)


@pytest.fixture
def platform_like_limits(settings):
    settings.DELIVERY_RATE_LIMITS = PLATFORM_LIKE


def test_an_account_sends_one_message_then_the_next_waits_its_turn(world, platform_like_limits, after_commit):
    first = enqueue(world, recipient_id="fan-a")
    second = enqueue(world, recipient_id="fan-b")
    assert deliver(first.pk) == "sent"
    with after_commit() as published:
        assert deliver(second.pk) == "deferred"
    second.refresh_from_db()
    assert second.status == "pending" and second.attempts == 0 and second.lease_until is None
    wait = (second.next_attempt_at - timezone.now()).total_seconds()
    assert 2.0 < wait <= 3.0
    [(args, options)] = published
    assert args == (second.pk,) and 2.0 < options["countdown"] <= 3.0
    assert list(SimulatedOutboundMessage.objects.values_list("recipient_id", flat=True)) == ["fan-a"]


def test_replies_held_back_together_come_back_one_account_slot_apart(world, platform_like_limits, after_commit):
    """The limiter tells every reply it refuses at one moment the same wait: had they all come
    back together, one would pass and the rest be refused again, round after round (N replies,
    ~N²/2 task runs). Each comes back in its own slot of the account instead."""
    replies = [enqueue(world, recipient_id=f"fan-{i}") for i in range(5)]
    with after_commit() as published:
        assert [deliver(reply.pk) for reply in replies] == ["sent"] + ["deferred"] * 4
    due = [second_due(reply) for reply in replies[1:]]
    assert [round((later - earlier).total_seconds(), 1) for earlier, later in itertools.pairwise(due)] == [3.0] * 3
    countdowns = [options["countdown"] for _, options in published]
    assert countdowns == sorted(countdowns) and 2.0 < countdowns[0] <= 3.0 and 11.0 < countdowns[-1] <= 12.0
    assert [deliver(reply.pk) for reply in replies[1:]] == ["skipped"] * 4  # none is due before its slot


def test_another_account_of_the_agency_is_not_held_up(world, platform_like_limits):
    assert deliver(enqueue(world, recipient_id="fan-a").pk) == "sent"
    assert deliver(enqueue(world, creator_id=world.other_creator.pk, recipient_id="fan-b").pk) == "sent"
    assert deliver(enqueue(world, platform="fansly", recipient_id="fan-c").pk) == "sent"  # same creator, other platform
    assert deliver(enqueue(world, recipient_id="fan-d").pk) == "deferred"


def test_a_deferred_delivery_is_sent_when_its_turn_comes(world, settings):
    # The wait must outlast CLOCK_SKEW (1 s) even on a loaded machine, or the early task is
    # already due: 3 s leaves 2 s for the first send and the deferral.
    settings.DELIVERY_RATE_LIMITS = PLATFORM_LIKE
    assert deliver(enqueue(world, recipient_id="fan-a").pk) == "sent"
    second = enqueue(world, recipient_id="fan-b")
    assert deliver(second.pk) == "deferred"
    assert deliver(second.pk) == "skipped"  # not due yet: an early task does nothing
    time.sleep(max(0.0, (second_due(second) - timezone.now()).total_seconds()) + 0.05)
    assert deliver(second.pk) == "sent"
    second.refresh_from_db()
    assert second.attempts == 1  # the deferral was not an attempt


def test_a_failed_delivery_that_waits_stays_failed_with_its_error(world, platform_like_limits, settings):
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    assert deliver(enqueue(world, recipient_id="fan-a").pk) == "sent"
    flaky = enqueue(world, recipient_id="fail-retry-1-fan")
    Delivery.objects.filter(pk=flaky.pk).update(status="failed", attempts=1, last_error="The platform is down.")
    assert deliver(flaky.pk) == "deferred"
    flaky.refresh_from_db()
    assert (flaky.status, flaky.attempts, flaky.last_error) == ("failed", 1, "The platform is down.")


def test_a_429_halves_the_accounts_rate_and_holds_it_for_the_retry_after(world, settings):
    settings.DELIVERY_RATE_LIMITS = {**PLATFORM_LIKE, "account": {"limit": 10, "seconds": 1, "burst": 1}}
    limited = enqueue(world, recipient_id="fail-ratelimit-2-fan")
    assert deliver(limited.pk) == "failed"
    status = limits.account_status(creator_id=world.creator.pk, platform="onlyfans")
    assert status.configured_rate_per_s == 10
    assert status.rate_per_s == pytest.approx(5, abs=0.05)
    assert 1.5 < status.wait_s <= 2.0
    assert deliver(enqueue(world, recipient_id="fan-b").pk) == "deferred"  # held for the Retry-After
    assert deliver(enqueue(world, creator_id=world.other_creator.pk).pk) == "sent"  # only that account
    other = limits.account_status(creator_id=world.other_creator.pk, platform="onlyfans")
    assert other.rate_per_s == pytest.approx(10) and other.factor == 1


def test_an_account_layer_can_be_set_per_platform(world, settings):
    settings.DELIVERY_RATE_LIMITS = {**PLATFORM_LIKE, "account:fansly": {"limit": 5, "seconds": 1}}
    assert limits.account_layer(creator_id=1, platform="fansly").interval == pytest.approx(0.2)
    assert limits.account_layer(creator_id=1, platform="onlyfans").interval == pytest.approx(3)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("nope", "JSON object"),
        ({k: v for k, v in PLATFORM_LIKE.items() if k != "global"}, "'global' layer is missing"),
        ({**PLATFORM_LIKE, "team": {"limit": 1, "seconds": 1}}, "'team' is not a layer"),
        ({**PLATFORM_LIKE, "agency": {"limit": 0, "seconds": 1}}, "at least 1"),
        ({**PLATFORM_LIKE, "agency": {"limit": 2, "seconds": -1}}, "seconds must be a number above 0"),
        ({**PLATFORM_LIKE, "agency": {"limit": 2}}, "must be an object with limit, seconds"),
    ],
)
def test_a_bad_rate_limit_setting_is_refused_at_startup_with_the_layer_named(value, problem):
    assert any(problem in line for line in _rate_limit_problems(value))


def test_the_default_is_one_message_every_3_seconds_per_account():
    """What an installation gets without DELIVERY_RATE_LIMITS (this test run sets a generous one)."""
    import json
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "DELIVERY_RATE_LIMITS"}
    code = "import django; django.setup(); from django.conf import settings; import json; "
    code += "print(json.dumps(settings.DELIVERY_RATE_LIMITS))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    default = json.loads(out.stdout.strip().splitlines()[-1])
    assert default["account"] == {"limit": 1, "seconds": 3, "burst": 1}
    assert _rate_limit_problems(default) == []
