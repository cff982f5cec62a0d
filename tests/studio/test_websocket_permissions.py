"""The studio websocket re-checks the member's access on every generate message, not only at connect."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.models import CreatorAssignment, Membership, Role
from huntaze.asgi import application
from tests.conftest import build_world, login_client

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


pytestmark = pytest.mark.usefixtures("builtin")  # tests/studio/conftest.py: the built-in provider only


async def _socket(membership: Membership) -> WebsocketCommunicator:
    client = await sync_to_async(login_client)(membership)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(application, "/ws/studio/", headers=[ORIGIN, (b"cookie", cookie)])
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    return communicator


async def _generate_until_done(communicator: WebsocketCommunicator, creator_id: int) -> None:
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "caption", "creator_id": creator_id})
    )
    while "Save to library" not in await communicator.receive_from(timeout=10):
        pass


async def _expect_closed_4403(communicator: WebsocketCommunicator) -> None:
    frames = []
    while True:
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert output["code"] == 4403
            break
        frames.append(output.get("text", ""))
    assert not any("studio-stream" in frame or "Save to library" in frame for frame in frames)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["removed", "demoted"])
async def test_member_removed_or_demoted_mid_session_cannot_generate(change):
    world = await sync_to_async(build_world)(f"Socket {change}")
    communicator = await _socket(world.manager)
    await _generate_until_done(communicator, world.creator.pk)
    if change == "removed":
        await Membership.objects.filter(pk=world.manager.pk).adelete()
    else:
        await Membership.objects.filter(pk=world.manager.pk).aupdate(role=Role.VIEWER)
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "caption", "creator_id": world.creator.pk})
    )
    await _expect_closed_4403(communicator)
    from apps.studio.models import Generation

    assert await Generation.objects.filter(agency=world.agency).acount() == 1


@pytest.mark.django_db(transaction=True)
async def test_chatter_unassigned_mid_session_loses_the_creator():
    world = await sync_to_async(build_world)("Socket chatter")
    communicator = await _socket(world.chatter)
    await _generate_until_done(communicator, world.creator.pk)
    await CreatorAssignment.objects.filter(membership=world.chatter).adelete()
    await communicator.send_to(
        text_data=json.dumps({"action": "generate", "type": "caption", "creator_id": world.creator.pk})
    )
    assert "Choose one of your creators." in await communicator.receive_from(timeout=5)
    from apps.studio.models import Generation

    assert await Generation.objects.filter(agency=world.agency).acount() == 1
    await communicator.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("creator_id", ["1e400", '"12abc"', "null", "99999999999999999999999"])
async def test_a_creator_id_that_is_no_creator_gets_an_answer(creator_id):
    """JSON's 1e400 is an infinite float and a huge integer is beyond any id column: each is
    "Choose one of your creators." on a socket that stays usable, never a silent failure."""
    world = await sync_to_async(build_world)("Socket junk id")
    communicator = await _socket(world.owner)
    await communicator.send_to(text_data=f'{{"action": "generate", "type": "caption", "creator_id": {creator_id}}}')
    assert "Choose one of your creators." in await communicator.receive_from(timeout=5)
    await _generate_until_done(communicator, world.creator.pk)
    await communicator.disconnect()
