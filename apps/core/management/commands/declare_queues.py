"""Declare the Celery queues on the broker before any web or worker process starts.

kombu's SQLAlchemy transport (the embedded default's broker) creates a queue's row by reading,
then inserting: on a fresh var/ a starting worker and the web server's first publish can both
insert it, and the loser's request fails (UNIQUE constraint failed: kombu_queue.name) — a new
user's very first sign-up answered 500. `make run` runs this command before starting the
processes, so the rows exist before anyone races for them. On Redis or RabbitMQ declaring is
idempotent and cheap.
"""

from __future__ import annotations

from celery import current_app
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Declare the Celery queues on the broker (run before starting web, worker and beat)."

    def handle(self, *args, **options) -> None:
        with current_app.connection_for_write() as connection:
            for queue in current_app.amqp.queues.values():
                queue.bind(connection.default_channel).declare()
                self.stdout.write(f"declared queue {queue.name}")
