"""NUL characters in request text answer 400 (apps.core.middleware.RejectNulMiddleware).

PostgreSQL cannot store or compare NUL: the XSS gate's NUL payload made a creator search, the idea
board's search and POST /api/v1/creators answer 500 there, while SQLite took it.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest


@pytest.mark.parametrize("url", ["/settings/creators/?q=a%00b", "/studio/ideas/?q=%00", "/api/v1/studio/ideas?q=a%00"])
def test_a_query_string_with_nul_is_a_400(world, client_for, url):
    response = client_for(world.owner).get(url)
    assert response.status_code == 400
    if url.startswith("/api/"):
        assert response.json()["error"]["code"] == "bad_request"
    else:
        assert "NUL" in response.content.decode()


def test_api_and_form_bodies_with_nul_are_a_400_and_store_nothing(world, client_for):
    client = client_for(world.owner)
    before = world.agency.creators.count()
    answer = client.post("/api/v1/creators", {"display_name": "Nul\u0000Star"}, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["error"]["message"].startswith("Text cannot contain NUL")
    form = "name=Nul%00Agency&timezone=UTC"
    assert client.post("/settings/agency/", form, content_type="application/x-www-form-urlencoded").status_code == 400
    assert client.post("/settings/agency/", {"name": "Nul\x00Agency", "timezone": "UTC"}).status_code == 400
    studio = {"type": "caption", "creator_id": world.creator.pk, "goal": "a\x00b"}  # raw POST values, no form
    assert client.post("/studio/", studio).status_code == 400
    assert world.agency.creators.count() == before


def test_text_without_nul_and_binary_uploads_pass(world, client_for):
    client = client_for(world.owner)
    assert client.get("/settings/creators/?q=100%25").status_code == 200
    answer = client.post("/api/v1/creators", {"display_name": "Plain \\u0041 Star"}, content_type="application/json")
    assert answer.status_code == 201
    upload = client.post("/studio/performance/", {"form": "import", "file": _binary_file()})
    assert upload.status_code == 200  # the import's own check refuses the file, not this middleware


def _binary_file():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("posts.csv", b"platform,posted_at\x00,category\n", content_type="text/csv")


def test_a_json_body_sent_as_a_form_is_read_for_nul_as_json_and_forms_keep_their_text(world, client_for):
    """django-ninja reads every body as JSON, so a JSON body labelled
    ``application/x-www-form-urlencoded`` (curl's ``-d``) carried its NUL past the form-only
    ``%00`` check: 500 on PostgreSQL, a stored NUL on SQLite."""
    client = client_for(world.owner)
    body = '{"name": "Nul\\u0000Agency"}'
    answer = client.generic("PUT", "/api/v1/agency", body, content_type="application/x-www-form-urlencoded")
    assert answer.status_code == 400 and answer.json()["error"]["message"].startswith("Text cannot contain NUL")
    world.agency.refresh_from_db()
    assert world.agency.name == "Velvet"
    # What a person types, backslash and percent sign included, still saves through the page's form.
    typed = "Back\\u0000slash 100%00"
    form = urlencode({"name": typed, "timezone": "UTC"})
    assert client.post("/settings/agency/", form, content_type="application/x-www-form-urlencoded").status_code == 302
    world.agency.refresh_from_db()
    assert world.agency.name == typed
