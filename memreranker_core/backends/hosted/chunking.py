"""Splitting one rerank call into requests that stay under a service's token budget and document cap.

Tokens are counted by a ``TokenCounter``: the service model's own tokenizer when the ``tokenizer`` option names it
(``TokenizerCounter``, exact), otherwise a bound that never counts fewer tokens than the real tokenizer
(``estimate_tokens``). The bound is the text's UTF-8 length after canonical *and* compatibility decomposition
(per character the larger of the NFD and NFKD byte lengths), plus one. Why that is never below Qwen's count:

1. Qwen's tokenizer (byte-level BPE, like every GPT-style tokenizer) normalizes with NFC, splits the result into
   pre-tokens that partition its bytes, and turns each pre-token into at most as many tokens as it has bytes (BPE
   starts from one symbol per byte and only merges). So ``tokens <= bytes(NFC(text))``.
2. ``NFD(NFC(text)) == NFD(text)``, and no code point that NFC can output (``NFC(x) == x``) is longer in UTF-8
   than its own decomposition (checked over all of Unicode by ``tests/unit/test_hosted_chunking.py``), so
   ``bytes(NFC(text)) <= bytes(NFD(text))``, the sum of the characters' NFD lengths.
3. The ``+ 1`` covers the space the prompt puts before a document (``"<Document>: "``), which joins or precedes
   its first word, so the bound holds for the document as the service tokenizes it in context (and for
   SentencePiece tokenizers, which add a word-start piece). The NFKD term covers tokenizers that normalize with
   NFKC (a ligature such as ``ﬁ`` becomes ``fi``).

The bound is loose for English (about four times the real count: one token per byte, where Qwen averages four
or five bytes per token) and tight for digits (``"1 2 3 4 5 6 7 8 9 0"``: 20, the real count is 19); a tighter
rate per letter cannot be promised, since random letters cost up to one token each. Pass ``tokenizer=`` for exact
counts, or use the vLLM exact mode, which needs no estimate at all.

Example:
    >>> costs = [estimate_tokens(text) for text in ["a" * 300, "b" * 300, "c" * 30]]
    >>> costs
    [301, 301, 31]
    >>> plan_chunks(costs, max_tokens=400, max_documents=10)
    [[0], [1, 2]]
    >>> estimate_tokens("1 2 3 4 5 6 7 8 9 0")
    20
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any, Protocol


class TokenCounter(Protocol):
    """Counts a document's tokens for the request budget and cuts a document to a number of tokens.

    Example:
        >>> counter: TokenCounter = EstimateCounter()
        >>> counter.count("1 2 3"), counter.truncate("1 2 3", 4)
        (6, '1 2')
    """

    def count(self, text: str) -> int:
        """Tokens of ``text`` as one document of a request; never fewer than the service will count."""
        ...

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest head of ``text`` that ``count`` puts at ``max_tokens`` or fewer (the tail is cut)."""
        ...

    def head(self, text: str, max_tokens: int) -> str:
        """``text``, or a head of it that is over ``max_tokens`` too and cuts to the same text (``truncate``):
        what a very long document is counted and cut by, so that it costs what ``max_tokens`` do."""
        ...


@lru_cache(maxsize=65536)
def _char_cost(char: str) -> int:
    return max(
        len(unicodedata.normalize("NFD", char).encode("utf-8")),
        len(unicodedata.normalize("NFKD", char).encode("utf-8")),
    )


def _costs(text: str) -> Iterator[int]:
    for char in text:
        yield 1 if char < "\x80" else _char_cost(char)


def estimate_tokens(text: str) -> int:
    """A token count never below the real one (see the module docstring): decomposed UTF-8 bytes plus one."""
    if text.isascii():
        return len(text) + 1
    return 1 + sum(_costs(text))


def truncate_to_tokens(text: str, max_tokens: int) -> str:
    """The longest head of ``text`` whose ``estimate_tokens`` is at most ``max_tokens`` (the tail is cut)."""
    if text.isascii():
        return text[: max(0, max_tokens - 1)]
    total = 1
    kept = 0
    for cost in _costs(text):
        if total + cost > max_tokens:
            break
        total += cost
        kept += 1
    return text[:kept]


class EstimateCounter:
    """The ``TokenCounter`` used without a tokenizer: ``estimate_tokens``, never below the real count.

    Example:
        >>> EstimateCounter().count("héllo")
        8
    """

    def count(self, text: str) -> int:
        return estimate_tokens(text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return truncate_to_tokens(text, max_tokens)

    def head(self, text: str, max_tokens: int) -> str:
        return text  # the estimate walks the text once, holding nothing

    def __repr__(self) -> str:
        return "EstimateCounter()"


class TokenizerCounter:
    """The ``TokenCounter`` of a real tokenizer (``tokenizers.Tokenizer`` or a fast ``transformers`` one).

    A document is counted as the service sees it inside its prompt, after ``"<Document>:"``: with the one space
    that precedes it (which joins its first word), control tokens parsed as the service parses them.

    Example:
        >>> from memreranker_core.backends.hosted.tokenizer import load_tokenizer
        >>> counter = TokenizerCounter(load_tokenizer("/models/MemReranker-0.6B"))  # doctest: +SKIP
        >>> counter.count("1 2 3 4 5 6 7 8 9 0")  # doctest: +SKIP
        20
    """

    def __init__(self, tokenizer: Any) -> None:
        from memreranker_core.prompt_tokens import splits_like_qwen

        self._backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        self._cuts_heads = splits_like_qwen(self._backend)

    def _encode(self, text: str) -> Any:
        return self._backend.encode(" " + text, add_special_tokens=False)

    def count(self, text: str) -> int:
        return len(self._encode(text).ids)

    def truncate(self, text: str, max_tokens: int) -> str:
        encoding = self._encode(text)
        if len(encoding.ids) <= max_tokens:
            return text
        keep = max(0, max_tokens)
        while keep > 0:
            end = max(0, encoding.offsets[keep - 1][1] - 1)  # -1: the leading space is not part of the text
            head = text[:end]
            if self.count(head) <= max_tokens:
                return head
            keep -= 1  # a cut word can tokenize into more pieces: step back one token and try again
        return ""

    def head(self, text: str, max_tokens: int) -> str:
        """A head ending where Qwen's tokenizer always splits (``prompt_tokens.safe_cut``), so its ids are the
        first ids of ``text``'s, with more than ``max_tokens`` of them; ``text`` when it is short, when none is
        found, or when the tokenizer is not Qwen's."""
        from memreranker_core.prompt_tokens import HEAD_CHARS_PER_TOKEN, safe_cut

        chars = HEAD_CHARS_PER_TOKEN * max_tokens + 64
        while self._cuts_heads and chars < len(text):
            end = safe_cut(text, chars)
            if end is not None and self.count(text[:end]) > max_tokens:
                return text[:end]
            chars *= 2
        return text

    def __repr__(self) -> str:
        return "TokenizerCounter()"


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
