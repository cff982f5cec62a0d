"""The studio websocket refuses what the API's schema and the middleware refuse on HTTP: a value
that is no whole number, a choice that is not text, NUL or half a surrogate pair in free text.
Each gets an error frame before any model call, and the socket stays usable."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from apps.ai.models import AIRequestLog
from apps.studio.models import Generation
from tests.conftest import build_world
from tests.studio.test_websocket_permissions import _generate_until_done, _socket

pytestmark = pytest.mark.usefixtures("builtin")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "options, expected",
    [
        ('"type": "idea", "idea_count": 1e400', "Idea count must be a whole number."),
        ('"type": "caption", "platform": ["x"]', "Platform must be one of its choices."),
        ('"type": "caption", "caption_length": {"long": 1}', "Caption length must be one of its choices."),
        ('"type": "message", "goal": "a\\u0000b"', "Text cannot contain NUL (0x00) characters."),
        ('"type": "caption", "media_description": "x\\u0000"', "Text cannot contain NUL (0x00) characters."),
        # Half of a surrogate pair: the API's schema refuses it as text, PostgreSQL's jsonb as options.
        ('"type": "message", "goal": "a\\ud800b"', "Text cannot contain an unpaired surrogate"),
    ],
)
async def test_a_value_the_api_refuses_is_an_error_frame_on_the_socket(options, expected):
    world = await sync_to_async(build_world)("Socket input")
    communicator = await _socket(world.owner)
    await communicator.send_to(text_data=f'{{"action": "generate", "creator_id": {world.creator.pk}, {options}}}')
    frames = [await communicator.receive_from(timeout=5)]
    while expected not in frames[-1]:
        frames.append(await communicator.receive_from(timeout=5))
    assert not any('hx-swap-oob="beforeend"' in f for f in frames)  # no streamed text
    assert not await Generation.objects.filter(agency=world.agency).aexists()
    assert not await AIRequestLog.objects.aexists()
    await _generate_until_done(communicator, world.creator.pk)  # the socket still works
    await communicator.disconnect()
