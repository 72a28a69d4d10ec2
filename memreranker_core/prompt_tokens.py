"""The token ids of one call's prompts, from the model's own tokenizer, with user text kept literal.

Used by the local backend and by the hosted backend's exact mode (a server that runs MemReranker on the token ids
we send), so both score exactly the same ids. Needs only a tokenizer object: a ``transformers`` tokenizer or a
``tokenizers.Tokenizer``; never torch.

**User text is literal.** The instruction, the query, the context and the documents never become control tokens:
not the special ones (``<|im_end|>``, ``<|im_start|>``) and not the other added tokens Qwen flags non-special
(``<think>``, ``</think>``, ``<tool_call>``, the fim and repo tokens), which ``split_special_tokens`` alone would
still match. A text that contains an added token's string is tokenized by the tokenizer's own normalizer,
pre-tokenizer and BPE model with the added-token pass skipped, i.e. exactly as if those tokens did not exist;
any other text takes the ordinary (fast, batched) path, which gives the same ids.

**A long document costs what ``max_length`` allows, not its whole text.** Only a document's first tokens are ever
scored, so a document much longer than its room (over ``HEAD_CHARS_PER_TOKEN`` characters per token of it) is
tokenized by a head that ends at a *safe cut*: a place where Qwen's tokenizer (NFC, its split pattern, byte-level
BPE per piece) splits the whole text too, so the head's ids are exactly the first ids of the whole text's (see
``safe_cut``). The head grows (doubling) until it holds more ids than the room; a text with no safe cut near the
head's end, or a tokenizer whose normalizer or pre-tokenizer is not Qwen's, is tokenized whole, as before.

Example:
    >>> from transformers import AutoTokenizer  # doctest: +SKIP
    >>> encoder = PromptEncoder(AutoTokenizer.from_pretrained("IAAR-Shanghai/MemReranker-0.6B"))  # doctest: +SKIP
    >>> call = encoder.prepare(request, default_instruction=DEFAULT_INSTRUCTION, max_length=8192)  # doctest: +SKIP
    >>> call.pair_ids(0)  # the whole prompt of document 0, as the card's recipe tokenizes it  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memreranker_core.checkpoint import resolve_instruction
from memreranker_core.errors import InvalidInputError, ModelLoadError
from memreranker_core.prompt import NO_TOKEN, SUFFIX, SYSTEM_PREFIX, YES_TOKEN, body_head, document_part
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)

#: A document longer than this many characters per token of its room is tokenized by its head (module docstring).
HEAD_CHARS_PER_TOKEN = 8
#: How far back from a head's end a safe cut is looked for before the head is doubled instead.
CUT_SEARCH_CHARS = 4096
#: Qwen2/Qwen3's split pattern: the pre-tokenizer whose piece boundaries ``safe_cut`` reasons about.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+"
)
#: Punctuation that starts a new piece after a letter or digit and never composes with what precedes it.
_CUT_PUNCTUATION = ",.!?;:，。、！？；："
_CANDIDATES = re.compile(r"(?<=\S) |(?<=\n)(?=\S)|(?<=\w)(?=[" + re.escape(_CUT_PUNCTUATION) + "])")


def safe_cut(text: str, end: int) -> int | None:
    """The last position ``p`` in ``(end - CUT_SEARCH_CHARS, end]`` where Qwen's tokenizer splits ``text`` whatever
    follows: the ids of ``text[:p]`` are then the first ids of ``text``'s. ``None`` if there is none.

    A safe cut is one of (with ``a = text[p - 1]`` and ``b = text[p]``):

    - ``b`` a space and ``a`` a letter, digit, punctuation or symbol: no piece of the split pattern runs from ``a``
      into a space (letters, digits and punctuation runs stop there, whitespace pieces start there);
    - ``b`` one of ``_CUT_PUNCTUATION`` and ``a`` a letter or digit (in the BMP): letter runs and digits stop there;
    - ``a`` a line feed and ``b`` a letter, digit, punctuation or symbol that is not a combining character: every
      whitespace piece ends at its last line break or before a non-space, and a line feed composes with nothing.

    In each case ``b`` is a starter that does not compose with what precedes it, so NFC of the head is the head
    of NFC of the text, and every piece before ``p`` was decided by characters before ``p`` (a piece's match may
    look one character past its end: ``b`` gives the same answer as the end of the text there).

    Example:
        >>> safe_cut("Caroline went home. She slept", 22)
        19
    """
    start = max(1, end - CUT_SEARCH_CHARS)
    for match in reversed(list(_CANDIDATES.finditer(text, start, end + 1))):
        position = match.start()
        if position < start or position > end or position >= len(text):
            continue
        if _is_safe_cut(text[position - 1], text[position]):
            return position
    return None


def _is_safe_cut(before: str, after: str) -> bool:
    kind = unicodedata.category(before)[0]
    if after == " ":
        return kind in "LNPS"
    if after in _CUT_PUNCTUATION:
        return kind in "LN" and ord(before) < 0x10000
    return before == "\n" and unicodedata.category(after)[0] in "LNPS" and unicodedata.combining(after) == 0


@dataclass(frozen=True)
class PreparedCall:
    """One call's token ids: the shared prefix (system prompt to ``<Document>:``) and each document's tokens.

    Attributes:
        shared: System prompt, instruction, context and query, up to and including ``<Document>:``.
        sequences: Per document, ``" " + document`` (its tail cut to fit ``max_length``) and the suffix.
        truncated: Positions of the documents whose tail was cut.
    """

    shared: list[int]
    sequences: list[list[int]]
    truncated: tuple[int, ...] = ()

    def pair_ids(self, index: int) -> list[int]:
        """The full prompt of document ``index``: exactly the card recipe's tokens for that pair."""
        return self.shared + self.sequences[index]


class PromptEncoder:
    """Turns ``ScoreRequest`` objects into prompt token ids with one tokenizer.

    Args:
        tokenizer: A ``transformers`` tokenizer (fast) or a ``tokenizers.Tokenizer`` of a Qwen3 reranker.

    Raises:
        ModelLoadError: The tokenizer is not a fast (``tokenizers``-backed) one, or ``yes``/``no`` are not single
            tokens (not a Qwen3 reranker).
    """

    def __init__(self, tokenizer: Any) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        if not all(
            hasattr(backend, name) for name in ("encode_batch", "pre_tokenizer", "model", "get_added_tokens_decoder")
        ):
            raise ModelLoadError(
                f"{type(tokenizer).__name__} is not a fast (tokenizers-backed) tokenizer; load the model's "
                "tokenizer.json with transformers' AutoTokenizer or tokenizers.Tokenizer"
            )
        self._backend = backend
        self._private: Any = None  # our own copy, once another user of the tokenizer left padding or truncation on
        self._added_texts = tuple(token.content for token in backend.get_added_tokens_decoder().values())
        self.prefix_ids = tuple(self.encode_control(SYSTEM_PREFIX))
        self.suffix_ids = tuple(self.encode_control(SUFFIX))
        self.yes_id = self._single(YES_TOKEN)
        self.no_id = self._single(NO_TOKEN)
        #: Whether long documents may be tokenized by their head (Qwen's normalizer and pre-tokenizer).
        self.cuts_heads = splits_like_qwen(backend)

    def _single(self, token: str) -> int:
        ids = self.encode_literal([token])[0]
        if len(ids) != 1:
            raise ModelLoadError(f"the tokenizer splits {token!r} into {len(ids)} tokens; is this a Qwen3 reranker?")
        return ids[0]

    def encode_control(self, text: str) -> list[int]:
        """Ids of prompt text of our own (``SYSTEM_PREFIX``, ``SUFFIX``), whose control tokens are meant."""
        return list(self._unpadded().encode(text, add_special_tokens=False).ids)

    def encode_literal(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids of user texts, in order; no id of any added token can come out (see the module docstring)."""
        plain = [i for i, text in enumerate(texts) if not any(added in text for added in self._added_texts)]
        ids: list[list[int]] = [[] for _ in texts]
        if plain:
            encoded = self._unpadded().encode_batch([texts[i] for i in plain], add_special_tokens=False)
            for i, encoding in zip(plain, encoded, strict=True):
                ids[i] = list(encoding.ids)
        for i in set(range(len(texts))) - set(plain):
            ids[i] = self.encode_plain(texts[i])
        return ids

    def _unpadded(self) -> Any:
        """The tokenizer to encode with: never padding or truncating what it encodes.

        A transformers tokenizer keeps the padding and truncation of its last call with ``padding=True`` (e.g. a
        ``CrossEncoder.predict`` on the same tokenizer) in its backend, which would pad or cut our texts. Once
        that is seen, a private copy with neither is used from then on (the shared tokenizer is left as it is).
        """
        if self._private is not None:
            return self._private
        backend = self._backend
        if getattr(backend, "padding", None) is None and getattr(backend, "truncation", None) is None:
            return backend
        from tokenizers import Tokenizer

        private = Tokenizer.from_str(backend.to_str())
        private.no_padding()
        private.no_truncation()
        self._private = private
        logger.debug("the tokenizer has padding or truncation set by another caller; using a private copy")
        return private

    def encode_plain(self, text: str) -> list[int]:
        """Ids of ``text`` tokenized as if the tokenizer had no added tokens (normalizer, pre-tokenizer, BPE).

        ``encode_literal`` takes this path for a text that holds an added token's string; for any other text it
        gives the same ids as the ordinary tokenization (``tests/unit/test_local_literal_text.py`` fuzzes that).
        """
        backend = self._backend
        normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
        pieces = (
            backend.pre_tokenizer.pre_tokenize_str(normalized)
            if backend.pre_tokenizer is not None
            else [(normalized, None)]
        )
        return [token.id for piece, _offsets in pieces for token in backend.model.tokenize(piece)]

    def prepare(self, request: ScoreRequest, *, default_instruction: str, max_length: int) -> PreparedCall:
        """Tokenize one call: the shared prefix once, every document once, tails cut to fit ``max_length``.

        Raises:
            InvalidInputError: The query, instruction and context leave no room for a document.
        """
        instruction = resolve_instruction(request.instruction, default_instruction)
        head_ids = self.encode_literal([body_head(request.query, instruction, request.context)])[0]
        shared = list(self.prefix_ids) + head_ids
        room = max_length - len(shared) - len(self.suffix_ids)
        if room < 1:
            raise InvalidInputError(
                f"the query, instruction and context take {len(shared) + len(self.suffix_ids)} of max_length="
                f"{max_length} tokens, leaving no room for documents; shorten them or raise max_length"
            )
        doc_ids, cut = self.document_ids([document_part(text) for text in request.documents], room)
        truncated = tuple(i for i, ids in enumerate(doc_ids) if len(ids) > room or i in cut)
        if truncated:
            logger.debug(
                "%d document(s) cut to their first %d tokens (max_length=%d)", len(truncated), room, max_length
            )
        suffix = list(self.suffix_ids)
        return PreparedCall(shared=shared, sequences=[ids[:room] + suffix for ids in doc_ids], truncated=truncated)

    def document_ids(self, texts: Sequence[str], room: int) -> tuple[list[list[int]], frozenset[int]]:
        """Ids of each text (all of them, or at least its first ``room``) and the positions tokenized by a head.

        A text over ``HEAD_CHARS_PER_TOKEN * room`` characters is tokenized by a head ending at a ``safe_cut``
        (when the tokenizer is Qwen's), so it costs about what ``room`` tokens do; its ids are then the first ids
        of the whole text, at least ``room`` of them, and the whole text has more. Any other text is tokenized
        whole, as ``encode_literal`` does.
        """
        limit = HEAD_CHARS_PER_TOKEN * room + 64
        long = {i for i, text in enumerate(texts) if self.cuts_heads and len(text) > limit}
        ids = self.encode_literal([text for i, text in enumerate(texts) if i not in long] if long else texts)
        if not long:
            return ids, frozenset()
        rest = iter(ids)
        heads = {i: self._head_ids(texts[i], room, limit) for i in sorted(long)}
        merged = [heads[i][0] if i in heads else next(rest) for i in range(len(texts))]
        return merged, frozenset(i for i, (_ids, cut) in heads.items() if cut)

    def _head_ids(self, text: str, room: int, chars: int) -> tuple[list[int], bool]:
        """Ids of a head of ``text`` holding at least ``room`` of them, and whether text was left after it; the
        whole text's ids when no head is found (no safe cut, or too few ids before the end)."""
        while chars < len(text):
            end = safe_cut(text, chars)
            if end is not None:
                ids = self.encode_literal([text[:end]])[0]
                if len(ids) >= room:
                    return ids, True
            chars *= 2
        return self.encode_literal([text])[0], False


def splits_like_qwen(backend: Any) -> bool:
    """Whether ``backend`` normalizes with NFC (or not at all) and pre-tokenizes with Qwen's split pattern then a
    byte-level step without its own regex: the tokenizer ``safe_cut`` reasons about."""
    try:
        normalizer = None if backend.normalizer is None else json.loads(backend.normalizer.__getstate__())
        pre = json.loads(backend.pre_tokenizer.__getstate__())
    except (AttributeError, TypeError, ValueError):
        return False
    if normalizer not in (None, {"type": "NFC"}) or pre.get("type") != "Sequence":
        return False
    steps = pre.get("pretokenizers", [])
    return (
        len(steps) == 2
        and steps[0].get("type") == "Split"
        and steps[0].get("pattern") == {"Regex": QWEN_SPLIT_PATTERN}
        and steps[0].get("behavior") == "Isolated"
        and not steps[0].get("invert")
        and steps[1].get("type") == "ByteLevel"
        and steps[1].get("use_regex") is False
        and steps[1].get("add_prefix_space") is False
    )
