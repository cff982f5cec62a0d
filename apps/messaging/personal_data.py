"""The messaging part of a user's data export (apps/accounts/data_export.py discovers this
module): what messaging records the user as the author of, in every agency they belong to —
the messages they sent to fans, their notes about fans, the AI drafts they asked for, and the
templates, segments and imports they created.

Fans are named by their display name (else username) and platform, which is how the user saw
them; the fans' own data (their messages, purchases, profiles) belongs to the agency and is not
part of a member's personal export. Rows are read with ``iterator`` so that a chatter with many
messages does not hold them all in memory at once.
"""

from __future__ import annotations

from typing import Any

from apps.accounts.models import Membership
from apps.messaging.models import Direction, Draft, FanImport, FanNote, Message, MessageTemplate, Segment

CHUNK = 500


def _fan(fan) -> str:
    return fan.display_name or fan.username


def export_for_user(user) -> dict[str, Any]:
    # Only agencies the user still belongs to: a removed member's rows stay the agency's.
    mine = Membership.objects.filter(user=user).values("agency_id")
    messages = (
        Message.objects.filter(sent_by=user, direction=Direction.OUTBOUND, agency_id__in=mine)
        .select_related("agency", "creator", "fan")
        .order_by("created_at", "id")
    )
    notes = FanNote.objects.filter(author=user, agency_id__in=mine).select_related("agency", "fan")
    notes = notes.order_by("created_at", "id")
    drafts = Draft.objects.filter(requested_by=user, agency_id__in=mine).select_related("agency", "creator")
    drafts = drafts.order_by("created_at", "id")
    templates = MessageTemplate.objects.filter(created_by=user, agency_id__in=mine).select_related("agency")
    templates = templates.order_by("created_at", "id")
    segments = Segment.objects.filter(created_by=user, agency_id__in=mine).select_related("agency")
    segments = segments.order_by("created_at", "id")
    imports = FanImport.objects.filter(created_by=user, agency_id__in=mine).select_related("agency", "creator")
    imports = imports.order_by("created_at", "id")
    return {
        "messages_sent": [
            {
                "agency": m.agency.name,
                "creator": m.creator.display_name,
                "fan": _fan(m.fan),
                "platform": m.fan.platform,
                "text": m.text,
                "source": m.source,
                "ppv_price": m.ppv_price,
                "media_count": m.media_count,
                "status": m.status,
                "created_at": m.created_at,
                "sent_at": m.sent_at,
            }
            for m in messages.iterator(chunk_size=CHUNK)
        ],
        "fan_notes": [
            {"agency": n.agency.name, "fan": _fan(n.fan), "text": n.text, "created_at": n.created_at}
            for n in notes.iterator(chunk_size=CHUNK)
        ],
        "drafts_requested": [
            {
                "agency": d.agency.name,
                "creator": d.creator.display_name,
                "kind": d.kind,
                "text": d.text,
                "status": d.status,
                "created_at": d.created_at,
            }
            for d in drafts.iterator(chunk_size=CHUNK)
        ],
        "message_templates": [
            {"agency": t.agency.name, "name": t.name, "text": t.text, "created_at": t.created_at}
            for t in templates.iterator(chunk_size=CHUNK)
        ],
        "segments": [
            {"agency": s.agency.name, "name": s.name, "filters": s.filters, "created_at": s.created_at}
            for s in segments.iterator(chunk_size=CHUNK)
        ],
        "fan_imports": [
            {
                "agency": i.agency.name,
                "creator": i.creator.display_name,
                "kind": i.kind,
                "filename": i.filename,
                "status": i.status,
                "created_at": i.created_at,
            }
            for i in imports.iterator(chunk_size=CHUNK)
        ],
    }
