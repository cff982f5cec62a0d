"""Message template pages: list by category, create/edit/delete, the variable reference, the
preview for a chosen fan; unknown variables named; roles and outsiders."""

from __future__ import annotations

import pytest

from apps.messaging.models import MessageTemplate
from tests.conftest import login_client
from tests.messaging.factories import FanFactory, TemplateFactory

pytestmark = pytest.mark.django_db


def test_list_groups_by_category(world):
    TemplateFactory(agency=world.agency, name="Hello there", category="welcome")
    TemplateFactory(agency=world.agency, name="Come back", category="reengagement")
    body = login_client(world.viewer).get("/message-templates/").content.decode()
    assert body.index("Welcome") < body.index("Hello there") < body.index("Re-engagement") < body.index("Come back")


def test_empty_state(world):
    assert "No templates yet" in login_client(world.owner).get("/message-templates/").content.decode()


def test_editor_shows_the_variable_reference(world):
    body = login_client(world.owner).get("/message-templates/new/").content.decode()
    assert "{fan.first_name}" in body and "The fan&#x27;s first name" in body


def test_create_edit_delete(world):
    client = login_client(world.manager)
    response = client.post(
        "/message-templates/new/", {"name": "Welcome", "category": "welcome", "text": "Hi {fan.first_name|babe}!"}
    )
    assert response.status_code == 302
    template = MessageTemplate.objects.get()
    client.post(f"/message-templates/{template.pk}/", {"name": "Welcome 2", "category": "custom", "text": "Yo"})
    template.refresh_from_db()
    assert (template.name, template.category, template.text) == ("Welcome 2", "custom", "Yo")
    client.post(f"/message-templates/{template.pk}/delete/")
    assert not MessageTemplate.objects.exists()


def test_unknown_variable_is_a_field_error_naming_it(world):
    response = login_client(world.owner).post(
        "/message-templates/new/", {"name": "Bad", "category": "custom", "text": "Hey {fan.nickname}"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Unknown variable {fan.nickname}" in body and "has-error" in body
    assert "Hey {fan.nickname}" in body  # the typed text is kept
    assert not MessageTemplate.objects.exists()


def test_failed_edit_changes_nothing(world):
    template = TemplateFactory(agency=world.agency, name="Keep", text="Hello")
    response = login_client(world.owner).post(
        f"/message-templates/{template.pk}/", {"name": "Keep", "category": "custom", "text": "Hi {oops"}
    )
    assert response.status_code == 400
    template.refresh_from_db()
    assert template.text == "Hello"


def test_preview_for_a_fan_shows_fallbacks(world):
    fan = FanFactory(creator=world.creator, display_name="", username="anon")
    client = login_client(world.owner)
    body = client.post(
        "/message-templates/preview/",
        {"text": "Hey {fan.first_name|babe} from {creator.name}", "fan": fan.pk},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert f"Hey babe from {world.creator.display_name}" in body
    assert "Fallback used for: <code>fan.first_name</code>" in body
    body = client.post(
        "/message-templates/preview/", {"text": "Hey {fan.nick}", "fan": fan.pk}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Unknown variable {fan.nick}" in body


def test_preview_without_js_is_a_page(world):
    fan = FanFactory(creator=world.creator, display_name="Mike Doe")
    response = login_client(world.owner).post(
        "/message-templates/preview/", {"text": "Hi {fan.first_name}", "fan": fan.pk}
    )
    assert (
        response.status_code == 200 and "<html" in response.content.decode() and "Hi Mike" in response.content.decode()
    )


def test_preview_refuses_a_fan_the_member_cannot_see(world, other_world):
    theirs = FanFactory(creator=world.creator, display_name="Secret Person")
    response = login_client(other_world.owner).post(
        "/message-templates/preview/", {"text": "Hi {fan.name}", "fan": theirs.pk}
    )
    assert response.status_code == 400 and "Secret Person" not in response.content.decode()
    unassigned = FanFactory(creator=world.other_creator, display_name="Hidden Fan")
    response = login_client(world.chatter).post(
        "/message-templates/preview/", {"text": "Hi {fan.name}", "fan": unassigned.pk}
    )
    assert "Hidden Fan" not in response.content.decode()


def test_template_text_is_escaped(world):
    TemplateFactory(agency=world.agency, name="<img src=x onerror=alert(1)>", text="<script>x</script>")
    body = login_client(world.owner).get("/message-templates/").content.decode()
    assert "<script>x</script>" not in body and "<img src=x" not in body


def test_viewer_cannot_write(world):
    template = TemplateFactory(agency=world.agency, name="Kept", text="Hello")
    client = login_client(world.viewer)
    assert client.get("/message-templates/new/").status_code == 403
    assert (
        client.post(f"/message-templates/{template.pk}/", {"name": "X", "category": "custom", "text": "Y"}).status_code
        == 403
    )
    assert client.post(f"/message-templates/{template.pk}/delete/").status_code == 403
    template.refresh_from_db()
    assert template.name == "Kept"


def test_chatter_sees_shared_and_assigned_creator_templates_only(world):
    TemplateFactory(agency=world.agency, name="Shared one")
    TemplateFactory(agency=world.agency, name="For star", creator=world.creator)
    TemplateFactory(agency=world.agency, name="For nova", creator=world.other_creator)
    body = login_client(world.chatter).get("/message-templates/").content.decode()
    assert "Shared one" in body and "For star" in body and "For nova" not in body


def test_outsider_gets_404(world, other_world):
    template = TemplateFactory(agency=world.agency, name="Secret template")
    client = login_client(other_world.owner)
    assert client.get(f"/message-templates/{template.pk}/").status_code == 404
    assert client.post(f"/message-templates/{template.pk}/delete/").status_code == 404
    assert MessageTemplate.objects.filter(pk=template.pk).exists()
