"""The real ASGI application plus two deliberately broken API operations, for the fuzz gate's
self-test (tests/test_api_fuzz.py) only: it proves the gate goes red on a server error and on an
answer that does not match its schema. Served by a daphne process of its own, so the real API
(``huntaze.asgi:application``) never contains them.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "huntaze.settings")
django.setup()

from django.http import HttpRequest, JsonResponse  # noqa: E402
from ninja import Router, Schema  # noqa: E402

from huntaze.api import api  # noqa: E402

BROKEN_PREFIX = "/fuzz-selftest"
broken = Router(tags=["fuzz self-test"])


class CountOut(Schema):
    count: int


@broken.get("/crash", response=CountOut)
def crash(request: HttpRequest):
    """Answers 500: an unhandled exception."""
    raise RuntimeError("deliberately broken for the fuzz gate's self-test")


@broken.get("/lies", response=CountOut)
def lies(request: HttpRequest):
    """Answers 200 with a body its schema does not allow (``count`` is a string)."""
    return JsonResponse({"count": "many"})


# Added before the URLconf is first imported (on the first request), so its URLs include them.
api.add_router(BROKEN_PREFIX, broken)

from huntaze.asgi import application  # noqa: E402

__all__ = ["application"]
