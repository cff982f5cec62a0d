"""CSV import of posts: file checks, per-row validation, dedupe, permissions, cache invalidation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.errors import ApplicationError
from apps.studio import analytics
from apps.studio.imports import RowError, posts_import_csv
from apps.studio.models import Post

HEADER = "platform,posted_at,caption,tags,category,media_type,views,likes,comments,tips,ppv_unlocks,revenue,external_id"
GOOD = [
    'onlyfans,2026-03-01T20:30:00,"New set, link in bio ✨","#Beach, sunset  pool",photo,gallery,'
    "1200,90,12,5.50,0,5.50,of-1",
    'fansly,2026-03-02T21:00:00+00:00,,lace,ppv,video,800,40,4,0,25,"1,250.00",fs-9',
    'Instagram,2026-03-03,just a story,,story,,"3,400",200,30,,,,',
]


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def upload(*rows: str, header: str = HEADER, name: str = "posts.csv", content_type: str = "text/csv"):
    return SimpleUploadedFile(name, "\n".join([header, *rows]).encode(), content_type=content_type)


def test_good_file_is_imported(world, django_capture_on_commit_callbacks):
    cache.set(analytics.trends_cache_key(world.agency.pk), "stale")
    with django_capture_on_commit_callbacks(execute=True):
        report = posts_import_csv(membership=world.manager, creator=world.creator, file=upload(*GOOD))

    assert (report.rows, report.created, report.duplicates, report.failed, report.errors) == (3, 3, 0, 0, [])
    assert cache.get(analytics.trends_cache_key(world.agency.pk)) is None  # trends recomputed after an import
    posts = {p.external_id: p for p in Post.objects.filter(creator=world.creator)}
    first = posts["of-1"]
    assert first.agency_id == world.agency.pk
    assert first.posted_at == datetime(2026, 3, 1, 20, 30, tzinfo=ZoneInfo("Europe/Paris"))  # naive: creator's zone
    assert first.tags == ["beach", "sunset", "pool"]
    assert (first.views, first.likes, first.comments, first.revenue) == (1200, 90, 12, Decimal("5.50"))
    assert first.caption == "New set, link in bio ✨"
    assert posts["fs-9"].revenue == Decimal("1250.00")
    story = posts[""]
    assert (story.platform, story.views, story.tips, story.media_type) == ("instagram", 3400, Decimal("0.00"), "")


def test_bad_rows_are_reported_and_skipped(world):
    report = posts_import_csv(
        membership=world.owner,
        creator=world.creator,
        file=upload(
            GOOD[0],
            "onlyfans,yesterday,,,photo,,10,1,0,0,0,0,a",
            "onlyfans,2026-03-01T10:00:00,,,photo,,-5,1,0,0,0,0,b",
            "onlyfans,2026-03-01T10:00:00,,,selfie,,5,1,0,0,0,0,c",
            "myspace,2026-03-01T10:00:00,,,photo,,5,1,0,0,0,-2,d",
            "onlyfans,2026-03-01T10:00:00,too few columns",
        ),
    )
    assert (report.rows, report.created, report.failed) == (6, 1, 5)
    assert [(e.row, e.field) for e in report.errors] == [
        (3, "posted_at"),
        (4, "views"),
        (5, "category"),
        (6, "platform"),
        (6, "revenue"),
        (7, None),
    ]
    assert report.errors[1] == RowError(4, "views", "Must be 0 or more.")
    assert "Unknown category “selfie”" in report.errors[2].message
    assert list(Post.objects.filter(creator=world.creator).values_list("external_id", flat=True)) == ["of-1"]


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (upload(GOOD[0], header=HEADER + ",mood"), "Unknown column(s): mood"),
        (upload("onlyfans,2026-03-01,photo", header="platform,posted_at,kind"), "Unknown column(s): kind"),
        (upload("onlyfans,2026-03-01", header="platform,posted_at"), "Missing required column(s): category"),
        (upload("x,2026-03-01,photo,photo", header="platform,posted_at,category,Category"), "given twice"),
        (upload(GOOD[0], name="posts.xlsx"), "Upload a .csv file"),
        (upload(GOOD[0], content_type="application/pdf"), "not application/pdf"),
        (SimpleUploadedFile("posts.csv", b"", content_type="text/csv"), "The file is empty."),
        (SimpleUploadedFile("posts.csv", b"PK\x03\x04\x00\x00", content_type="text/csv"), "binary"),
        (SimpleUploadedFile("posts.csv", b"a" * (5 * 1024 * 1024 + 1), content_type="text/csv"), "larger than 5 MB"),
    ],
)
def test_file_and_header_errors_reject_the_whole_file(world, file, message):
    with pytest.raises(ApplicationError) as error:
        posts_import_csv(membership=world.owner, creator=world.creator, file=file)
    assert message in error.value.message
    assert error.value.field == "file"
    assert not Post.objects.exists()


def test_an_unclosed_quote_rejects_the_whole_file(world):
    plain = "instagram,2026-03-04,plain words,,story,,1,1,1,,,,"  # no quote to close the open one
    unclosed = upload(GOOD[0], '"' + plain, *([plain] * 4000))
    with pytest.raises(ApplicationError, match="could not be read as CSV") as error:
        posts_import_csv(membership=world.owner, creator=world.creator, file=unclosed)
    assert error.value.field == "file"
    assert not Post.objects.exists()


def test_too_many_rows_imports_nothing(world):
    with pytest.raises(ApplicationError, match="more than 2 posts"):
        posts_import_csv(membership=world.owner, creator=world.creator, file=upload(*GOOD), max_rows=2)
    assert not Post.objects.exists()


def test_reimport_skips_rows_already_imported(world):
    posts_import_csv(membership=world.owner, creator=world.creator, file=upload(*GOOD))
    again = posts_import_csv(
        membership=world.owner,
        creator=world.creator,
        file=upload(*GOOD, GOOD[0], GOOD[0].replace("onlyfans,", "fansly,", 1)),
    )
    # of-1 and fs-9 exist; of-1 again in the file; the fansly copy of of-1 is another post.
    # The story row has no external_id, so it cannot be recognised and is imported again.
    assert (again.created, again.duplicates, again.failed) == (2, 3, 0)
    assert Post.objects.filter(creator=world.creator).count() == 5
    # The same external_id belongs to each creator separately.
    other = posts_import_csv(membership=world.owner, creator=world.other_creator, file=upload(GOOD[0]))
    assert other.created == 1


@pytest.mark.parametrize("role", ["viewer", "chatter"])
def test_roles_without_edit_cannot_import(world, role):
    with pytest.raises(PermissionDenied):
        posts_import_csv(membership=world.member(role), creator=world.creator, file=upload(*GOOD))
    assert not Post.objects.exists()


def test_another_agencys_creator_is_refused(world, other_world):
    with pytest.raises((PermissionDenied, ApplicationError)):
        posts_import_csv(membership=world.owner, creator=other_world.creator, file=upload(*GOOD))
    assert not Post.objects.exists()
