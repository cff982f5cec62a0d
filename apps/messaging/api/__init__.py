"""REST API of the fan CRM and inbox (mounted at /api/v1/ by huntaze/api.py); docs/api-messaging.md."""

from ninja import Router

from apps.messaging.api import drafts, fans, inbox, library

router = Router()
router.add_router("", fans.router)
router.add_router("", inbox.router)
router.add_router("", library.router)
router.add_router("", drafts.router)
