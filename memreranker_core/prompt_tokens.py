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

Example:
    >>> from transformers import AutoTokenizer  # doctest: +SKIP
    >>> encoder = PromptEncoder(AutoTokenizer.from_pretrained("IAAR-Shanghai/MemReranker-0.6B"))  # doctest: +SKIP
    >>> call = encoder.prepare(request, default_instruction=DEFAULT_INSTRUCTION, max_length=8192)  # doctest: +SKIP
    >>> call.pair_ids(0)  # the whole prompt of document 0, as the card's recipe tokenizes it  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memreranker_core.errors import InvalidInputError, ModelLoadError
from memreranker_core.prompt import NO_TOKEN, SUFFIX, SYSTEM_PREFIX, YES_TOKEN, body_head, document_part
from memreranker_core.types import ScoreRequest

logger = logging.getLogger(__name__)


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
        self.added_token_ids = frozenset(backend.get_added_tokens_decoder())
        self._added_texts = tuple(token.content for token in backend.get_added_tokens_decoder().values())
        self.prefix_ids = tuple(self.encode_control(SYSTEM_PREFIX))
        self.suffix_ids = tuple(self.encode_control(SUFFIX))
        self.yes_id = self._single(YES_TOKEN)
        self.no_id = self._single(NO_TOKEN)

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
        instruction = request.instruction or default_instruction
        head_ids = self.encode_literal([body_head(request.query, instruction, request.context)])[0]
        shared = list(self.prefix_ids) + head_ids
        room = max_length - len(shared) - len(self.suffix_ids)
        if room < 1:
            raise InvalidInputError(
                f"the query, instruction and context take {len(shared) + len(self.suffix_ids)} of max_length="
                f"{max_length} tokens, leaving no room for documents; shorten them or raise max_length"
            )
        doc_ids = self.encode_literal([document_part(text) for text in request.documents])
        truncated = tuple(i for i, ids in enumerate(doc_ids) if len(ids) > room)
        if truncated:
            logger.debug(
                "%d document(s) cut to their first %d tokens (max_length=%d)", len(truncated), room, max_length
            )
        suffix = list(self.suffix_ids)
        return PreparedCall(shared=shared, sequences=[ids[:room] + suffix for ids in doc_ids], truncated=truncated)
