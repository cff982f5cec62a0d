"""A real Celery worker process, on the same broker and database as the test run.

The embedded default uses kombu's SQLAlchemy transport on a SQLite file; CI's services run uses
Redis. Either way the web side publishes on commit and a separate worker process does the work.
"""

from __future__ import annotations

import time

import pytest

from apps.accounts import services
from apps.accounts.models import Invitation
from tests.conftest import build_world
from tests.processes import celery_worker_args, running


@pytest.fixture
def worker(transactional_db, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    with running(celery_worker_args(), env={"EMAIL_URL": f"filemail:///{outbox}"}):
        yield outbox


@pytest.mark.worker
def test_invitation_email_is_sent_once_by_a_real_worker(worker):
    world = build_world("Workers")
    invitation = services.invitation_create(by=world.owner, email="worker-test@example.com", role="viewer")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        invitation.refresh_from_db()
        files = list(worker.iterdir())
        # The invitation is claimed before the email is written, and the file backend creates
        # the file before it writes the message: wait for the whole message, not the first sign.
        if invitation.email_sent_at and files and "/invitations/" in files[0].read_text():
            break
        time.sleep(0.2)
    assert invitation.email_sent_at is not None, "the worker did not process the invitation task"
    files = list(worker.iterdir())
    assert len(files) == 1
    body = files[0].read_text()
    assert "To: worker-test@example.com" in body and "/invitations/" in body
    # Publishing the same task again (a retry, a duplicate) sends nothing more.
    from apps.accounts.tasks import send_invitation_email

    duplicate = send_invitation_email.delay(invitation.pk)
    assert duplicate.get(timeout=30) is False  # the worker ran it and declined to send again
    assert len(list(worker.iterdir())) == 1
    assert Invitation.objects.get(pk=invitation.pk).email_sent_at == invitation.email_sent_at
