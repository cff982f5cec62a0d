"""Helpers shared by the messaging API tests: token clients and a waiting conversation."""

from __future__ import annotations

from django.test import Client

from apps.accounts import services as account_services
from apps.messaging import services
from apps.messaging.models import Conversation
from tests.messaging.factories import FanFactory


def token_client(membership, scope: str | None = None) -> Client:
    _, secret = account_services.api_token_create(membership=membership, name=f"api test {scope}", scope=scope)
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def waiting_conversation(creator, text: str = "are you online?", **fan_fields) -> Conversation:
    fan = FanFactory(creator=creator, **fan_fields)
    services.message_receive(fan=fan, text=text)
    return Conversation.objects.select_related("fan", "creator").get(fan=fan)


def error(response) -> dict:
    return response.json()["error"]
