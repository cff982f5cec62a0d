"""The four pages bench/pages.py times make no more queries on a bigger data set: the inbox (owner
and chatter), the longest conversation, the fan list filtered by a segment, and the segment
count endpoint. Both data sets come from seed_demo (the real generator), ten times apart."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.demo import DEMO_DOMAIN, reset
from apps.accounts.models import Membership
from apps.messaging.models import Conversation, Fan, Segment
from apps.messaging.segments import segment_filters_parse, segment_q
from apps.messaging.tiers import rules_for
from tests.conftest import login_client

SMALL = ["--creators", "2", "--fans", "40", "--messages", "320"]
BIG = ["--creators", "2", "--fans", "400", "--messages", "6400"]
SEGMENTS = ("At risk subscribers", "Night owls who spend", "Whales")


def _pages() -> list[tuple[str, str, str]]:
    segments = dict(Segment.objects.values_list("name", "pk"))
    longest = Conversation.objects.order_by("-message_count", "id").values_list("pk", flat=True).first()
    pages = [
        ("inbox_owner", "owner", "/inbox/"),
        ("inbox_chatter", "chatter", "/inbox/"),
        ("inbox_waiting_tag", "owner", "/inbox/?tag=vip"),
        ("conversation", "owner", f"/inbox/c/{longest}/"),
    ]
    for name in SEGMENTS:
        pages.append((f"fan_list[{name}]", "owner", f"/fans/?segment={segments[name]}"))
        pages.append((f"segment_count[{name}]", "owner", f"/api/v1/segments/{segments[name]}/count"))
    return pages


def _clients() -> dict:
    members = Membership.objects.filter(user__email__endswith=f"@{DEMO_DOMAIN}").select_related("user")
    return {m.role: login_client(m) for m in members}


def _counts() -> dict[str, int]:
    clients = _clients()
    counts = {}
    for name, role, url in _pages():
        client = clients[role]
        client.get(url)  # the same state as the measured request (read marks, the soft lock)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, (name, url, response.status_code)
        counts[name] = len(captured.captured_queries)
    return counts


@pytest.mark.django_db
def test_page_query_counts_do_not_grow_with_the_data(django_assert_max_num_queries):
    call_command("seed_demo", *SMALL)
    rules = rules_for(Membership.objects.first().agency_id)
    for segment in Segment.objects.filter(name__in=SEGMENTS):  # every page shows rows, even on the small set
        assert Fan.objects.filter(segment_q(segment_filters_parse(segment.filters), rules)).exists(), segment.name
    small = _counts()
    reset()
    call_command("seed_demo", *BIG)
    assert Conversation.objects.order_by("-message_count").first().message_count > 100
    big = _counts()
    grown = {name: (small[name], big[name]) for name in small if big[name] > small[name]}
    assert not grown, f"queries grew with the data (small, big): {grown}"
    clients = _clients()
    for name, role, url in _pages():
        with django_assert_max_num_queries(small[name]):
            assert clients[role].get(url).status_code == 200, name
