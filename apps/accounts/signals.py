"""Events of accounts that apps of higher layers act on without accounts importing them.

``member_joined``: a user accepted an invitation and has a new membership. Sent inside the
accepting transaction with ``membership`` (the new one) and ``inviter`` (the inviting member's
membership in that agency, or None when they have left it). apps/notifications tells the inviter.
"""

from django.dispatch import Signal

member_joined = Signal()
