"""Phrase banks of the built-in writer, one module per language.

Placeholders: {name} (fan), {pet} (term of endearment), {niche}, {topic}.
"react" and "pet" are keyed by tone with a "default"; "answer" by the fan message's kind.
Each list that uses {niche} also holds entries without it (used when the niche is unknown).
Missing keys fall back to English. Read-only: treat PHRASE_BANKS as a constant.
"""

from __future__ import annotations

from typing import Any

from apps.ai.providers.builtin.phrases import de, en, es, fr, it, ja, nl, pl, pt

PHRASE_BANKS: dict[str, dict[str, Any]] = {
    "en": en.BANK,
    "es": es.BANK,
    "fr": fr.BANK,
    "de": de.BANK,
    "it": it.BANK,
    "pt": pt.BANK,
    "nl": nl.BANK,
    "pl": pl.BANK,
    "ja": ja.BANK,
}
