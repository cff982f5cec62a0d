"""``{% load json_text %}``: JSON values shown to people as JSON, not as Python's repr."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def json_pretty(value: Any) -> str:
    """``value`` as indented JSON (``null``, ``true``, double quotes), non-ASCII text kept as it
    is. A plain string, so autoescaping still applies where it is rendered."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
