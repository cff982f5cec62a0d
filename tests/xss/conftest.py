"""The studio's AI fixtures (tests/studio/conftest.py), shared with the XSS gate: ``builtin`` (the
offline writer only) and ``remote`` (the loopback OpenAI fake, whose reply the gate fills with
payloads)."""

from tests.studio.conftest import builtin, remote  # noqa: F401
