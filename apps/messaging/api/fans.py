"""fans API."""

from ninja import Router

router = Router(tags=["fans"])
