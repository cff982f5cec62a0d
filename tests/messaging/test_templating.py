"""Template variables: values, fallbacks, literal braces, and unknown variables refused."""

from __future__ import annotations

import pytest

from apps.core.errors import ApplicationError
from apps.messaging.templating import template_render, template_renderer, template_variables
from tests.messaging.factories import FanFactory

pytestmark = pytest.mark.django_db


def test_variables_take_the_fans_values_or_their_fallback(world):
    named = FanFactory(creator=world.creator, display_name="Jake Miller", username="jm")
    anonymous = FanFactory(creator=world.creator, display_name="", username="u123")
    text = "Hey {fan.first_name|babe}, it's {creator.name} {{wink}}"
    assert (
        template_render(text, fan=named, creator=world.creator).text
        == f"Hey Jake, it's {world.creator.display_name} {{wink}}"
    )
    rendered = template_render(text, fan=anonymous, creator=world.creator)
    assert rendered.text.startswith("Hey babe,")
    assert rendered.fallbacks_used == ["fan.first_name"]


@pytest.mark.parametrize("text", ["Hi {fan.password}", "Hi {fan.first_name", "Hi } there", "{__class__}"])
def test_unknown_variables_and_stray_braces_are_refused(text):
    with pytest.raises(ApplicationError) as error:
        template_variables(text)
    assert error.value.field == "text"


def test_unknown_variable_error_names_it():
    with pytest.raises(ApplicationError, match=r"Unknown variable \{fan.age\}"):
        template_variables("You are {fan.age}")


@pytest.mark.parametrize(
    "text",
    [
        "Hey {fan.first_name|babe}, new set tonight!",
        "{fan.name} and {fan.username}: {{literal}} braces,   spaces\tand {creator.first_name|me}",
        "No variables at all   here ",
        "{fan.first_name}",
        "{fan.first_name|  }  trailing {creator.name}",
        "",
    ],
)
def test_the_parsed_once_renderer_gives_what_template_render_gives(world, text):
    fans = [
        FanFactory(creator=world.creator, display_name="Marco Polo", username="marco"),
        FanFactory(creator=world.creator, display_name="", username="anon42"),
        FanFactory(creator=world.creator, display_name="  ", username="spaces"),
    ]
    render = template_renderer(text)
    for fan in fans:
        assert render(fan, world.creator) == template_render(text, fan=fan, creator=world.creator).text
