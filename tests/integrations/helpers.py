"""Drive the browser side of the OAuth dance with the Django test client and plain HTTP."""

from __future__ import annotations

import urllib.request
from urllib.parse import urlsplit

from django.db import connection as db_connection


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def start_connect(client, creator, platform: str):
    """POST the connect button; answers the provider's authorize URL the browser is sent to."""
    response = client.post(f"/integrations/creators/{creator.pk}/connect/", {"platform": platform})
    assert response.status_code == 302, response.content[:500]
    return response["Location"]


def follow_provider(authorize_url: str) -> str:
    """What the provider does in the browser: answers the callback URL it redirects back to."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        opener.open(authorize_url, timeout=5)
    except urllib.error.HTTPError as error:
        assert error.code == 302, error.read()
        return error.headers["Location"]
    raise AssertionError("the provider did not redirect back")


def callback_path(callback_url: str) -> str:
    parts = urlsplit(callback_url)
    return f"{parts.path}?{parts.query}"


def connect_through_provider(client, creator, platform: str):
    """The whole dance: button → provider → callback; answers the callback's response."""
    return client.get(callback_path(follow_provider(start_connect(client, creator, platform))))


def raw_column(table: str, column: str, pk: int) -> str:
    with db_connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]
