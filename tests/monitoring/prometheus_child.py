"""Another Huntaze process on the Prometheus sink, for tests/monitoring/test_sinks.py.

Started with METRICS_SINKS naming the Prometheus sink and its own PROMETHEUS_MULTIPROC_DIR, as a
daphne or Celery process would be, it obeys one command per line on stdin and answers each with
``ok`` on stdout:

- ``emit <json list of [name, value, unit, dimensions]>`` then ``flush``: metrics.emit() and flush();
- ``celery-shutdown``: what Celery sends when a pool process ends (worker_process_shutdown);
- ``exit`` (or stdin closed): a clean exit, through the interpreter's exit handlers.
"""

from __future__ import annotations

import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
django.setup()

from apps.core import metrics  # noqa: E402


def main() -> None:
    print("ready", os.getpid(), flush=True)
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "emit":
            for name, value, unit, dimensions in json.loads(argument):
                metrics.emit(name, value, unit, dimensions)
        elif command == "flush":
            metrics.flush()
        elif command == "celery-shutdown":
            from celery.signals import worker_process_shutdown

            worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)
        elif command == "exit":
            break
        print("ok", flush=True)


if __name__ == "__main__":
    main()
