"""The AI fixtures of the XSS gate: ``builtin`` (the offline writer only) is tests/conftest.py's,
and ``remote`` (the loopback OpenAI fake, whose reply the gate fills with payloads) the studio's
(tests/studio/conftest.py: the gateway's own rate limits)."""

from tests.studio.conftest import remote  # noqa: F401 (a fixture)
