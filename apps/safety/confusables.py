"""Look-alike letters mapped to ASCII, built at import from Unicode data (no hand-picked list).

Two sources, both maintained outside this project:

* the Unicode confusables data (``confusables.json`` from the ``confusable-homoglyphs`` package,
  Unicode's confusables.txt): characters that look alike are linked; every non-ASCII character
  is mapped to the nearest ASCII letter or digit in that graph (Cyrillic a, Greek o,
  mathematical bold t, Cherokee letters …);
* the Unicode character names (``unicodedata``): a Latin letter variant whose name ends in its
  base letter (``LATIN LETTER SMALL CAPITAL T``, ``LATIN SMALL LETTER DOTLESS I``) is mapped to it.

The result is one ``str.translate`` table, applied after NFKD and case folding. It does not
touch ASCII, and it maps to lower-case letters (the policy compares case-folded text).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import deque
from importlib import resources

_ASCII_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_LATIN_NAME = re.compile(r"^LATIN (?:CAPITAL |SMALL )?LETTER (?:[A-Z]+ )*?([A-Z])(?: WITH [A-Z ]+)?$")
# The blocks that hold Latin letter variants (IPA, phonetic extensions, Latin Extended-C to -E …).
_LATIN_BLOCKS = (
    (0x80, 0x2C0),
    (0x1D00, 0x1EFF),
    (0x2C60, 0x2C7F),
    (0xA720, 0xA7FF),
    (0xAB30, 0xAB6F),
    (0x1DF00, 0x1DFFF),
)


def _from_confusables() -> dict[int, str]:
    data = json.loads((resources.files("confusable_homoglyphs") / "confusables.json").read_text(encoding="utf-8"))
    graph: dict[str, set[str]] = {}
    for char, homoglyphs in data.items():
        for homoglyph in homoglyphs:
            other = homoglyph["c"].replace("\u200e", "")  # the data marks right-to-left characters
            if len(char) == 1 and len(other) == 1:
                graph.setdefault(char, set()).add(other)
                graph.setdefault(other, set()).add(char)
    # Breadth-first from every ASCII letter and digit at once: each character gets the nearest one.
    nearest: dict[str, str] = {c: c for c in _ASCII_ALNUM if c in graph}
    queue = deque(sorted(nearest, key=lambda c: (not c.islower(), c)))  # lower-case letters win ties
    while queue:
        char = queue.popleft()
        for other in sorted(graph.get(char, ())):
            if other not in nearest:
                nearest[other] = nearest[char]
                queue.append(other)
    return {ord(c): target.lower() for c, target in nearest.items() if not c.isascii()}


def _from_names() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in (c for low, high in _LATIN_BLOCKS for c in range(low, high + 1)):
        name = unicodedata.name(chr(code), "")
        if name.startswith("LATIN"):
            m = _LATIN_NAME.match(name)
            if m:
                table[code] = m.group(1).lower()
    return table


def _build() -> dict[int, str]:
    table = _from_confusables()
    table.update(_from_names())  # a Latin letter's own name is the better guide
    # Letters that NFKD already turns into ASCII (accents, full-width) and digits keep their
    # meaning; combining marks are dropped by the caller.
    for code in list(table):
        if unicodedata.combining(chr(code)):
            del table[code]
    return table


LOOKALIKES: dict[int, str] = _build()
