"""The built-in offline provider: deterministic, persona-aware text with no API key and no I/O.

Every AI feature must work on a fresh machine, so this provider writes short chat replies,
outbound messages, captions, hashtags and content ideas from small per-language phrase banks and
the creator's own data in ``request.context``. It is pure Python and takes tens of microseconds.

Rules another developer can rely on:

- Output is a pure function of ``feature``, ``json_mode``, the messages and the recognised
  context keys (see ``text._SEED_KEYS``); ``system``, ``temperature`` and unknown context keys do not
  change it. The RNG is seeded from blake2b, never ``hash()``, so it is stable across processes.
- Context (all optional, wrong types are ignored): ``creator`` {display_name, niche, persona,
  voice, sample_texts, avoid_words, avoid_topics, language}; top-level ``fan`` {display_name,
  notes, total_spent}, ``platform``, ``tone``, ``task``, ``count``, ``json_example``. Any of the
  creator keys may also be given top-level (top-level wins; avoid lists are merged). For inbox
  drafts: ``reply_to`` (the fan's message being answered, read like a user message: untrusted,
  it only picks the reply category and the echoed noun) and ``angle`` (question, tease,
  appreciation for replies; curiosity, personal, loyalty for ``task`` ppv) so the three drafts of
  one request differ.
- Words from ``avoid_words`` (whole word, case-insensitive) and phrases from ``avoid_topics`` are
  removed from every generated string, and hashtags containing them are never produced.
- Message content is untrusted: it only picks a reply category and, in English, echoes at most
  one short noun ("my dog" -> "your dog"); it never changes the task or the output format.
- ``builtin_generate`` never raises: an unexpected bug is logged and a minimal safe text (still
  valid JSON in JSON mode) is returned instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping

from apps.ai.providers.base import Provider
from apps.ai.providers.builtin.composer import _Composer
from apps.ai.providers.builtin.phrases import PHRASE_BANKS
from apps.ai.providers.builtin.text import _DELTA_RE, BUILTIN_MODEL, _messages, estimate_tokens
from apps.ai.types import AIRequest, ProviderResult, Usage

__all__ = ["BUILTIN_MODEL", "PHRASE_BANKS", "BuiltinProvider", "builtin_generate", "estimate_tokens"]

logger = logging.getLogger(__name__)


def builtin_generate(request: AIRequest) -> str:
    """The deterministic text for ``request`` (valid JSON text when ``request.json_mode``)."""
    try:
        composer = _Composer(request)
        ctx = request.context if isinstance(request.context, Mapping) else {}
        return composer.generate(bool(request.json_mode), ctx.get("json_example"))
    except Exception:  # a bug must never break the last-resort provider
        logger.exception("builtin provider failed for feature %r; returning the safe fallback", request.feature)
        return _emergency_text(request)


def _emergency_text(request: AIRequest) -> str:
    text = "Thank you for your message, talk soon."
    try:
        ctx = request.context if isinstance(request.context, Mapping) else {}
        if not request.json_mode:
            return text
        example = ctx.get("json_example")
        if isinstance(example, Mapping):
            defaults = {bool: False, int: 0, float: 0.0, str: text}
            value = {
                str(k): defaults.get(type(v), [] if isinstance(v, list | tuple) else None) for k, v in example.items()
            }
            return json.dumps(value, ensure_ascii=False)
    except Exception:
        logger.exception("builtin provider fallback failed")
    return json.dumps({"text": text}) if request.json_mode else text


def _input_tokens(request: AIRequest) -> int:
    contents = [content for _role, content in _messages(request)]
    return estimate_tokens((request.system or "") + "".join(contents))


def _deltas(text: str) -> list[str]:
    """Word-sized pieces (trailing whitespace attached) whose concatenation is exactly ``text``."""
    pieces = _DELTA_RE.findall(text)
    return pieces if "".join(pieces) == text else [text]


class BuiltinProvider(Provider):
    """Offline, deterministic provider; always available, never raises on valid input."""

    name = "builtin"
    kind = "builtin"
    models = (BUILTIN_MODEL,)

    def __init__(self, name: str | None = None) -> None:
        if name:
            self.name = name

    def _result(self, request: AIRequest, text: str, model: str) -> ProviderResult:
        usage = Usage(input_tokens=_input_tokens(request), output_tokens=estimate_tokens(text), cached_input_tokens=0)
        return ProviderResult(text=text, model=model or BUILTIN_MODEL, usage=usage, finish_reason="stop")

    async def complete(self, request: AIRequest, model: str, timeout: float) -> ProviderResult:
        return self._result(request, builtin_generate(request), model)

    async def stream(self, request: AIRequest, model: str, timeout: float) -> AsyncIterator[str | ProviderResult]:
        text = builtin_generate(request)
        for index, piece in enumerate(_deltas(text)):
            yield piece
            if index % 16 == 15:
                await asyncio.sleep(0)  # let other tasks (and cancellation) in on long outputs
        yield self._result(request, text, model)
