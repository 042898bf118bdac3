"""Read an answer whose bytes are not all UTF-8, and remember which texts lost bytes.

A bad byte must cost only the value it is in, and only such values may be flagged: a U+FFFD
the user really typed (valid UTF-8, EF BF BD) is text like any other. So the body is decoded
with each bad byte kept as a lone surrogate (U+DC80..U+DCFF, Python's "surrogateescape"),
parsed, and then every string (value or key) holding one gets U+FFFD in its place and becomes
a ReplacedText: a str that says it was read with replacements (poller.poll.undecodable flags those).

Only an answer that failed strict decoding comes here. In it, a lone surrogate the portal
escaped in JSON ("\\udcff") cannot be told from a bad byte: it is no valid text either.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
ESCAPED_BYTES = re.compile("[\udc80-\udcff]")
REPLACEMENTS = re.compile(REPLACEMENT)  # where bad bytes could not be escaped, only U+FFFD tells


class ReplacedText(str):
    """Text in which bytes that were not UTF-8 were replaced by U+FFFD (one per byte)."""

    __slots__ = ()


def escaped_text(raw: bytes, encoding: str) -> str | None:
    """`raw` decoded with its bad bytes as lone surrogates; None when the codec cannot escape them
    (a UTF-16 or UTF-32 body: the caller replaces them and cannot say where)."""
    try:
        return raw.decode(encoding, errors="surrogateescape")
    except UnicodeDecodeError:
        return None


def loads_marked(text: str) -> Any:
    """json.loads of escaped_text's output: the escaped bytes become U+FFFD in ReplacedText."""
    return mark_replacements(json.loads(text))


def mark_replacements(tree: Any, replaced: re.Pattern[str] = ESCAPED_BYTES) -> Any:
    """`tree` (parsed JSON) with every string in which `replaced` matches made a ReplacedText,
    with U+FFFD for each match.

    Iterative, so a deeply nested answer the parser accepted cannot overflow the stack here.
    """

    def _marked(value: Any) -> Any:
        if isinstance(value, str) and replaced.search(value):
            return ReplacedText(replaced.sub(REPLACEMENT, value))
        return value

    tree = _marked(tree)
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            items = [(_marked(key), _marked(value)) for key, value in node.items()]
            node.clear()
            node.update(items)
            stack.extend(value for _, value in items if isinstance(value, dict | list))
        elif isinstance(node, list):
            node[:] = [_marked(item) for item in node]
            stack.extend(item for item in node if isinstance(item, dict | list))
    return tree
