"""The cross-tenant walk: every URL pattern and every API route, called by a member of another agency.

The walk enumerates the URL resolver (which includes every django-ninja route), so a new page
or endpoint is covered the day it is added. A URL keyword it does not know how to fill makes
the walk fail: register the new kwarg in ``KWARG_OBJECTS`` with an object of the victim agency.

Expectations:
- a route that names an object of the victim agency answers 403, 404 or 405 to every method and
  changes nothing;
- every other route never shows any of the victim agency's data (names, emails).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from apps.accounts import services as account_services
from apps.accounts.models import ApiToken, Creator, Invitation, Membership, UserSession
from apps.ai.models import ProviderCredential
from apps.campaigns.models import DELIVERY_SOURCE, Automation, Campaign
from apps.core.models import OutboxEvent
from apps.delivery.models import Delivery
from apps.integrations.models import Connection as IntegrationConnection
from apps.integrations.models import CRMConnection, CRMDelivery, ScheduledPost
from apps.messaging.models import Conversation, Draft, Fan, FanImport, FanNote, Message, MessageTemplate, Segment
from apps.monitoring.models import SLO, AlertWebhook, Budget
from apps.notifications.models import Notification
from apps.notifications.services import notification_send
from apps.optimization.models import Anomaly, Offer, Recommendation
from apps.studio.models import ContentIdea, Generation
from apps.workflows.models import StepRun, WorkflowRun
from tests.conftest import World, build_world, login_client

SKIPPED_NAMESPACES = {
    # Staff-only; non-staff members are redirected to the admin login (tests/test_admin.py).
    "admin",
}
PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>")
METHODS = ("get", "post", "put", "patch", "delete")
# One body that satisfies every write endpoint's schema (unknown fields are ignored), so that
# requests get past validation and reach the object lookup. Extend it when an endpoint needs more.
UNIVERSAL_BODY = {
    "archived": True,
    "role": "viewer",
    "creator_ids": [],
    "display_name": "Hijacked",
    "name": "Hijacked",
    "email": "intruder@example.com",
    "timezone": "UTC",
    "favourite": True,
    "outcome": "hijacked",
    "caption": "hijacked caption",
}


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        route = str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            ns = pattern.namespace or namespace
            if ns in SKIPPED_NAMESPACES:
                continue
            yield from _walk(pattern.url_patterns, prefix + route, ns)
        elif isinstance(pattern, URLPattern):
            yield prefix + route, f"{namespace}:{pattern.name}" if namespace else str(pattern.name)


def all_routes() -> list[tuple[str, str]]:
    routes = sorted(set(_walk(get_resolver().url_patterns)))
    assert len(routes) > 30, "the URL walk found suspiciously few routes"
    return routes


@pytest.fixture
def victim(db) -> tuple[World, dict]:
    world = build_world("Victim Co")
    return world, register_objects(world)


def register_objects(world: World) -> dict:
    """One object of ``world``'s agency per URL kwarg: the registry of the walks over every route
    (this one, and the XSS gate in tests/xss/)."""
    invitation = Invitation.objects.create(agency=world.agency, email="secret-invitee@victim.example", role="chatter")
    token, _ = account_services.api_token_create(membership=world.owner, name="Victim integration")
    notification = notification_send(membership=world.owner, title="Victim payout ready")
    generation = Generation.objects.create(
        agency=world.agency, creator=world.creator, type="caption", status="done", text="Victim secret caption"
    )
    idea = ContentIdea.objects.create(
        agency=world.agency, creator=world.creator, title="Victim secret idea", category="photo", fingerprint="victim"
    )
    credential = ProviderCredential.objects.create(
        agency=world.agency,
        kind="openai",
        label="Victim OpenAI",
        api_key="sk-victim-secret-key-123456",
        model_names=["gpt-4o-mini"],
    )
    fan = Fan.objects.create(
        agency=world.agency,
        creator=world.creator,
        platform="onlyfans",
        platform_fan_id="victim-fan",
        username="victimfan",
        display_name="Victim Secret Fan",
    )
    conversation = Conversation.objects.create(
        agency=world.agency, creator=world.creator, fan=fan, needs_reply=True, waiting_since=world.creator.created_at
    )
    message = Message.objects.create(
        agency=world.agency,
        creator=world.creator,
        conversation=conversation,
        fan=fan,
        direction="in",
        source="fan",
        status="received",
        text="Victim secret fan message",
        created_at=world.creator.created_at,
    )
    FanNote.objects.create(agency=world.agency, fan=fan, text="Victim secret note")
    segment = Segment.objects.create(agency=world.agency, name="Victim secret segment", filters={"tiers": ["whale"]})
    template = MessageTemplate.objects.create(agency=world.agency, name="Victim secret template", text="Hi {fan.name}")
    draft = Draft.objects.create(
        agency=world.agency, creator=world.creator, conversation=conversation, text="Victim secret draft", score=50
    )
    fan_import = FanImport.objects.create(
        agency=world.agency, creator=world.creator, kind="fans", filename="victim-secret.csv", content="x"
    )
    campaign = Campaign.objects.create(
        agency=world.agency,
        creator=world.creator,
        name="Victim secret campaign",
        text="Victim secret campaign text",
        fan_ids=[fan.pk],
    )
    delivery = Delivery.objects.create(
        agency=world.agency,
        creator=world.creator,
        platform="onlyfans",
        recipient_id=fan.platform_fan_id,
        text="Victim secret campaign text",
        idempotency_key=campaign.delivery_key(fan.pk),
        source=DELIVERY_SOURCE,
        source_id=campaign.pk,
        status="dead",
    )
    Automation.objects.create(
        agency=world.agency, creator=world.creator, kind="welcome", enabled=False,
        steps=[{"delay_minutes": 5, "text": "Victim secret automation", "ppv_price": None, "media": []}],
    )  # fmt: skip
    budget = Budget.objects.create(agency=world.agency, monthly_usd=Decimal("10"), thresholds=[50])
    recommendation = Recommendation.objects.create(
        agency=world.agency, creator=world.creator, kind="price", headline="Victim secret recommendation",
        payload={"price": 15.0}, expected_value=3.0, confidence=0.8, run_date=world.creator.created_at.date(),
    )  # fmt: skip
    anomaly = Anomaly.objects.create(
        agency=world.agency, creator=world.creator, metric="revenue_tips", at=world.creator.created_at,
        value=400.0, expected_low=30.0, expected_high=60.0, score=0.95, severity="high",
    )  # fmt: skip
    Offer.objects.create(
        agency=world.agency, creator=world.creator, sent_at=world.creator.created_at, price=Decimal("15"),
        recipients=200, unlocks=20, revenue=Decimal("300"), external_id="victim-secret-offer",
    )  # fmt: skip
    # Operators' objects (staff pages): a member of any agency who is not staff gets 404.
    integration = IntegrationConnection.objects.create(
        agency=world.agency, creator=world.creator, platform="onlyfans", status="connected",
        api_account_id="victim-secret-api-account", api_key="victim-api-key", webhook_secret="whsec_victim",
    )  # fmt: skip
    scheduled_post = ScheduledPost.objects.create(
        agency=world.agency, creator=world.creator, connection=integration, platform="reddit", status="failed",
        title="Victim secret scheduled post", subreddit="victims", scheduled_at=world.creator.created_at,
    )  # fmt: skip
    crm = CRMConnection.objects.create(
        agency=world.agency, name="Victim secret CRM", target_url="https://victim-crm.example/hook",
        signing_secret="whsec_victim_crm", event_kinds=["fan.created"],
    )  # fmt: skip
    crm_delivery = CRMDelivery.objects.create(
        agency=world.agency, crm=crm, event_id=1, kind="fan.created", payload={}, status="dead",
        last_error="Victim secret CRM error",
    )  # fmt: skip
    slo = SLO.objects.create(name="Victim secret SLO", indicator="api_availability", objective=Decimal("99.9"))
    webhook = AlertWebhook.objects.create(agency=world.agency, url="https://victim.example/hook", secret="s" * 32)
    workflow_run = WorkflowRun.objects.create(
        agency=world.agency, workflow="month_end_cost_report", state="failed", input={"month": "2025-01"},
        error="Victim secret workflow error",
    )  # fmt: skip
    step_run = StepRun.objects.create(
        agency=world.agency, run=workflow_run, step="spend", state="failed", error="Victim secret workflow error"
    )
    failing_event = OutboxEvent.objects.create(
        kind="test.victim", agency_id=world.agency.pk, payload={}, last_error="Victim secret outbox error",
        claimed_until=world.creator.created_at,
    )  # fmt: skip
    return {
        "event_id": failing_event.pk,
        "budget_id": budget.pk,
        "recommendation_id": recommendation.pk,
        "connection_id": integration.pk,
        "connection_key": integration.public_id,
        "crm_id": crm.pk,
        "crm_delivery_id": crm_delivery.pk,
        "crm_key": crm.public_id,
        "scheduled_post_id": scheduled_post.pk,
        "anomaly_id": anomaly.pk,
        "run_id": workflow_run.pk,
        "step_run_id": step_run.pk,
        "slo_id": slo.pk,
        "webhook_id": webhook.pk,
        "kind": "welcome",
        "fan_id": fan.pk,
        "conversation_id": conversation.pk,
        "message_id": message.pk,
        "segment_id": segment.pk,
        "template_id": template.pk,
        "draft_id": draft.pk,
        "import_id": fan_import.pk,
        "campaign_id": campaign.pk,
        "delivery_id": delivery.pk,
        "creator_id": world.creator.pk,
        "membership_id": world.manager.pk,
        "invitation_id": invitation.pk,
        "token_id": token.pk,
        "notification_id": notification.pk,
        "credential_id": credential.pk,
        "generation_id": generation.pk,
        "idea_id": idea.pk,
        "index": 0,
        "token": "forged-token",
        "uidb64": urlsafe_base64_encode(force_bytes(world.manager.user.pk)),
        "session_id": _logged_in_session(world.manager).pk,
    }


KWARG_OBJECTS = {
    "creator_id", "membership_id", "invitation_id", "token_id", "notification_id", "credential_id",
    "generation_id", "idea_id", "index", "token", "uidb64", "session_id",
    "fan_id", "conversation_id", "message_id", "segment_id", "template_id", "draft_id", "import_id",
    "campaign_id", "delivery_id", "kind", "budget_id", "slo_id", "webhook_id",
    "recommendation_id", "anomaly_id", "run_id", "step_run_id", "connection_id", "connection_key",
    "scheduled_post_id", "crm_id", "crm_delivery_id", "crm_key", "event_id",
}  # fmt: skip
# Links whose secret is the capability (invitation and password-reset links): forged ones must
# neither leak nor change anything, but they may render a friendly "invalid link" page.
# A webhook URL's connection key: the HMAC signature is the credential, so a forged call answers 401.
CAPABILITY_KWARGS = {"token", "uidb64", "connection_key", "crm_key"}


def _markers(world: World) -> list[str]:
    return [
        world.agency.name,
        world.creator.display_name,
        world.other_creator.display_name,
        world.manager.user.email,
        world.chatter.user.email,
        "secret-invitee@victim.example",
        "Victim integration",
        "Victim payout ready",
        "Victim OpenAI",
        "sk-victim-secret-key-123456",
        "Victim secret caption",
        "Victim secret idea",
        "Victim Secret Fan",
        "victimfan",
        "Victim secret fan message",
        "Victim secret note",
        "Victim secret segment",
        "Victim secret template",
        "Victim secret draft",
        "victim-secret.csv",
        "Victim secret campaign",
        "Victim secret automation",
        "Victim secret recommendation",
        "victim-secret-offer",
        "victim-secret-api-account",
        "Victim secret workflow error",
        "Victim secret scheduled post",
        "Victim secret CRM",
    ]


def _logged_in_session(membership: Membership) -> UserSession:
    """A live session of the member, as the sessions page lists it (a user's, not an agency's)."""
    return UserSession.objects.get(session_key=login_client(membership).session.session_key)


def _snapshot(world: World) -> dict:
    return {
        "creators": list(
            Creator.objects.filter(agency=world.agency).values_list(
                "pk", "display_name", "is_archived", "ppv_price_min"
            )
        ),
        "members": list(Membership.objects.filter(agency=world.agency).values_list("pk", "role")),
        "invitations": list(
            Invitation.objects.filter(agency=world.agency).values_list("pk", "revoked_at", "accepted_at")
        ),
        "tokens": list(ApiToken.objects.filter(agency=world.agency).values_list("pk", "revoked_at")),
        "notifications": list(Notification.objects.filter(agency=world.agency).values_list("pk", "read_at")),
        "generations": list(Generation.objects.filter(agency=world.agency).values_list("pk", "saved", "status")),
        "ideas": list(ContentIdea.objects.filter(agency=world.agency).values_list("pk", "is_favourite", "used_at")),
        "credentials": list(
            ProviderCredential.objects.filter(agency=world.agency).values_list("pk", "label", "last_tested_at")
        ),
        "fans": list(Fan.objects.filter(agency=world.agency).values_list("pk", "display_name", "total_spent")),
        "conversations": list(
            Conversation.objects.filter(agency=world.agency).values_list(
                "pk", "needs_reply", "locked_by", "message_count"
            )
        ),
        "messages": list(Message.objects.filter(agency=world.agency).values_list("pk", "text", "status")),
        "notes": list(FanNote.objects.filter(agency=world.agency).values_list("pk", "text")),
        "segments": list(Segment.objects.filter(agency=world.agency).values_list("pk", "name", "filters")),
        "templates": list(MessageTemplate.objects.filter(agency=world.agency).values_list("pk", "name", "text")),
        "drafts": list(Draft.objects.filter(agency=world.agency).values_list("pk", "status", "text")),
        "imports": list(FanImport.objects.filter(agency=world.agency).values_list("pk", "status")),
        "campaigns": list(Campaign.objects.filter(agency=world.agency).values_list("pk", "name", "text", "status")),
        "deliveries": list(Delivery.objects.filter(agency=world.agency).values_list("pk", "status", "attempts")),
        "automations": list(Automation.objects.filter(agency=world.agency).values_list("pk", "enabled", "steps")),
        "budgets": list(
            Budget.objects.filter(agency=world.agency).values_list(
                "pk", "creator_id", "monthly_usd", "thresholds", "hard_stop"
            )
        ),
        "sessions": list(UserSession.objects.filter(user__memberships__agency=world.agency).values_list("pk")),
        "recommendations": list(
            Recommendation.objects.filter(agency=world.agency).values_list("pk", "status", "decided_at")
        ),
        "anomalies": list(Anomaly.objects.filter(agency=world.agency).values_list("pk", "status")),
        "workflow_runs": list(WorkflowRun.objects.filter(agency=world.agency).values_list("pk", "state")),
        "step_runs": list(StepRun.objects.filter(agency=world.agency).values_list("pk", "state", "attempts")),
        "offers": list(Offer.objects.filter(agency=world.agency).values_list("pk", "price", "unlocks")),
        "integration_connections": list(
            IntegrationConnection.objects.filter(agency=world.agency).values_list("pk", "status", "api_account_id")
        ),
        "scheduled_posts": list(ScheduledPost.objects.filter(agency=world.agency).values_list("pk", "status")),
        "crms": list(
            CRMConnection.objects.filter(agency=world.agency).values_list("pk", "name", "signing_secret", "active")
        ),
        "crm_deliveries": list(CRMDelivery.objects.filter(agency=world.agency).values_list("pk", "status", "attempts")),
    }


def test_every_route_hides_other_tenants_objects(victim):
    victim_world, objects = victim
    attacker = build_world("Attacker Ltd")
    client = login_client(attacker.owner)  # the most powerful role: a 403 cannot hide a leak
    before = _snapshot(victim_world)
    markers = _markers(victim_world)
    object_routes = 0
    for route, name in all_routes():
        kwargs = [m.group("name") for m in PARAM.finditer(route)]
        unknown = set(kwargs) - KWARG_OBJECTS
        assert not unknown, f"{name} ({route}) has URL kwargs {unknown}: register them in KWARG_OBJECTS"
        url = "/" + PARAM.sub(lambda m: str(objects[m.group("name")]), route)
        if kwargs and set(kwargs) <= CAPABILITY_KWARGS:
            for method in ("get", "post"):
                response = getattr(client, method)(url)
                assert response.status_code < 500, f"{method.upper()} {url} ({name}) -> {response.status_code}"
                leaked = [marker for marker in markers if marker in response.content.decode(errors="replace")]
                assert not leaked, f"{method.upper()} {url} ({name}) leaked {leaked}"
        elif kwargs:
            object_routes += 1
            for method in METHODS:
                response = getattr(client, method)(
                    url, content_type="application/json", data=UNIVERSAL_BODY if method != "get" else None
                )
                assert response.status_code in (403, 404, 405), (
                    f"{method.upper()} {url} ({name}) -> {response.status_code}"
                )
                body = response.content.decode(errors="replace")
                leaked = [marker for marker in markers if marker in body]
                assert not leaked, f"{method.upper()} {url} ({name}) leaked {leaked}"
        else:
            response = client.get(url)
            assert response.status_code < 500, f"GET {url} ({name}) -> {response.status_code}"
            raw = b"".join(response.streaming_content) if response.streaming else response.content  # CSV exports
            body = raw.decode(errors="replace")
            leaked = [marker for marker in markers if marker in body]
            assert not leaked, f"GET {url} ({name}) leaked {leaked}"
    assert object_routes >= 15
    assert _snapshot(victim_world) == before, "another tenant's data changed"


def test_api_token_of_one_agency_cannot_reach_another(victim):
    victim_world, _objects = victim
    attacker = build_world("Attacker Ltd")
    _, secret = account_services.api_token_create(membership=attacker.owner, name="attacker")
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(f"/api/v1/creators/{victim_world.creator.pk}").status_code == 404
    listing = client.get("/api/v1/creators").json()
    assert {item["display_name"] for item in listing["items"]} == {"Attacker Ltd Star", "Attacker Ltd Nova"}
    assert client.delete(f"/api/v1/members/{victim_world.manager.pk}").status_code == 404
    assert Membership.objects.filter(pk=victim_world.manager.pk).exists()


def test_chatter_cannot_reach_unassigned_creator(world, client_for):
    client = client_for(world.chatter)
    assert client.get(f"/settings/creators/{world.other_creator.pk}/").status_code == 404
    assert client.get(f"/api/v1/creators/{world.other_creator.pk}").status_code == 404
    assert client.get(f"/settings/creators/{world.creator.pk}/").status_code == 200
    listing = client.get("/api/v1/creators").json()
    assert [item["id"] for item in listing["items"]] == [world.creator.pk]


# --- Websockets ------------------------------------------------------------------------------
# Every websocket route, opened by another agency's owner whose session names the victim's
# agency, and sent messages carrying the victim's ids: the socket is refused with 4403, or it
# carries on for the attacker's own agency and never sends a frame with the victim's data. A new
# route fails the walk until it is registered in WS_PROBES with the messages to try.

WS_PROBES = {
    "ws-notifications": lambda ids: [{"action": "read", "notification_id": ids["notification_id"]}],
    "ws-studio": lambda ids: [
        {"action": "generate", "type": "caption", "creator_id": ids["creator_id"]},
        {"action": "generate", "type": "idea", "creator_id": str(ids["creator_id"])},
        {"action": "cancel"},
    ],
    "ws-inbox": lambda ids: [
        {"action": "watch", "conversation_id": ids["conversation_id"]},
        {"action": "lock", "conversation_id": ids["conversation_id"]},
        {"action": "drafts", "conversation_id": ids["conversation_id"], "kind": "reply"},
        {"action": "unlock", "conversation_id": ids["conversation_id"]},
    ],
    # The path names the victim's campaign (its <int:campaign_id> is filled from ids); clients only listen.
    "ws-campaign-progress": lambda ids: [{"action": "watch", "campaign_id": ids["campaign_id"]}],
    # The path names the victim's workflow run; clients only listen.
    "ws-workflow-run": lambda ids: [{"action": "watch", "run_id": ids["run_id"]}],
}


def _websocket_routes() -> list[tuple[str, str]]:
    from huntaze.routing import websocket_urlpatterns

    return [(str(pattern.pattern), pattern.name) for pattern in websocket_urlpatterns]


async def _open(path: str, membership: Membership | None, session_agency: int | None = None):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from apps.accounts.middleware import SESSION_AGENCY
    from huntaze.asgi import application

    headers = [(b"origin", b"http://127.0.0.1:8000")]
    if membership is not None:

        def _cookie() -> bytes:
            client = login_client(membership)
            if session_agency is not None:
                session = client.session
                session[SESSION_AGENCY] = session_agency
                session.save()
            return f"sessionid={client.cookies['sessionid'].value}".encode()

        headers.append((b"cookie", await sync_to_async(_cookie)()))
    communicator = WebsocketCommunicator(application, "/" + path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


async def _frames(communicator) -> list[str]:
    """Everything the socket sends until it goes quiet or closes."""
    frames = []
    while not await communicator.receive_nothing(timeout=0.5):
        output = await communicator.receive_output(timeout=1)
        if output["type"] == "websocket.close":
            break
        frames.append(output.get("text") or "")
    return frames


@pytest.mark.django_db(transaction=True)
async def test_every_websocket_hides_other_tenants_data():
    import json

    from asgiref.sync import sync_to_async

    def _worlds():
        victim = build_world("Victim Co")
        attacker = build_world("Attacker Ltd")
        generation = Generation.objects.create(
            agency=victim.agency, creator=victim.creator, type="caption", status="done", text="Victim secret caption"
        )
        notification = notification_send(membership=victim.owner, title="Victim payout ready")
        fan = Fan.objects.create(
            agency=victim.agency, creator=victim.creator, platform="onlyfans", platform_fan_id="victim-fan",
            username="victimfan", display_name="Victim Secret Fan",
        )  # fmt: skip
        conversation = Conversation.objects.create(agency=victim.agency, creator=victim.creator, fan=fan)
        campaign = Campaign.objects.create(
            agency=victim.agency, creator=victim.creator, name="Victim secret campaign", fan_ids=[fan.pk],
            text="Victim secret campaign text", status="sending",
        )  # fmt: skip
        ids = {
            "creator_id": victim.creator.pk,
            "notification_id": notification.pk,
            "generation_id": generation.pk,
            "conversation_id": conversation.pk,
            "campaign_id": campaign.pk,
            "run_id": WorkflowRun.objects.create(
                agency=victim.agency,
                workflow="month_end_cost_report",
                state="running",
                input={},
                error="Victim secret workflow error",
            ).pk,
        }
        return victim, attacker, ids

    victim, attacker, ids = await sync_to_async(_worlds)()
    markers = await sync_to_async(_markers)(victim)
    routes = _websocket_routes()
    assert routes, "no websocket routes found"
    for route, name in routes:
        assert name in WS_PROBES, f"websocket {name} ({route}) is not in the walk: register it in WS_PROBES"
        path = re.sub(r"<int:(\w+)>", lambda match: str(ids[match.group(1)]), route)
        communicator, connected, code = await _open(path, None)
        assert not connected and code == 4403, f"{name} accepted an anonymous socket"
        communicator, connected, code = await _open(path, attacker.owner, session_agency=victim.agency.pk)
        if not connected:
            assert code == 4403, f"{name} refused with {code}, not 4403"
            continue
        for message in WS_PROBES[name](ids):
            await communicator.send_to(text_data=json.dumps(message))
        await sync_to_async(notification_send)(membership=victim.owner, title="Victim payout ready again")
        body = "".join(await _frames(communicator))
        leaked = [marker for marker in [*markers, "Victim payout ready again"] if marker in body]
        assert not leaked, f"websocket {name} leaked {leaked}"
        await communicator.disconnect()
    assert await Generation.objects.filter(agency=victim.agency).acount() == 1, "a generation ran for the victim"
    assert not await Conversation.objects.filter(agency=victim.agency, locked_by__isnull=False).aexists()
