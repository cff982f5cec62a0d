"""Every shared-state backend keeps the same promises (apps/core/shared.py)."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings

from apps.core.shared import DatabaseSharedState, LimitCheck, LocalSharedState, RedisSharedState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["file", "database", "redis"])
def state(request, tmp_path):
    if request.param == "file":
        return LocalSharedState(tmp_path / "shared-state.sqlite3")
    if request.param == "database":
        if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            pytest.skip("the database backend serves PostgreSQL without Redis; on SQLite the file backend is used")
        return DatabaseSharedState()
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set: the Redis backend is tested in CI's services run")
    return RedisSharedState(settings.REDIS_URL, f"{settings.REDIS_KEY_PREFIX}:t{uuid.uuid4().hex[:6]}")


async def test_limits_count_hits_and_refuse_when_full(state):
    scope = f"s{uuid.uuid4().hex[:6]}"
    checks = [LimitCheck(scope, 2, 3600), LimitCheck(scope, 100, 86400)]
    assert await state.hit_limits(checks) is None
    assert await state.hit_limits(checks) is None
    retry_after = await state.hit_limits(checks)
    assert retry_after is not None and 0 < retry_after <= 3600


async def test_a_refused_hit_counts_in_no_scope(state):
    full, other = f"full{uuid.uuid4().hex[:6]}", f"other{uuid.uuid4().hex[:6]}"
    assert await state.hit_limits([LimitCheck(full, 1, 3600)]) is None
    for _ in range(3):
        assert await state.hit_limits([LimitCheck(other, 1, 3600), LimitCheck(full, 1, 3600)]) is not None
    assert await state.hit_limits([LimitCheck(other, 1, 3600)]) is None  # never counted while refused


async def test_records_counters_and_delete(state):
    key = f"k{uuid.uuid4().hex[:6]}"
    assert await state.get_record(key) == {}
    await state.set_record(key, {"state": "open", "opened_at": 12.5}, ttl=30)
    assert await state.get_record(key) == {"state": "open", "opened_at": 12.5}
    assert await state.incr(f"{key}:n", ttl=30) == 1
    assert await state.incr(f"{key}:n", ttl=30, amount=4) == 5
    await state.delete(key)
    assert await state.get_record(key) == {}


async def test_expired_records_are_gone(state):
    key = f"e{uuid.uuid4().hex[:6]}"
    await state.set_record(key, {"x": 1}, ttl=0.05)
    import asyncio

    await asyncio.sleep(0.2)
    assert await state.get_record(key) == {}


async def test_concurrent_hits_are_each_judged_in_turn(state):
    """Fifty requests at once (one event-loop turn: one transaction on the file backend) count
    exactly up to the limit, and the refused ones count in no scope."""
    import asyncio

    user, agency = f"u{uuid.uuid4().hex[:6]}", f"a{uuid.uuid4().hex[:6]}"
    checks = [LimitCheck(user, 20, 3600), LimitCheck(agency, 100, 3600)]
    answers = await asyncio.gather(*(state.hit_limits(checks) for _ in range(50)))
    assert sum(answer is None for answer in answers) == 20
    assert all(0 < answer <= 3600 for answer in answers if answer is not None)
    # the agency's window counted only the 20 allowed hits: 80 more fit
    answers = await asyncio.gather(*(state.hit_limits([LimitCheck(agency, 100, 3600)]) for _ in range(81)))
    assert sum(answer is None for answer in answers) == 80


# --- GCRA: rate, burst, adaptive layers (the one limiter of the product) ---------------------


def _hits_until_refused(state, checks, most=100) -> int:
    for admitted in range(most):
        if state.hit_limits_sync(checks) is not None:
            return admitted
    return most


def test_a_burst_is_admitted_at_once_then_one_hit_per_interval(state):
    """2 per second with a burst of 3: three at once, then the fourth waits about half a second
    and is admitted once that has passed."""
    import time

    layer = LimitCheck(f"g{uuid.uuid4().hex[:6]}", 2, 1, burst=3)
    assert _hits_until_refused(state, [layer]) == 3
    wait = state.hit_limits_sync([layer])
    assert wait is not None and 0.3 < wait <= 0.5
    time.sleep(wait + 0.02)
    assert state.hit_limits_sync([layer]) is None
    assert state.hit_limits_sync([layer]) is not None


def test_layers_are_judged_together_and_the_longest_wait_is_answered(state):
    account = LimitCheck(f"acct{uuid.uuid4().hex[:6]}", 1, 3, burst=1)  # one message every 3 s
    agency = LimitCheck(f"agcy{uuid.uuid4().hex[:6]}", 100, 3600)
    assert state.hit_limits_sync([account, agency]) is None
    wait = state.hit_limits_sync([account, agency])
    assert wait is not None and 2.5 < wait <= 3
    # the refused hit did not count in the agency's layer: 99 more fit there
    assert _hits_until_refused(state, [agency], most=150) == 99


def test_a_penalized_layer_halves_its_rate_blocks_for_retry_after_and_recovers(state):
    from apps.core import shared

    layer = LimitCheck(f"ad{uuid.uuid4().hex[:6]}", 10, 1, burst=1, adaptive=True)
    status = state.limit_status_sync(layer)
    assert status.rate_per_s == pytest.approx(10) and status.factor == 1 and status.wait_s == 0
    state.penalize_sync(layer, retry_after=2)
    status = state.limit_status_sync(layer)
    assert status.factor == pytest.approx(shared.ADAPTIVE_DECREASE, abs=0.01)
    assert status.rate_per_s == pytest.approx(10 * shared.ADAPTIVE_DECREASE, abs=0.1)
    assert 1.8 < status.wait_s <= 2.0
    wait = state.hit_limits_sync([layer])
    assert wait is not None and wait > 1.8
    for _ in range(10):  # many 429s in a row never stop the layer altogether
        state.penalize_sync(layer)
    assert state.limit_status_sync(layer).factor == pytest.approx(shared.ADAPTIVE_FLOOR, abs=0.01)


async def test_penalize_and_status_are_also_async(state):
    layer = LimitCheck(f"aa{uuid.uuid4().hex[:6]}", 4, 1, burst=1, adaptive=True)
    await state.penalize(layer, retry_after=0)
    status = await state.limit_status(layer)
    assert status.rate_per_s == pytest.approx(2, abs=0.05)
    assert status.configured_rate_per_s == 4


def test_a_layer_that_is_not_adaptive_ignores_nothing_but_keeps_its_rate():
    layer = LimitCheck("x", 1, 3)
    with pytest.raises(ValueError):
        LimitCheck("x", 0, 3)
    assert layer.interval == 3 and layer.burst_size == 1


def test_several_hits_at_once_take_the_burst_or_nothing(state):
    """A pump asks for a batch: 10 per second with a burst of 10 admits 10 at once, then refuses
    another 10 without counting them (one still fits after a tenth of a second)."""
    import time

    layer = LimitCheck(f"c{uuid.uuid4().hex[:6]}", 10, 1, burst=10)
    assert state.hit_limits_sync([layer], 10) is None
    wait = state.hit_limits_sync([layer], 10)
    assert wait is not None and 0.9 < wait <= 1.0
    time.sleep(0.12)
    assert state.hit_limits_sync([layer]) is None
    assert state.hit_limits_sync([layer]) is not None


# --- Compare-and-set records, counters raised to a floor, clean-ups that finish ---------------


async def test_swap_record_sets_only_what_it_expects_and_a_lock_is_released_only_by_its_holder(state):
    lock = f"lock{uuid.uuid4().hex[:6]}"
    assert await state.swap_record(lock, None, {"token": "mine"}, 30)  # absent: taken
    assert not await state.swap_record(lock, None, {"token": "theirs"}, 30)  # held: refused
    assert not await state.swap_record(lock, {"token": "theirs"}, None)  # not theirs to release
    assert await state.get_record(lock) == {"token": "mine"}
    assert await state.swap_record(lock, {"token": "mine"}, None)  # the holder releases it
    assert await state.get_record(lock) == {}


def test_swap_record_and_raise_to_are_also_sync(state):
    lock = f"lock{uuid.uuid4().hex[:6]}"
    assert state.swap_record_sync(lock, None, {"token": "theirs"}, 30)
    assert not state.swap_record_sync(lock, {"token": "mine"}, {"token": "mine"}, 30)
    assert state.swap_record_sync(lock, {"token": "theirs"}, {"v": 2}, 30)
    assert state.get_record_sync(lock) == {"v": 2}
    assert state.raise_to_sync(f"{lock}:n", 30, 600) == 600
    assert state.raise_to_sync(f"{lock}:n", 30, 6) == 600


async def test_a_swapped_record_expires_and_an_expired_one_counts_as_absent(state):
    import asyncio

    key = f"sx{uuid.uuid4().hex[:6]}"
    assert await state.swap_record(key, None, {"token": "a"}, 0.05)
    await asyncio.sleep(0.2)
    assert await state.get_record(key) == {}
    assert await state.swap_record(key, None, {"token": "b"}, 30)


async def test_many_counters_are_read_at_once_absent_and_expired_ones_as_0_and_nothing_is_written(state):
    import asyncio

    from asgiref.sync import sync_to_async

    base = f"g{uuid.uuid4().hex[:6]}"
    await state.incr(f"{base}:a", 30, 7)
    await state.raise_to(f"{base}:b", 30, 500)
    await state.incr(f"{base}:gone", 0.05, 3)
    await asyncio.sleep(0.2)
    keys = [f"{base}:a", f"{base}:b", f"{base}:never", f"{base}:gone"]
    expected = {f"{base}:a": 7, f"{base}:b": 500, f"{base}:never": 0, f"{base}:gone": 0}
    assert await state.get_counts(keys) == expected
    assert await sync_to_async(state.get_counts_sync)(keys) == expected
    assert await sync_to_async(state.get_counts_sync)([]) == {}
    assert await state.swap_record(f"{base}:never", None, {"x": 1}, 30)  # still absent: reading wrote nothing


async def test_raise_to_keeps_the_larger_value_so_doing_it_twice_is_doing_it_once(state):
    key = f"r{uuid.uuid4().hex[:6]}"
    assert await state.raise_to(key, 30, 0) == 0
    assert await state.raise_to(key, 30, 500) == 500
    assert await state.raise_to(key, 30, 500) == 500  # not 1000
    assert await state.incr(key, 30, 20) == 520
    assert await state.raise_to(key, 30, 400) == 520  # never lowered
    assert await state.incr(key, 30, 0) == 520


async def test_an_uninterruptible_clean_up_finishes_when_its_caller_is_cancelled():
    import asyncio

    from apps.core.shared import uninterruptible

    done = []

    async def clean_up():
        await asyncio.sleep(0.05)
        done.append(True)
        return "released"

    async def caller():
        return await uninterruptible(clean_up())

    task = asyncio.create_task(caller())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == [True]  # finished before the cancellation reached the caller
    assert await uninterruptible(clean_up()) == "released"
