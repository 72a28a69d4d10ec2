"""Splitting one rerank call into requests that stay under a service's token budget and document cap.

Without the service's tokenizer, tokens are estimated from the text, on the high side for Qwen's BPE: every digit
is a token (Qwen splits numbers into digits), every ASCII symbol is a token, letters cost one token per three,
a newline one, a CJK or other BMP character one, anything beyond the BMP (emoji) two, plus one per text. On the
LoCoMo dialogue turns this counts 1.6 times the real Qwen tokens, and never fewer on any turn.

Example:
    >>> costs = [estimate_tokens(text) for text in ["a" * 300, "b" * 300, "c" * 30]]
    >>> costs
    [101, 101, 11]
    >>> plan_chunks(costs, max_tokens=150, max_documents=10)
    [[0], [1, 2]]
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

_PIECES = re.compile(r"[A-Za-z]{1,3}|[0-9]|[^\S\n]+|\n|[\x21-\x7e]|.", re.DOTALL)


def _costs(text: str) -> Iterator[tuple[int, int]]:
    """Yield ``(end offset, estimated tokens)`` for each small piece of ``text``, in order."""
    for match in _PIECES.finditer(text):
        piece = match.group()
        first = piece[0]
        if first.isspace() and first != "\n":
            cost = (len(piece) - 1) // 4  # one space joins the next word; long runs cost a token per four
        else:
            cost = 2 if ord(first) > 0xFFFF else 1
        yield match.end(), cost


def estimate_tokens(text: str) -> int:
    """A conservative token estimate for ``text``: the pieces' costs plus one (short texts split unevenly)."""
    return 1 + sum(cost for _end, cost in _costs(text))


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest head of ``text`` whose estimate is at most ``max_tokens`` (the tail is cut)."""
    total = 1
    kept = 0
    for end, cost in _costs(text):
        if total + cost > max_tokens:
            break
        total += cost
        kept = end
    return text[:kept]


def plan_chunks(costs: Sequence[int], max_tokens: int, max_documents: int) -> list[list[int]]:
    """Group document positions, in order, into chunks of at most ``max_documents`` whose costs sum to at most
    ``max_tokens``. A document costing more than ``max_tokens`` on its own gets a chunk of its own (the caller
    truncates or refuses it first)."""
    chunks: list[list[int]] = []
    current: list[int] = []
    used = 0
    for position, cost in enumerate(costs):
        if current and (used + cost > max_tokens or len(current) >= max_documents):
            chunks.append(current)
            current, used = [], 0
        current.append(position)
        used += cost
    if current:
        chunks.append(current)
    return chunks
