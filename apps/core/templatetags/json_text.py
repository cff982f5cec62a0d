"""``{% load json_text %}``: JSON values shown to people as JSON, not as Python's repr."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder

register = template.Library()


@register.filter
def json_pretty(value: Any) -> str:
    """``value`` as indented JSON (``null``, ``true``, double quotes), non-ASCII text kept as it
    is, dates and decimals as the data export writes them. A plain string, so autoescaping still
    applies where it is rendered."""
    return json.dumps(value, cls=DjangoJSONEncoder, indent=2, ensure_ascii=False)
