"""`manage.py declare_queues` (run by `make run` before its processes) creates every Celery queue
on the broker, so a starting worker and the web server's first publish never race to create one."""

from __future__ import annotations

import io
import sqlite3

from django.conf import settings
from django.core.management import call_command

from huntaze.celery import QUEUES


def test_every_queue_is_declared_and_declaring_again_changes_nothing():
    for _ in range(2):  # make run declares on every start
        out = io.StringIO()
        call_command("declare_queues", stdout=out)
        assert out.getvalue().split("\n")[:-1] == [f"declared queue {name}" for name in QUEUES]

    if settings.CELERY_BROKER_URL.startswith("sqla+sqlite:///"):
        # The embedded broker keeps one row per queue: all three exist before any process starts.
        path = settings.CELERY_BROKER_URL.removeprefix("sqla+sqlite:///")
        with sqlite3.connect(path) as db:
            names = sorted(row[0] for row in db.execute("SELECT name FROM kombu_queue"))
        assert names == sorted(QUEUES)
