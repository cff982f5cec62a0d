"""The circuit breaker per platform (apps/delivery/breaker.py): an outage pauses sending to the
platform without spending the deliveries' attempts, and sending resumes by itself after a probe."""

from __future__ import annotations

import time

import pytest

from apps.delivery.breaker import breaker_status
from apps.delivery.models import Delivery, SimulatedOutboundMessage
from apps.delivery.services import Outbound, delivery_enqueue_many, delivery_pump
from apps.delivery.tasks import deliver
from tests.delivery.conftest import enqueue


@pytest.fixture
def breaker(settings):
    settings.DELIVERY_BREAKER_FAILURES = 5
    settings.DELIVERY_BREAKER_COOLDOWN_SECONDS = 30
    settings.DELIVERY_RETRY_BASE_SECONDS = settings.DELIVERY_RETRY_MAX_SECONDS = 0
    return settings


def batch(world, recipients: list[str], platform: str = "onlyfans") -> dict[str, int]:
    delivery_enqueue_many(
        agency_id=world.agency.pk,
        creator_id=world.creator.pk,
        platform=platform,
        messages=[Outbound(recipient_id=r, text="Hi!", idempotency_key=f"{platform}-{r}") for r in recipients],
    )
    return delivery_pump(creator_id=world.creator.pk, platform=platform, seconds=30)


def test_an_outage_opens_the_breaker_and_pauses_only_that_platform(world, breaker, after_commit):
    assert batch(world, [f"fail-retry-fan-{i}" for i in range(6)]) == {"failed": 6}
    status = breaker_status("onlyfans")
    assert status["state"] == "open" and "6 of 6 sends failed" in status["reason"]
    waiting = enqueue(world, recipient_id="fan-ok")
    with after_commit() as published:
        assert deliver(waiting.pk) == "deferred"  # not sent, not an attempt
    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    [(_, options)] = published
    assert 25 < options["countdown"] <= 30  # back when the breaker lets a probe through
    assert not SimulatedOutboundMessage.objects.filter(recipient_id="fan-ok").exists()
    assert deliver(enqueue(world, platform="fansly", recipient_id="fan-elsewhere").pk) == "sent"


def test_a_paused_platform_keeps_a_mass_send_waiting_without_claiming_it(world, breaker, after_commit):
    batch(world, [f"fail-retry-fan-{i}" for i in range(5)])
    with after_commit() as published:
        assert batch(world, [f"fan-{i}" for i in range(20)]) == {}
    assert Delivery.objects.filter(recipient_id__startswith="fan-", status="pending", attempts=0).count() == 20
    [(args, options)] = published[-1:]
    assert args == (world.creator.pk, "onlyfans") and 25 < options["countdown"] <= 30


def test_after_the_cooldown_one_probe_goes_out_and_its_success_resumes_sending(world, breaker):
    breaker.DELIVERY_BREAKER_COOLDOWN_SECONDS = 0.5
    batch(world, [f"fail-retry-fan-{i}" for i in range(5)])
    assert breaker_status("onlyfans")["state"] == "open"
    time.sleep(0.55)
    assert breaker_status("onlyfans")["state"] == "half_open"
    assert batch(world, [f"fan-{i}" for i in range(30)]) == {"sent": 30}  # the probe, then the rest
    assert breaker_status("onlyfans") == {"state": "closed"}


def test_a_failed_probe_opens_the_breaker_again(world, breaker):
    breaker.DELIVERY_BREAKER_COOLDOWN_SECONDS = 0.5
    batch(world, [f"fail-retry-fan-{i}" for i in range(5)])
    time.sleep(0.55)
    assert deliver(enqueue(world, recipient_id="fail-retry-probe").pk) == "failed"
    status = breaker_status("onlyfans")
    assert status["state"] == "open" and status["reason"] == "the probe failed"
    assert deliver(enqueue(world, recipient_id="fan-ok").pk) == "deferred"


def test_refusals_rate_limits_and_sporadic_failures_do_not_open_it(world, breaker):
    assert batch(world, [f"fail-permanent-{i}" for i in range(6)]) == {"dead": 6}
    assert batch(world, [f"fail-ratelimit-0-{i}" for i in range(6)]) == {"failed": 6}
    assert breaker_status("onlyfans") == {"state": "closed"}
    mixed = [f"fail-retry-x{i}" for i in range(5)] + [f"fan-{i}" for i in range(15)]
    assert batch(world, mixed) == {"failed": 5, "sent": 15}  # 5 outages of the minute's 32 sends: under half
    assert breaker_status("onlyfans") == {"state": "closed"}
