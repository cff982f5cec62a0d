"""A real Celery worker process, on the same broker and database as the test run.

The embedded default uses kombu's SQLAlchemy transport on a SQLite file; CI's services run uses
Redis. Either way the web side publishes on commit and a separate worker process does the work.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from apps.accounts import services
from apps.accounts.models import Invitation
from tests.conftest import build_world

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db, tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    env = {**os.environ, "DATABASE_URL": _database_url(), "EMAIL_URL": f"filemail:///{outbox}"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "huntaze",
            "worker",
            "-Q",
            "interactive,default,bulk",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield outbox
    process.terminate()
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    print(output[-4000:])


@pytest.mark.worker
def test_invitation_email_is_sent_once_by_a_real_worker(worker):
    world = build_world("Workers")
    invitation = services.invitation_create(by=world.owner, email="worker-test@example.com", role="viewer")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        invitation.refresh_from_db()
        files = list(worker.iterdir())
        if invitation.email_sent_at and files:
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
