"""drafts API."""

from ninja import Router

router = Router(tags=["drafts"])
