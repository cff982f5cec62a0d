"""JSON values the database can store: what PostgreSQL's ``jsonb`` accepts, checked before a write.

Python's ``json`` reads ``NaN`` and ``Infinity``, and a string holding one half of a surrogate
pair (``"\\ud800"``) or a NUL (``"\\u0000"``). ``jsonb`` refuses all of them, so a value free-form
JSON carried in (an API body's object, a workflow's input) answered 500 on PostgreSQL while SQLite
stored it. ``storable_json`` says which part is wrong, before anything is written; it does not
bound the size or depth of a value (its caller does, where it matters) and knows no schema.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_KEY_SHOWN = 40  # characters of a key quoted in an error


class UnstorableJSON(ValueError):
    """A value the database would refuse as JSON; the message names the part."""


def text_problem(text: str) -> str | None:
    """Why PostgreSQL cannot store ``text`` (as the end of a sentence), or None when it can."""
    if "\x00" in text:
        return "cannot contain NUL (0x00) characters"
    if _SURROGATE.search(text):
        # JSON text decoded by Python: a pair became one character, so what is left is half of one.
        return "cannot contain an unpaired surrogate (\\ud800 to \\udfff: half of a character)"
    return None


def storable_json(value: Any, what: str = "The value") -> Any:
    """``value`` as the database stores and reads it back (tuples become lists, keys strings), or
    ``UnstorableJSON`` naming ``what`` and the part of it that is not JSON or that jsonb refuses:
    a number that is not finite, a string or key with NUL or an unpaired surrogate."""
    try:
        decoded = json.loads(json.dumps(value))
    except (TypeError, ValueError) as error:  # a date, a set, a cycle, an int of 4,300+ digits
        raise UnstorableJSON(f"{what} is not JSON-serialisable: {error}") from None
    found = _first_refused(decoded)
    if found is not None:
        where, problem = found
        raise UnstorableJSON(f"{what}: {where} {problem}." if where else f"{what} {problem}.")
    return decoded


def _first_refused(value: Any) -> tuple[str, str] | None:
    """(where, problem) of the first part jsonb refuses, in document order; walked with a stack,
    as a value may nest as deep as the JSON parser allowed."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return _quoted(path), "must be a finite number (JSON has no NaN or Infinity)"
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return _quoted(path), problem
        elif isinstance(item, dict):
            children = []
            for key, child in item.items():
                problem = text_problem(key)
                if problem:
                    return f"the key “{_shown(key)}”" + (f" in “{path}”" if path else ""), problem
                children.append((f"{path}.{_shown(key)}" if path else _shown(key), child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(f"{path}[{index}]", child) for index, child in enumerate(item)]))
    return None


def _shown(key: str) -> str:
    """A key as an error can quote it: shortened, its NUL and surrogates written as escapes."""
    return key[:MAX_KEY_SHOWN].encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")


def _quoted(path: str) -> str:
    return f"“{path}”" if path else ""
