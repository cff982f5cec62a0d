"""Identifiers passed in query strings, JSON bodies and form fields (creator ids) on every page
and endpoint that takes one: another agency's creator, or a creator a chatter is not assigned
to, answers 404 or a 4xx/form error and never shows or changes that creator's data.

Ids in URL paths are covered by the cross-tenant walk (tests/test_cross_tenant.py); this file
covers the ids the walk cannot see. Add a case here when a new endpoint takes an id in its query
string or body (fan ids arrive with the fan inbox).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.models import Creator, CreatorAssignment, Membership
from apps.ai.registry import registry
from apps.campaigns.models import Campaign
from apps.studio.models import ContentIdea, Generation, Post
from huntaze.asgi import application
from tests.conftest import World, build_world, login_client

SECRET_CAPTION = "Target secret caption"
SECRET_IDEA = "Target secret idea"
SECRET_POST = "Target secret post"


@dataclass(frozen=True)
class Case:
    method: str
    url: str
    data: dict | None = None
    json: bool = True  # False: a form post (pages)


def _target_data(creator: Creator) -> None:
    Generation.objects.create(
        agency=creator.agency, creator=creator, type="caption", status="done", text=SECRET_CAPTION
    )
    ContentIdea.objects.create(
        agency=creator.agency, creator=creator, title=SECRET_IDEA, category="photo", fingerprint="target"
    )
    Post.objects.create(
        agency=creator.agency, creator=creator, platform="onlyfans", category="photo", caption=SECRET_POST,
        posted_at=datetime(2026, 1, 5, 12, tzinfo=UTC),
    )  # fmt: skip


def cases(attacker: Membership, target: Creator, own_chatter: Membership) -> dict[str, Case]:
    cid = target.pk
    return {
        "api generations list ?creator_id": Case("get", f"/api/v1/studio/generations?creator_id={cid}"),
        "api ideas list ?creator_id": Case("get", f"/api/v1/studio/ideas?creator_id={cid}"),
        "api posts list ?creator_id": Case("get", f"/api/v1/studio/posts?creator_id={cid}"),
        "api generate {creator_id}": Case("post", "/api/v1/studio/generations", {"creator_id": cid, "type": "caption"}),
        "api generate stream {creator_id}": Case(
            "post", "/api/v1/studio/generations/stream", {"creator_id": cid, "type": "caption"}
        ),
        "api member assignments {creator_ids}": Case(
            "put", f"/api/v1/members/{own_chatter.pk}/assignments", {"creator_ids": [cid]}
        ),
        "api fans list ?creator_id": Case("get", f"/api/v1/fans?creator_id={cid}"),
        "api conversations list ?creator_id": Case("get", f"/api/v1/conversations?creator_id={cid}"),
        "api segments list ?creator_id": Case("get", f"/api/v1/segments?creator_id={cid}"),
        "api templates list ?creator_id": Case("get", f"/api/v1/templates?creator_id={cid}"),
        "api segment create {creator_id}": Case("post", "/api/v1/segments", {"name": "Probe", "creator_id": cid}),
        "api template create {creator_id}": Case(
            "post", "/api/v1/templates", {"name": "Probe", "text": "Hi", "creator_id": cid}
        ),
        "api campaigns list ?creator_id": Case("get", f"/api/v1/campaigns?creator_id={cid}"),
        "api campaign create {creator_id}": Case(
            "post", "/api/v1/campaigns", {"creator_id": cid, "name": "Probe", "text": "Hi", "fan_ids": [1]}
        ),
        "page studio generate creator_id": Case("post", "/studio/", {"creator_id": cid, "type": "caption"}, json=False),
        "page switch creator id": Case("post", "/switch/creator/", {"id": cid}, json=False),
        "page member assignments creators": Case(
            "post", f"/settings/members/{own_chatter.pk}/", {"form": "assignments", "creators": [cid]}, json=False
        ),
    }


CASE_NAMES = [
    "api generations list ?creator_id",
    "api ideas list ?creator_id",
    "api posts list ?creator_id",
    "api generate {creator_id}",
    "api generate stream {creator_id}",
    "api member assignments {creator_ids}",
    "api fans list ?creator_id",
    "api conversations list ?creator_id",
    "api segments list ?creator_id",
    "api templates list ?creator_id",
    "api segment create {creator_id}",
    "api template create {creator_id}",
    "api campaigns list ?creator_id",
    "api campaign create {creator_id}",
    "page studio generate creator_id",
    "page switch creator id",
    "page member assignments creators",
]


@pytest.fixture(autouse=True)
def builtin(settings):
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_COMPATIBLE_BASE_URL"):
        setattr(settings, key, "")
    registry.reset()
    yield
    registry.reset()


def _snapshot(creator: Creator) -> dict:
    return {
        "generations": Generation.objects.filter(creator=creator).count(),
        "ideas": ContentIdea.objects.filter(creator=creator).count(),
        "campaigns": Campaign.objects.filter(creator=creator).count(),
        "assignments": sorted(
            CreatorAssignment.objects.filter(creator=creator).values_list("membership_id", flat=True)
        ),
    }


def _setup(kind: str) -> tuple[Membership, Creator, Membership, World]:
    """(attacker, target creator, a chatter of the attacker's agency, the target's world)."""
    if kind == "foreign":
        victim, attacker_world = build_world("Victim Co"), build_world("Attacker Ltd")
        _target_data(victim.creator)
        return attacker_world.owner, victim.creator, attacker_world.chatter, victim
    world = build_world("Own Co")  # a chatter, and a creator of their agency they are not assigned to
    _target_data(world.other_creator)
    return world.chatter, world.other_creator, world.chatter, world


@pytest.mark.parametrize("kind", ["foreign", "unassigned"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_a_creator_id_the_member_cannot_use_answers_4xx_or_nothing(db, kind, name):
    attacker, target, own_chatter, _world = _setup(kind)
    case = cases(attacker, target, own_chatter)[name]
    before = _snapshot(target)
    client = login_client(attacker)
    if case.method == "get":
        response = client.get(case.url)
    elif case.json:
        response = getattr(client, case.method)(case.url, json.dumps(case.data), content_type="application/json")
    else:
        response = client.post(case.url, case.data)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode(errors="replace")
    for marker in (SECRET_CAPTION, SECRET_IDEA, SECRET_POST, target.display_name):
        assert marker not in text, f"{name} leaked {marker!r}"
    if case.method == "get":
        # A list filtered by a creator the member cannot see is empty, never the creator's rows.
        assert response.status_code == 404 or (response.status_code == 200 and response.json()["items"] == [])
    elif case.json:
        assert 400 <= response.status_code < 500, f"{name} -> {response.status_code}"
    else:
        # Pages answer 404, or re-render the form with an error (200), or 403 for a role.
        assert response.status_code in (200, 403, 404), f"{name} -> {response.status_code}"
        if response.status_code == 200:
            assert "is not one of the available choices" in text, f"{name} re-rendered without an error"
    assert _snapshot(target) == before, f"{name} changed the target creator's data"
    if name == "page switch creator id":
        assert client.session.get("huntaze_creator_id") != target.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["foreign", "unassigned"])
async def test_websocket_generate_with_a_creator_the_member_cannot_use(kind):
    attacker, target, _own_chatter, _world = await sync_to_async(_setup)(kind)
    client = await sync_to_async(login_client)(attacker)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    communicator = WebsocketCommunicator(
        application, "/ws/studio/", headers=[(b"origin", b"http://127.0.0.1:8000"), (b"cookie", cookie)]
    )
    assert (await communicator.connect(timeout=5))[0]
    await communicator.send_to(text_data=json.dumps({"action": "generate", "type": "caption", "creator_id": target.pk}))
    frame = await communicator.receive_from(timeout=5)
    assert "Choose one of your creators." in frame and target.display_name not in frame
    assert await communicator.receive_nothing(timeout=0.3)
    assert await Generation.objects.filter(creator=target).acount() == 1
    await communicator.disconnect()
