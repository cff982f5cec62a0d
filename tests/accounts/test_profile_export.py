"""Export my data: started from the page or the API, built by a Celery task, downloaded once ready
by its user alone, without secrets, expiring after DATA_EXPORT_TTL_HOURS."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts import two_factor
from apps.accounts.data_export import data_export_start, data_exports_purge_expired
from apps.accounts.models import AccountEvent, AuthenticatorDevice, DataExport
from apps.accounts.services import api_token_create
from apps.accounts.tasks import build_data_export
from apps.core.errors import ConflictError
from apps.notifications.services import notification_send
from tests.accounts.factories import PASSWORD

EXPORT = reverse("accounts:data-export")
DOWNLOAD = reverse("accounts:data-export-download")


def _zip(content: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_export_from_the_page_builds_a_zip_the_user_downloads(
    world, client_for, eager_celery, django_capture_on_commit_callbacks
):
    user = world.owner.user
    notification_send(membership=world.owner, title="<img src=x onerror=alert(1)> joined", kind="team")
    _, raw_token = api_token_create(membership=world.owner, name="Zapier")
    two_factor.totp_setup_start(user=user)  # a TOTP seed exists (unconfirmed): it must not leak
    seed = AuthenticatorDevice.objects.get(user=user).key
    client = client_for(world.owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(EXPORT)
    assert response.status_code == 302
    export = DataExport.objects.get(user=user)
    assert export.status == DataExport.Status.READY and export.progress == 100
    assert export.expires_at > timezone.now() + timedelta(hours=47)

    page = client.get(reverse("accounts:profile")).content.decode()
    assert DOWNLOAD in page and "Ready since" in page
    download = client.get(DOWNLOAD)
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert "attachment" in download["Content-Disposition"]
    files = _zip(download.content)
    assert {"profile.json", "memberships.json", "notifications.json", "account_events.json", "README.txt"} <= set(files)
    profile = json.loads(files["profile.json"])
    assert profile["email"] == user.email
    memberships = json.loads(files["memberships.json"])
    assert memberships == [
        {
            "agency": world.agency.name,
            "agency_id": world.agency.pk,
            "role": "owner",
            "joined_at": memberships[0]["joined_at"],
        }
    ]
    assert json.loads(files["notifications.json"])[0]["title"].startswith("<img src=x")
    tokens = json.loads(files["api_tokens.json"])
    assert tokens[0]["name"] == "Zapier" and "token_hash" not in tokens[0]
    everything = b"".join(files.values())
    for secret in (raw_token.encode(), user.password.encode(), seed.encode(), b"token_hash", b"session_key"):
        assert secret not in everything
    kinds = list(AccountEvent.objects.filter(user=user).values_list("kind", flat=True))
    assert AccountEvent.Kind.EXPORT_REQUESTED in kinds and AccountEvent.Kind.EXPORT_DOWNLOADED in kinds


def test_only_the_user_downloads_their_export(world, client_for):
    export = data_export_start(user=world.owner.user)
    assert build_data_export(export.pk) is True
    assert client_for(world.manager).get(DOWNLOAD).status_code == 404  # same agency, not theirs
    assert client_for(world.owner).get(DOWNLOAD).status_code == 200


def test_the_task_is_idempotent_and_one_export_runs_at_a_time(world):
    user = world.viewer.user
    export = data_export_start(user=user)
    with pytest.raises(ConflictError):
        data_export_start(user=user)
    assert build_data_export(export.pk) is True
    assert build_data_export(export.pk) is False  # a second delivery of the task changes nothing
    assert DataExport.objects.get(pk=export.pk).status == DataExport.Status.READY
    assert data_export_start(user=user).status == DataExport.Status.PENDING  # a new one once done


def test_an_export_whose_worker_was_lost_no_longer_blocks_a_new_one(world):
    user = world.viewer.user
    lost = data_export_start(user=user)
    DataExport.objects.filter(pk=lost.pk).update(status=DataExport.Status.RUNNING)  # its worker died mid-build
    with pytest.raises(ConflictError):
        data_export_start(user=user)  # still being built, as far as anyone can tell
    DataExport.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=31))
    fresh = data_export_start(user=user)
    assert fresh.status == DataExport.Status.PENDING
    assert DataExport.objects.get(pk=lost.pk).status == DataExport.Status.FAILED


def test_progress_is_polled_with_htmx_while_running(world, client_for):
    client = client_for(world.viewer)
    export = data_export_start(user=world.viewer.user)
    DataExport.objects.filter(pk=export.pk).update(status=DataExport.Status.RUNNING, progress=40)
    fragment = client.get(EXPORT, headers={"HX-Request": "true"}).content.decode()
    assert "40%" in fragment and 'hx-trigger="every 2s"' in fragment and "<html" not in fragment
    build_data_export(export.pk)  # it was claimed as running above: the pending claim fails, nothing changes
    DataExport.objects.filter(pk=export.pk).update(status=DataExport.Status.PENDING)
    build_data_export(export.pk)
    fragment = client.get(EXPORT, headers={"HX-Request": "true"}).content.decode()
    assert "every 2s" not in fragment and DOWNLOAD in fragment


def test_an_expired_export_cannot_be_downloaded_and_its_zip_is_dropped(world, client_for):
    export = data_export_start(user=world.viewer.user)
    build_data_export(export.pk)
    DataExport.objects.filter(pk=export.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = client_for(world.viewer)
    assert client.get(DOWNLOAD).status_code == 404
    assert data_exports_purge_expired() == 1
    row = DataExport.objects.get(pk=export.pk)
    assert row.status == DataExport.Status.EXPIRED and row.archive is None
    assert "expired" in client.get(reverse("accounts:profile")).content.decode()


def test_export_api_starts_and_reports_status(world):
    from django.test import Client

    _, raw = api_token_create(membership=world.chatter, name="me", scope="write")
    client = Client(headers={"Authorization": f"Bearer {raw}"})
    assert client.get("/api/v1/me/export").json() == {"export": None}
    started = client.post("/api/v1/me/export")
    assert started.status_code == 202 and started.json()["status"] == "pending"
    assert client.post("/api/v1/me/export").status_code == 409
    build_data_export(started.json()["id"])
    status = client.get("/api/v1/me/export").json()["export"]
    assert status["status"] == "ready" and status["progress"] == 100 and status["download_url"] == DOWNLOAD
    _, read_only = api_token_create(membership=world.chatter, name="ro", scope="read")
    assert Client(headers={"Authorization": f"Bearer {read_only}"}).post("/api/v1/me/export").status_code == 403


@pytest.mark.worker
def test_a_real_worker_builds_the_export(transactional_db):
    from tests.conftest import build_world
    from tests.delivery.test_worker import wait_for
    from tests.processes import celery_worker_args, running

    world = build_world("Exporters")
    with running(celery_worker_args()):
        export = data_export_start(user=world.owner.user)
        wait_for(lambda: DataExport.objects.get(pk=export.pk).status == DataExport.Status.READY, what="the export")
    assert "profile.json" in _zip(bytes(DataExport.objects.get(pk=export.pk).archive))
    assert PASSWORD.encode() not in bytes(DataExport.objects.get(pk=export.pk).archive)


def test_the_export_holds_what_a_chatter_wrote_in_messaging_and_nothing_of_others(world, other_world):
    from apps.messaging.models import Direction, FanNote, MessageStatus, Source
    from tests.messaging.factories import ConversationFactory, FanFactory, MessageFactory, TemplateFactory

    chatter = world.chatter.user
    fan = FanFactory(creator=world.creator, display_name="Rosie")
    conversation = ConversationFactory(fan=fan)
    MessageFactory(conversation=conversation, text="Hi Rosie <3 from the chatter", direction=Direction.OUTBOUND,
                   source=Source.HUMAN, status=MessageStatus.SENT, sent_by=chatter)  # fmt: skip
    MessageFactory(conversation=conversation, text="A fan's own words")  # the fan's, not the chatter's
    MessageFactory(conversation=conversation, text="Sent by the owner", direction=Direction.OUTBOUND,
                   source=Source.HUMAN, status=MessageStatus.SENT, sent_by=world.owner.user)  # fmt: skip
    FanNote.objects.create(agency=world.agency, fan=fan, author=chatter, text="Likes feet pics, tips on Fridays")
    TemplateFactory(agency=world.agency, name="Chatter's welcome", created_by=chatter)
    export = data_export_start(user=chatter)
    assert build_data_export(export.pk) is True
    archive = DataExport.objects.values_list("archive", flat=True).get(pk=export.pk)
    files = _zip(bytes(archive))

    sent = json.loads(files["messages_sent.json"])
    assert [(m["text"], m["fan"], m["creator"], m["agency"]) for m in sent] == [
        ("Hi Rosie <3 from the chatter", "Rosie", world.creator.display_name, world.agency.name)
    ]
    assert [n["text"] for n in json.loads(files["fan_notes.json"])] == ["Likes feet pics, tips on Fridays"]
    assert [t["name"] for t in json.loads(files["message_templates.json"])] == ["Chatter's welcome"]
    assert "A fan's own words" not in files["messages_sent.json"].decode()
    # Another user's export holds none of it.
    other = data_export_start(user=other_world.chatter.user)
    build_data_export(other.pk)
    other_files = _zip(bytes(DataExport.objects.values_list("archive", flat=True).get(pk=other.pk)))
    assert json.loads(other_files["messages_sent.json"]) == [] and json.loads(other_files["fan_notes.json"]) == []


def test_a_removed_member_exports_nothing_of_the_agency_they_left(world):
    from apps.accounts.models import Membership
    from apps.messaging.models import FanNote
    from tests.messaging.factories import FanFactory

    chatter = world.chatter.user
    FanNote.objects.create(agency=world.agency, fan=FanFactory(creator=world.creator), author=chatter, text="Secret")
    Membership.objects.filter(pk=world.chatter.pk).delete()  # removed from the team

    export = data_export_start(user=chatter)
    assert build_data_export(export.pk) is True
    files = _zip(bytes(DataExport.objects.values_list("archive", flat=True).get(pk=export.pk)))
    assert json.loads(files["fan_notes.json"]) == []  # the agency's notes stay the agency's
