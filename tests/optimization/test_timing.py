"""The timing engine (apps/optimization/timing.py) as a creator reads its answer: which weekday
and local hour to post or message at, how sure it is, and what it says when it cannot tell.

Pure NumPy, no database. Histories are built here from a known local-time pattern (engagement
Poisson around it), so each expected slot is the pattern's best one, not whatever the code says.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from apps.optimization.timing import (
    MIN_SENDS,
    NoBestTime,
    NotEnoughData,
    TimingAdvice,
    TimingInputError,
    best_slots,
    local_slots,
)
from apps.optimization.timing_sim import evaluate_timing

TUESDAY, FRIDAY, SATURDAY, SUNDAY = 1, 4, 5, 6


def utc_seconds(*moments: datetime) -> np.ndarray:
    return np.array([int(moment.timestamp()) for moment in moments], dtype=np.int64)


def history(
    rng: np.random.Generator,
    *,
    creator: int,
    tz: str,
    peak: tuple[int, int] | None,
    days: int = 70,
    per_day: int = 4,
    lift: float = 1.0,
    start: date = date(2026, 2, 15),
    scale: float = 50.0,
) -> dict[str, np.ndarray]:
    """Sends at random local times 8:00-23:59 over ``days`` days (crossing the March DST changes),
    with Poisson engagement of ``scale`` per send, times 1 + ``lift`` in the ``peak`` slot."""
    zone = ZoneInfo(tz)
    moments, engagement = [], []
    for day in range(days):
        today = start + timedelta(days=day)
        for _ in range(per_day):
            local = datetime(
                today.year, today.month, today.day, int(rng.integers(8, 24)), int(rng.integers(60)), tzinfo=zone
            )
            boost = 1 + lift if peak == (local.weekday(), local.hour) else 1.0
            moments.append(local)
            engagement.append(rng.poisson(scale * boost))
    return {
        "sent_at": utc_seconds(*moments),
        "engagement": np.array(engagement, dtype=float),
        "creator_ids": np.full(len(moments), creator),
    }


def combined(*histories: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([one[key] for one in histories]) for key in histories[0]}


# -- local time ---------------------------------------------------------------------------------


def test_20_00_in_new_york_is_the_20_00_slot_on_both_sides_of_the_dst_change():
    new_york = ZoneInfo("America/New_York")
    before = datetime(2026, 3, 7, 20, 0, tzinfo=new_york)  # EST, UTC-5: 01:00 UTC on Sunday
    on_the_day = datetime(2026, 3, 8, 20, 0, tzinfo=new_york)  # DST began at 02:00 that morning
    after = datetime(2026, 3, 10, 20, 0, tzinfo=new_york)  # EDT, UTC-4: 00:00 UTC on Wednesday
    slots = local_slots(utc_seconds(before, on_the_day, after), new_york)
    assert [divmod(int(slot), 24) for slot in slots] == [(SATURDAY, 20), (SUNDAY, 20), (TUESDAY, 20)]


def test_quarter_and_half_hour_zones_use_their_local_clock_hour():
    kathmandu = local_slots(utc_seconds(datetime(2026, 3, 10, 15, 30, tzinfo=UTC)), ZoneInfo("Asia/Kathmandu"))
    assert divmod(int(kathmandu[0]), 24) == (TUESDAY, 21)  # 21:15 at UTC+5:45

    st_johns = ZoneInfo("America/St_Johns")
    winter = datetime(2026, 1, 14, 0, 45, tzinfo=UTC)  # 21:15 on Tuesday 13 January at UTC-3:30
    summer = datetime(2026, 7, 15, 0, 0, tzinfo=UTC)  # 21:30 on Tuesday 14 July at UTC-2:30
    assert [divmod(int(slot), 24) for slot in local_slots(utc_seconds(winter, summer), st_johns)] == [
        (TUESDAY, 21),
        (TUESDAY, 21),
    ]


@pytest.mark.parametrize(
    "tz", ["America/New_York", "Australia/Sydney", "Asia/Kathmandu", "America/St_Johns", "Europe/London"]
)
def test_local_slots_agree_with_zoneinfo_for_every_instant_over_two_years(tz):
    zone = ZoneInfo(tz)
    seconds = np.random.default_rng(5).integers(
        int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()), int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()), 3000
    )
    expected = [
        datetime.fromtimestamp(int(second), zone).weekday() * 24 + datetime.fromtimestamp(int(second), zone).hour
        for second in seconds
    ]
    assert local_slots(seconds, zone).tolist() == expected


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kathmandu", "America/St_Johns"])
def test_a_creator_whose_fans_peak_at_21_00_local_is_told_21_00_in_their_own_zone(tz):
    rng = np.random.default_rng(11)
    sends = history(rng, creator=1, tz=tz, peak=(TUESDAY, 21), days=120, lift=1.0)
    advice = best_slots(**sends, creator_id=1, tz=tz)
    assert isinstance(advice, TimingAdvice)
    assert (advice.slots[0].weekday, advice.slots[0].hour) == (TUESDAY, 21)
    assert advice.message.startswith(f"Post on Tuesdays at 21:00 ({tz} time): +")


def test_the_dst_change_does_not_smear_the_best_hour_into_its_neighbours():
    # Half the history is before the change (EST) and half after (EDT). Read with one fixed
    # offset, the sends at 20:00 after the change would land at 19:00 and lift that hour too.
    rng = np.random.default_rng(3)
    sends = history(
        rng, creator=1, tz="America/New_York", peak=(TUESDAY, 20), days=60, lift=1.0, start=date(2026, 2, 6)
    )
    advice = best_slots(**sends, creator_id=1, tz="America/New_York")
    rates = advice.rates[TUESDAY]
    assert (advice.slots[0].weekday, advice.slots[0].hour) == (TUESDAY, 20)
    assert rates[20] > 1.15 * max(rates[19], rates[21])
    assert abs(rates[19] - rates[21]) < 0.1 * rates[20]


# -- pooling with the agency ---------------------------------------------------------------------


def agency_with_tuesday_evenings(rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    return [history(rng, creator=creator, tz="Europe/London", peak=(TUESDAY, 21), days=90) for creator in range(5)]


def test_a_creator_with_three_posts_gets_the_agencys_pattern():
    rng = np.random.default_rng(21)
    newcomer = {
        "sent_at": utc_seconds(*(datetime(2026, 4, day, 13, 0, tzinfo=ZoneInfo("Europe/London")) for day in (6, 7, 8))),
        "engagement": np.array([70.0, 40.0, 55.0]),
        "creator_ids": np.full(3, 99),
    }
    advice = best_slots(**combined(*agency_with_tuesday_evenings(rng), newcomer), creator_id=99, tz="Europe/London")
    assert (advice.slots[0].weekday, advice.slots[0].hour) == (TUESDAY, 21)
    assert advice.own_data_share < 0.05
    assert advice.creator_sends == 3
    assert "Mostly your agency's pattern for now (3 posts of your own)" in advice.message


def test_a_creator_with_a_long_history_gets_their_own_best_slot_not_the_agencys():
    rng = np.random.default_rng(22)
    veteran = history(rng, creator=99, tz="Europe/London", peak=(FRIDAY, 13), days=365, per_day=5)
    advice = best_slots(**combined(*agency_with_tuesday_evenings(rng), veteran), creator_id=99, tz="Europe/London")
    assert (advice.slots[0].weekday, advice.slots[0].hour) == (FRIDAY, 13)
    assert advice.slots[0].lift > 0.2  # true lift +100 % in one hour; smoothing halves a lone spike
    assert advice.own_data_share > 0.5
    assert "agency's pattern" not in advice.message


def test_a_creator_with_no_posts_yet_is_given_the_agencys_pattern():
    rng = np.random.default_rng(23)
    advice = best_slots(**combined(*agency_with_tuesday_evenings(rng)), creator_id=99, tz="Europe/London")
    assert (advice.slots[0].weekday, advice.slots[0].hour) == (TUESDAY, 21)
    assert advice.creator_sends == 0


# -- exposure ------------------------------------------------------------------------------------


def test_the_hour_with_the_most_messages_sent_does_not_win_by_volume():
    # Mass messages at noon reach 400 fans and draw 4 % replies; at 21:00 they reach 40 fans and
    # draw 10 %. Noon has by far the most replies in total, 21:00 the most per fan messaged.
    rng = np.random.default_rng(4)
    zone = ZoneInfo("Europe/Berlin")
    moments, fans, replies = [], [], []
    for day in range(60):
        today = date(2026, 2, 1) + timedelta(days=day)
        for hour, reached, rate in ((12, 400, 0.04), (21, 40, 0.10), (16, 150, 0.05)):
            moments.append(datetime(today.year, today.month, today.day, hour, 5, tzinfo=zone))
            fans.append(reached)
            replies.append(rng.poisson(reached * rate))
    replies = np.array(replies, dtype=float)
    assert replies[0::3].sum() > 3 * replies[1::3].sum()  # the trap is real

    advice = best_slots(
        sent_at=utc_seconds(*moments),
        engagement=replies,
        exposure=np.array(fans, dtype=float),
        creator_ids=np.zeros(len(moments), dtype=int),
        creator_id=0,
        tz="Europe/Berlin",
        kind="message",
    )
    assert advice.slots[0].hour == 21
    assert 12 not in {slot.hour for slot in advice.slots}
    assert np.all(advice.rates[:, 21] > 1.5 * advice.rates[:, 12])
    assert advice.message.startswith("Message fans on ")
    assert "replies and purchases per fan messaged" in advice.message


# -- answers instead of numbers ------------------------------------------------------------------


def test_too_few_sends_answers_how_many_more_are_needed():
    rng = np.random.default_rng(6)
    sends = history(rng, creator=1, tz="UTC", peak=None, days=MIN_SENDS - 14, per_day=1)
    answer = best_slots(**sends, creator_id=1, tz="UTC")
    assert isinstance(answer, NotEnoughData)
    assert answer.needed == 14
    assert answer.message.startswith("Not enough data yet: need 14 more posts")

    as_messages = best_slots(**sends, creator_id=1, tz="UTC", kind="message")
    assert as_messages.message.startswith("Not enough data yet: need 14 more messages")


@pytest.mark.parametrize("each", [40.0, 0.0])
def test_a_constant_series_says_there_is_no_best_time(each):
    rng = np.random.default_rng(7)
    sends = history(rng, creator=1, tz="UTC", peak=None, days=40)
    sends["engagement"] = np.full(len(sends["engagement"]), each)
    answer = best_slots(**sends, creator_id=1, tz="UTC")
    assert isinstance(answer, NoBestTime)
    assert answer.message.startswith(
        f"No best time: every one of your {len(sends['engagement'])} posts earned the same"
    )
    assert not hasattr(answer, "slots")


def test_the_heat_map_covers_the_week_with_rates_and_standard_errors():
    rng = np.random.default_rng(8)
    advice = best_slots(**history(rng, creator=1, tz="UTC", peak=(SUNDAY, 10), days=90), creator_id=1, tz="UTC")
    assert advice.rates.shape == advice.standard_errors.shape == (7, 24)
    assert np.all(advice.standard_errors > 0)
    best = advice.slots[0]
    assert (best.weekday, best.hour) == (SUNDAY, 10)
    assert best.lift == pytest.approx(advice.rates[SUNDAY, 10] / advice.baseline_rate - 1)
    assert best.confidence > 0.9
    assert f"{best.lift:+.0%} engagement per post over your current average, {best.confidence:.0%} confidence" in (
        advice.message
    )


def test_aware_datetimes_from_the_database_give_the_same_answer_as_epoch_seconds():
    rng = np.random.default_rng(9)
    sends = history(rng, creator=1, tz="Asia/Kathmandu", peak=(TUESDAY, 21), days=60)
    as_datetimes = dict(sends, sent_at=[datetime.fromtimestamp(int(second), UTC) for second in sends["sent_at"]])
    as_datetime64 = dict(sends, sent_at=sends["sent_at"].astype("datetime64[s]"))
    answers = [best_slots(**given, creator_id=1, tz="Asia/Kathmandu") for given in (sends, as_datetimes, as_datetime64)]
    assert len({tuple((slot.weekday, slot.hour) for slot in answer.slots) for answer in answers}) == 1
    assert answers[0].rates.tolist() == answers[1].rates.tolist() == answers[2].rates.tolist()


# -- bad input -----------------------------------------------------------------------------------


def valid_sends() -> dict[str, object]:
    return {"sent_at": [0, 3600, 7200], "engagement": [1.0, 2.0, 3.0], "creator_ids": [1, 1, 1]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"engagement": [1.0, 2.0, float("nan")]}, "engagement must be a number, not NaN or infinite: row 2 is nan."),
        ({"sent_at": [], "engagement": [], "creator_ids": []}, "No sends given: sent_at is empty."),
        (
            {"engagement": [1.0, 2.0]},
            "One value per send in every array, but the lengths differ: sent_at 3, engagement 2, exposure 3, "
            "creator_ids 3.",
        ),
        ({"exposure": [1.0, -2.0, 0.0]}, "exposure must be positive (how much was sent: 1 per post, fans reached): "),
        ({"engagement": [1.0, -1.0, 3.0]}, "engagement must not be negative: row 1 is -1.0."),
        ({"tz": "Mars/Olympus"}, "Unknown timezone 'Mars/Olympus': use an IANA name"),
        ({"sent_at": np.array(["2026-03-01T10:00", "NaT", "2026-03-01T12:00"], dtype="datetime64[s]")}, "NaT"),
        ({"sent_at": [datetime(2026, 3, 1, 10), datetime(2026, 3, 1, 11), datetime(2026, 3, 1, 12)]}, "naive"),
        ({"kind": "tweet"}, "kind must be 'post' or 'message', not 'tweet'."),
    ],
)
def test_unusable_input_is_rejected_with_a_message_saying_why(change, message):
    arguments = {**valid_sends(), "creator_id": 1, "tz": "UTC", **change}
    with pytest.raises(TimingInputError) as raised:
        best_slots(**arguments)
    assert isinstance(raised.value, ValueError)
    assert message in str(raised.value)


def test_negative_exposure_names_the_first_bad_row():
    with pytest.raises(TimingInputError, match=r"row 1 is -2.0 \(and 1 more\)"):
        best_slots(**valid_sends(), exposure=[1.0, -2.0, 0.0], creator_id=1, tz="UTC")


# -- evaluation on simulated agencies -------------------------------------------------------------


def test_on_a_simulated_agency_the_true_best_slot_is_in_the_top_3_more_often_than_by_raw_rates():
    # Seed 2026 was not used while choosing the engine's constants (seeds 1-5 were). Measured on
    # it: top-3 hit rate 0.28 (raw rates 0.20), 84 % of the best slot's rate achieved; on the 500
    # creators of test seeds 101-120, 0.276 against 0.188 (docs/optimization-timing.md). A random
    # pick of 3 slots of 168 would hit 1.8 % of the time.
    evaluation = evaluate_timing(2026, 25)
    assert evaluation.unanswered == 0
    assert evaluation.hit_rate >= 0.2
    assert evaluation.hit_rate > evaluation.naive_hit_rate
    assert evaluation.achieved >= 0.8


# -- the whole agency at once (the nightly run) --------------------------------------------------


def test_answering_every_creator_at_once_gives_each_creator_the_same_advice_as_asking_alone():
    from apps.optimization.timing import best_slots_by_creator, fit_agency, slots_for

    rng = np.random.default_rng(21)
    zones = {1: "Asia/Kathmandu", 2: "America/St_Johns", 3: "Europe/London"}
    sends = combined(
        history(rng, creator=1, tz=zones[1], peak=(TUESDAY, 21), days=60),
        history(rng, creator=2, tz=zones[2], peak=(SATURDAY, 10), days=40),
        history(rng, creator=3, tz=zones[3], peak=None, days=30, per_day=1),
    )
    together = best_slots_by_creator(**sends, creator_timezones=zones, creators=[1, 2, 3, 4])
    fit = fit_agency(**sends, creator_timezones=zones)  # what the pages cache per agency
    for creator in (1, 2, 3, 4):  # creator 4 has no sends yet: the agency's pattern alone
        alone = best_slots(**sends, creator_id=creator, tz=zones.get(creator, "UTC"), creator_timezones=zones)
        assert slots_for(fit, creator, tz=zones.get(creator, "UTC")).message == alone.message
        assert together[creator].timezone == zones.get(creator, "UTC")
        assert [(slot.weekday, slot.hour) for slot in together[creator].slots] == [
            (slot.weekday, slot.hour) for slot in alone.slots
        ]
        assert together[creator].message == alone.message
        np.testing.assert_allclose(together[creator].rates, alone.rates, rtol=1e-9)


def test_an_agency_too_small_to_compare_hours_tells_every_creator_how_many_more_sends_it_needs():
    from apps.optimization.timing import best_slots_by_creator

    sends = history(np.random.default_rng(2), creator=1, tz="UTC", peak=None, days=10, per_day=2)
    answers = best_slots_by_creator(**sends, creator_timezones={1: "UTC"}, creators=[1, 2])
    assert {creator: answer.needed for creator, answer in answers.items()} == {1: MIN_SENDS - 20, 2: MIN_SENDS - 20}
    assert all(isinstance(answer, NotEnoughData) for answer in answers.values())
