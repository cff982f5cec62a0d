"""REST API of the fan CRM and inbox (mounted at /api/v1/ by huntaze/api.py)."""

from ninja import Router

from apps.messaging.api import drafts, fans

router = Router()
router.add_router("", fans.router)
router.add_router("", drafts.router)
