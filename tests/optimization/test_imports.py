"""CSV import of daily performance and PPV offers: whole-file checks, per-row errors with line
numbers, nothing half-saved, idempotent re-import, permissions, and the import page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import ApplicationError
from apps.optimization.imports import daily_import_csv, offers_import_csv
from apps.optimization.models import DailyPerformance, Offer


def _csv(text: str, name: str = "data.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def _days_ago(n: int) -> str:
    return (timezone.now().date() - timedelta(days=n)).isoformat()


DAILY_HEADER = "day,revenue_subscriptions,revenue_tips,revenue_ppv,revenue_messages,new_subscribers,posts,engagement\n"


def _daily_file() -> SimpleUploadedFile:
    rows = [f'{_days_ago(n)},"$1,200.50",40,60.5,20,10,2,300' for n in range(3, 0, -1)]
    return _csv(DAILY_HEADER + "\n".join(rows) + "\n")


def test_daily_import_and_idempotent_reimport(world):
    report = daily_import_csv(membership=world.owner, creator=world.creator, file=_daily_file())
    assert report.ok and (report.rows, report.created, report.updated) == (3, 3, 0)
    row = DailyPerformance.objects.get(creator=world.creator, day=_days_ago(1))
    assert row.revenue_subscriptions == Decimal("1200.50") and row.posts == 2 and row.source == "import"
    assert row.churned_subscribers == 0  # a missing column counts as 0
    again = daily_import_csv(membership=world.owner, creator=world.creator, file=_daily_file())
    assert (again.created, again.updated) == (0, 3)
    assert DailyPerformance.objects.filter(creator=world.creator).count() == 3


def test_daily_reimport_replaces_a_days_values(world):
    daily_import_csv(membership=world.owner, creator=world.creator, file=_daily_file())
    fixed = _csv(f"date,revenue_tips\n{_days_ago(1)},99\n")  # "date" is read as "day"
    report = daily_import_csv(membership=world.owner, creator=world.creator, file=fixed)
    assert report.updated == 1
    assert DailyPerformance.objects.get(creator=world.creator, day=_days_ago(1)).revenue_tips == Decimal("99.00")


def test_daily_bad_rows_save_nothing_and_name_their_lines(world):
    text = DAILY_HEADER + "\n".join([
        f"{_days_ago(5)},10,1,1,1,1,1,1",
        "yesterday,10,1,1,1,1,1,1",
        f"{_days_ago(4)},-5,1,1,1,1,1,1",
        f"{_days_ago(5)},10,1,1,1,1,1,1",
        f"{(timezone.now().date() + timedelta(days=3)).isoformat()},1,1,1,1,1,1,1",
        f"{_days_ago(2)},1,1,1,1,x,1,1",
        "1,2",
    ]) + "\n"  # fmt: skip
    report = daily_import_csv(membership=world.owner, creator=world.creator, file=_csv(text))
    assert not report.ok and report.failed == 6 and report.created == 0
    found = {(error.row, error.field) for error in report.errors}
    assert {
        (3, "day"),
        (4, "revenue_subscriptions"),
        (5, "day"),
        (6, "day"),
        (7, "new_subscribers"),
        (8, None),
    } <= found
    assert not DailyPerformance.objects.filter(creator=world.creator).exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("day,bogus\n2026-01-01,1\n", "Unknown column"),
        ("revenue_tips\n1\n", "Missing required column"),
        ("day,day\n2026-01-01,2026-01-01\n", "given twice"),
    ],
)
def test_daily_file_problems_are_errors_on_the_file(world, text, message):
    with pytest.raises(ApplicationError, match=message) as caught:
        daily_import_csv(membership=world.owner, creator=world.creator, file=_csv(text))
    assert caught.value.field == "file"


def test_not_a_csv_is_refused(world):
    with pytest.raises(ApplicationError, match="csv"):
        daily_import_csv(membership=world.owner, creator=world.creator, file=_csv("day\n", name="data.xlsx"))


OFFER_HEADER = "sent_at,price,recipients,unlocks,revenue,external_id\n"


def _offer_file() -> SimpleUploadedFile:
    return _csv(
        OFFER_HEADER + f"{_days_ago(10)}T20:00:00,12,200,30,,of-1\n{_days_ago(5)}T21:30:00,$15.00,180,20,300,of-2\n"
    )


def test_offer_import_and_duplicates_skipped(world):
    report = offers_import_csv(membership=world.manager, creator=world.creator, file=_offer_file())
    assert report.ok and report.created == 2
    first = Offer.objects.get(creator=world.creator, external_id="of-1")
    assert first.revenue == Decimal("360.00") and first.currency == world.creator.currency
    again = offers_import_csv(membership=world.manager, creator=world.creator, file=_offer_file())
    assert (again.created, again.duplicates) == (0, 2)
    assert Offer.objects.filter(creator=world.creator).count() == 2


def test_offer_bad_rows_save_nothing(world):
    text = OFFER_HEADER + "\n".join([
        f"{_days_ago(3)}T20:00:00,12,200,30,,ok-1",
        f"{_days_ago(3)}T20:00:00,0,200,30,,bad-price",
        f"{_days_ago(3)}T20:00:00,12,100,130,,too-many-unlocks",
        "not a date,12,100,10,,bad-date",
        f"{_days_ago(3)}T20:00:00,500,100,10,,too-expensive",
        f"{_days_ago(3)}T20:00:00,12,0,0,,nobody",
        "0001-01-01T00:00:00+05:45,12,100,10,,year-one",  # before year 1 in UTC: no database holds it
    ]) + "\n"  # fmt: skip
    report = offers_import_csv(membership=world.owner, creator=world.creator, file=_csv(text))
    assert report.failed == 6 and report.created == 0
    found = {(error.row, error.field) for error in report.errors}
    assert {(3, "price"), (4, "unlocks"), (5, "sent_at"), (6, "price"), (7, "recipients"), (8, "sent_at")} <= found
    assert "between the years 2000 and 2200" in next(e.message for e in report.errors if e.row == 8)
    assert not Offer.objects.filter(creator=world.creator).exists()


def test_an_offer_whose_price_times_unlocks_overflows_the_revenue_column_is_a_row_error(world):
    # 200 x 60,000,000 = 12,000,000,000.00: more than DecimalField(12, 2) holds (a 500 on PostgreSQL before).
    file = _csv(OFFER_HEADER + f"{_days_ago(3)}T20:00:00,200,60000000,60000000,,\n")
    report = offers_import_csv(membership=world.manager, creator=world.creator, file=file)
    assert not report.ok and [(error.row, error.field) for error in report.errors] == [(2, "revenue")]
    assert not Offer.objects.filter(creator=world.creator).exists()


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_only_editors_import(world, role):
    with pytest.raises(PermissionDenied):
        offers_import_csv(membership=world.member(role), creator=world.creator, file=_offer_file())


def test_import_page_shows_report_and_row_errors(world, client_for):
    client = client_for(world.owner)
    response = client.post(
        reverse("optimization:import"), {"kind": "offers", "creator": world.creator.pk, "file": _offer_file()}
    )
    assert response.status_code == 302  # a reload of the page shown next cannot post the file again
    html = client.get(response["Location"]).content.decode()
    assert "Imported 2 rows" in html
    assert "Imported 2 rows" not in client.get(response["Location"]).content.decode()  # shown once
    bad = _csv(OFFER_HEADER + f"{_days_ago(3)}T20:00:00,<script>x</script>,1,0,,a\n")
    html = client.post(
        reverse("optimization:import"), {"kind": "offers", "creator": world.creator.pk, "file": bad}
    ).content.decode()
    assert "Nothing was imported" in html and "<td>2</td>" in html
    assert "<script>x</script>" not in html
    html = client.post(
        reverse("optimization:import"), {"kind": "daily", "creator": world.creator.pk, "file": _csv("x,y\n1,2\n")}
    ).content.decode()
    assert "Unknown column" in html


def test_import_page_reads_mac_line_endings_and_answers_an_unclosed_quote_with_a_form_error(world, client_for):
    client = client_for(world.owner)
    mac = _csv(DAILY_HEADER.replace("\n", "\r") + f"{_days_ago(2)},1,2,3,4,5,6,7\r{_days_ago(1)},1,2,3,4,5,6,7\r")
    html = client.post(
        reverse("optimization:import"), {"kind": "daily", "creator": world.creator.pk, "file": mac}, follow=True
    )
    assert html.status_code == 200 and "Imported 2 rows" in html.content.decode()
    unclosed = _csv(DAILY_HEADER + f'"{_days_ago(3)},1,2,3,4,5,6,7\n' + f"{_days_ago(4)},1,2,3,4,5,6,7\n" * 6000)
    response = client.post(
        reverse("optimization:import"), {"kind": "daily", "creator": world.creator.pk, "file": unclosed}
    )
    assert response.status_code == 200
    assert "could not be read as CSV" in response.content.decode()
    assert DailyPerformance.objects.filter(creator=world.creator).count() == 2  # the earlier import kept, nothing added


def test_import_page_refuses_another_tenants_creator(world, other_world, client_for):
    response = client_for(world.owner).post(
        reverse("optimization:import"), {"kind": "offers", "creator": other_world.creator.pk, "file": _offer_file()}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Offer.objects.filter(creator=other_world.creator).exists()
