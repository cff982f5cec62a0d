"""A new campaign starts from a message template or a message saved in the studio: the form
lists them, choosing one fills the message (a template also its name and creator), and another
agency's template or studio message is a 404 that fills nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.studio.models import Generation
from tests.messaging.factories import TemplateFactory

pytestmark = pytest.mark.django_db


def studio_message(world, texts, **fields):
    values = {
        "agency": world.agency, "creator": world.creator, "type": "message", "status": "done", "saved": True,
        "result": {"variations": [{"text": text} for text in texts]},
    }  # fmt: skip
    return Generation.objects.create(**(values | fields))


def test_the_form_lists_templates_and_saved_studio_messages(world, other_world, client_for):
    TemplateFactory(agency=world.agency, name="Weekend tease", creator=world.creator)
    TemplateFactory(agency=other_world.agency, name="Rival secret template")
    studio_message(world, ["Saved <b>studio</b> line"])
    studio_message(world, ["Not saved line"], saved=False)
    page = client_for(world.owner).get(reverse("campaigns:create")).content.decode()
    assert "Weekend tease (Velvet Star)" in page
    assert "Saved &lt;b&gt;studio&lt;/b&gt; line" in page
    assert "Rival secret template" not in page and "Not saved line" not in page


def test_a_template_fills_the_message_name_and_creator(world, client_for):
    template = TemplateFactory(
        agency=world.agency, name="Weekend tease", creator=world.other_creator, text="Hi {fan.first_name|babe} 🔥"
    )
    response = client_for(world.owner).get(reverse("campaigns:create"), {"start": f"template:{template.pk}"})
    form = response.context["form"]
    assert form.initial["text"] == "Hi {fan.first_name|babe} 🔥"
    assert form.initial["name"] == "Weekend tease"
    assert form.initial["creator"] == world.other_creator.pk
    assert 'value="Weekend tease"' in response.content.decode()


def test_a_studio_variation_fills_the_message(world, client_for):
    generation = studio_message(world, ["First line", "Second line"])
    response = client_for(world.owner).get(reverse("campaigns:create"), {"start": f"generation:{generation.pk}:1"})
    assert response.context["form"].initial["text"] == "Second line"
    assert response.context["form"].initial["creator"] == world.creator.pk


def test_another_agencys_template_or_studio_message_is_404(world, other_world, client_for):
    template = TemplateFactory(agency=other_world.agency, name="Rival secret template", text="Rival secret text")
    generation = studio_message(other_world, ["Rival secret line"])
    client = client_for(world.owner)
    for start in (f"template:{template.pk}", f"generation:{generation.pk}:0"):
        response = client.get(reverse("campaigns:create"), {"start": start})
        assert response.status_code == 404
        assert "Rival secret" not in response.content.decode()


def test_a_caption_or_a_missing_variation_is_404(world, client_for):
    caption = studio_message(world, ["x"], type="caption")
    message = studio_message(world, ["only one"])
    client = client_for(world.owner)
    assert client.get(reverse("campaigns:create"), {"start": f"generation:{caption.pk}:0"}).status_code == 404
    assert client.get(reverse("campaigns:create"), {"start": f"generation:{message.pk}:5"}).status_code == 404
    assert client.get(reverse("campaigns:create"), {"start": "nonsense"}).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"segment": "²"},
        {"creator": "³"},
        {"start": "template:²"},
        {"start": "generation:{generation}:²"},
        {"start": "generation:¹:0"},
    ],
)
def test_a_number_that_is_not_one_in_the_address_is_ignored(world, client_for, query):
    """Superscripts pass str.isdigit() but not int(): the form opens empty instead of a 500."""
    generation = studio_message(world, ["Saved line"])
    query = {key: value.format(generation=generation.pk) for key, value in query.items()}
    response = client_for(world.owner).get(reverse("campaigns:create"), query)
    assert response.status_code == 200
    assert response.context["form"].initial.get("text") is None
