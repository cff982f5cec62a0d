"""Studio pages and the streaming websocket, with the built-in provider."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse

from apps.ai.registry import registry
from apps.studio.models import ContentIdea, Generation
from huntaze.asgi import application
from tests.conftest import build_world, login_client

pytestmark = pytest.mark.usefixtures("builtin")  # tests/studio/conftest.py: the built-in provider only


def test_studio_page_shows_persona_and_streaming_form(world, client_for):
    world.creator.persona = "<script>alert('x')</script> Calm yoga teacher"
    world.creator.save()
    client = client_for(world.manager)
    session = client.session
    session["huntaze_creator_id"] = world.creator.pk
    session.save()
    page = client.get(reverse("studio:index") + "?type=caption").content.decode()
    assert "Calm yoga teacher" in page and "<script>alert" not in page and "&lt;script&gt;" in page
    assert 'ws-connect="/ws/studio/"' in page and "ws-send" in page and 'name="caption_length"' in page


def test_generate_without_javascript(world, client_for):
    client = client_for(world.manager)
    response = client.post(
        reverse("studio:index"),
        {"type": "message", "creator_id": world.creator.pk, "variations": "2", "tone": "flirty"},
    )
    assert response.status_code == 200
    generation = Generation.objects.get()
    assert generation.status == "done" and len(generation.result["variations"]) == 2
    assert generation.result["variations"][0]["text"][:20] in response.content.decode()
    assert "Built-in offline writer" in response.content.decode()
    assert response.content.decode().count("data-copy=") == 2


def test_form_errors_are_shown_not_raised(world, client_for):
    response = client_for(world.manager).post(
        reverse("studio:index"), {"type": "idea", "creator_id": world.creator.pk, "idea_count": "99"}
    )
    assert response.status_code == 200 and "Ask for between 1 and 50 ideas." in response.content.decode()
    assert not Generation.objects.exists()


def test_viewer_cannot_generate(world, client_for):
    client = client_for(world.viewer)
    assert "but not generate" in client.get(reverse("studio:index")).content.decode()
    response = client.post(reverse("studio:index"), {"type": "message", "creator_id": world.creator.pk})
    assert response.status_code == 403 and not Generation.objects.exists()


def test_an_archived_creator_gets_no_generation_from_the_form(world, client_for):
    """Archiving frees a plan's creator slot: the form refuses it as the API and the socket do."""
    world.other_creator.is_archived = True
    world.other_creator.save()
    response = client_for(world.manager).post(
        reverse("studio:index"), {"type": "message", "creator_id": world.other_creator.pk}
    )
    assert response.status_code == 404 and not Generation.objects.exists()


def test_history_and_idea_board(world, client_for, django_assert_max_num_queries):
    client = client_for(world.manager)
    client.post(reverse("studio:index"), {"type": "idea", "creator_id": world.creator.pk, "idea_count": "3"})
    generation = Generation.objects.get()
    client.post(reverse("studio:generation-save", args=[generation.pk]))
    assert Generation.objects.get().saved
    with django_assert_max_num_queries(12):
        history = client.get(reverse("studio:history") + "?show=saved")
    assert history.status_code == 200 and "saved" in history.content.decode()
    idea = ContentIdea.objects.first()
    client.post(reverse("studio:idea-update", args=[idea.pk]), {"favourite": "1"})
    client.post(reverse("studio:idea-update", args=[idea.pk]), {"action": "use", "outcome": "did great"})
    client.post(reverse("studio:idea-update", args=[idea.pk]), {"action": "use"})  # the button again, no note
    idea.refresh_from_db()
    assert idea.is_favourite and idea.used_at and idea.outcome == "did great"
    with django_assert_max_num_queries(12):
        board = client.get(reverse("studio:ideas") + "?favourite=1")
    assert idea.title in board.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_websocket_streams_escaped_text_then_the_result():
    world = await sync_to_async(build_world)("Stream")
    client = await sync_to_async(login_client)(world.manager)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/studio/", headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
    )
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "message", "creator_id": str(world.creator.pk)})
    )
    frames = []
    while True:
        frame = await communicator.receive_from(timeout=10)
        frames.append(frame)
        if 'id="studio-result"' in frame and "hx-swap-oob" in frame and "Save to library" in frame:
            break
    assert any('id="studio-stream"' in f for f in frames)
    generation = await Generation.objects.aget()
    assert generation.status == "done"
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_rejects_anonymous_and_bad_input():
    communicator = WebsocketCommunicator(application, "/ws/studio/", headers=[(b"origin", b"http://127.0.0.1:8000")])
    connected, code = await communicator.connect(timeout=5)
    assert not connected and code == 4403
    world = await sync_to_async(build_world)("Bad")
    other = await sync_to_async(build_world)("Other")
    client = await sync_to_async(login_client)(world.manager)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/studio/", headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
    )
    assert (await communicator.connect(timeout=5))[0]
    await communicator.send_to(text_data="not json")
    assert "could not be read" in await communicator.receive_from(timeout=5)
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "message", "creator_id": other.creator.pk})
    )
    assert "Choose one of your creators." in await communicator.receive_from(timeout=5)
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "idea", "idea_count": "0", "creator_id": world.creator.pk})
    )
    frames = [await communicator.receive_from(timeout=5) for _ in range(2)]
    assert any("Ask for between 1 and 50 ideas." in f for f in frames)
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_cancel_stops_the_generation(settings, fake_llm):
    fake_llm.reset()
    fake_llm.reply_text = '{"variations": [{"text": "' + "slow words " * 200 + '"}]}'
    fake_llm.chunk_delay = 0.02
    settings.OPENAI_API_KEY = "sk-test-cancel-0123456789"
    settings.OPENAI_BASE_URL = fake_llm.openai_base_url
    settings.OPENAI_MODELS = ["gpt-4o-mini"]
    registry.reset()
    world = await sync_to_async(build_world)("Cancel")
    client = await sync_to_async(login_client)(world.manager)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/studio/", headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
    )
    assert (await communicator.connect(timeout=5))[0]
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "message", "creator_id": str(world.creator.pk)})
    )
    while 'id="studio-stream" hx-swap-oob="beforeend"' not in await communicator.receive_from(timeout=10):
        pass  # wait for the first streamed text
    await communicator.send_to(text_data=json.dumps({"action": "cancel"}))
    frame = ""
    while "Cancelled." not in frame:
        frame = await communicator.receive_from(timeout=10)
    generation = await Generation.objects.aget()
    assert generation.status == "cancelled"
    assert generation.text and fake_llm.reply_text.startswith(generation.text)  # what arrived is kept
    assert len(generation.text) < len(fake_llm.reply_text)
    await communicator.disconnect()
    fake_llm.reset()


@pytest.mark.django_db(transaction=True)
def test_regenerate_one_variation_keeps_the_others(world, client_for, settings, fake_llm):
    fake_llm.reset()
    settings.OPENAI_API_KEY = "sk-test-regen-0123456789"
    settings.OPENAI_BASE_URL = fake_llm.openai_base_url
    settings.OPENAI_MODELS = ["gpt-4o-mini"]
    registry.reset()
    fake_llm.reply_text = json.dumps({"variations": [{"text": "first take"}, {"text": "second take"}]})
    client = client_for(world.manager)
    client.post(reverse("studio:index"), {"type": "message", "creator_id": world.creator.pk, "variations": "2"})
    generation = Generation.objects.get()
    fake_llm.reply_text = json.dumps({"variations": [{"text": "a fresh second take"}]})
    response = client.post(reverse("studio:variation-regenerate", args=[generation.pk, 1]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "a fresh second take" in response.content.decode()
    generation.refresh_from_db()
    assert [v["text"] for v in generation.result["variations"]] == ["first take", "a fresh second take"]
    assert Generation.objects.count() == 1 and generation.output_tokens > 0
    bad = client.post(reverse("studio:variation-regenerate", args=[generation.pk, 7]), HTTP_HX_REQUEST="true")
    assert "There is no such variation." in bad.content.decode()
    assert (
        client_for(world.viewer).post(reverse("studio:variation-regenerate", args=[generation.pk, 0])).status_code
        == 403
    )
    fake_llm.reset()


def test_performance_page_import_report_and_caption_check(world, client_for, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(world.manager)
    session = client.session
    session["huntaze_creator_id"] = world.creator.pk
    session.save()
    page = client.get(reverse("studio:performance"))
    assert page.status_code == 200 and "No posts yet" in page.content.decode()
    csv = (
        b"platform,posted_at,category,caption,tags,views,likes\n"
        b"instagram,2026-10-02T20:00:00,photo,Hi <b>there</b>,beach,500,50\n"
        b"instagram,2026-10-03T20:00:00,sculpture,Bad,,5,1\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("studio:performance"),
            {"form": "import", "file": SimpleUploadedFile("p.csv", csv, content_type="text/csv")},
        )
    body = response.content.decode()
    assert "<strong>1</strong> imported" in body and "category" in body and "#beach" in body
    check = client.post(
        reverse("studio:performance"),
        {"form": "caption", "caption": "Want it? 🔥", "platform": "x"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert check.strip().startswith('<div id="caption-report">') and "asks a question" in check
    empty = client.post(reverse("studio:performance"), {"form": "import"}).content.decode()
    assert "Choose a CSV file to import." in empty


def test_viewer_cannot_import_posts(world, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client = client_for(world.viewer)
    response = client.post(
        reverse("studio:performance"),
        {
            "form": "import",
            "file": SimpleUploadedFile("p.csv", b"platform,posted_at,category\n", content_type="text/csv"),
        },
    )
    assert response.status_code == 403
