"""The model card's transformers recipe, as the card writes it: the oracle of golden tests and benchmarks.

This module is written on purpose without ``memreranker_core.prompt`` or ``memreranker_core.prompt_tokens``: the
prompt text is typed here again from the card, and user text is kept literal by a mechanism of its own, so that a
mistake in the library's prompt or tokenization shows up as a difference from this oracle instead of being copied
into it. Two changes from the card, both rules the library also follows (ANCHORS.md §3):

* **User text is literal.** The card tokenizes the whole body with the model's tokenizer, which turns any added
  token's text in a document (``<|im_end|>``, ``</think>``, ``<tool_call>``, ...) into that control token. Here
  the body (``<Instruct>: ... <Document>: {doc}``) is tokenized by a copy of the tokenizer built from its
  ``tokenizer.json`` with the ``added_tokens`` removed, i.e. as if no added token existed; the prefix and suffix
  keep the real tokenizer, as in the card, so their control tokens are meant.
* **Only the last position's logits are computed** (``logits_to_keep=1``): the same numbers the card reads from
  ``logits[:, -1, :]``, without a ``[batch, length, 151,936]`` tensor (gigabytes for a padded batch).

Context, when given, goes into the query field exactly as ``memreranker_core.prompt.query_field`` documents; pass
the folded query text here.

Example:
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer  # doctest: +SKIP
    >>> tokenizer = AutoTokenizer.from_pretrained(path)  # doctest: +SKIP
    >>> model = AutoModelForCausalLM.from_pretrained(path).eval()  # doctest: +SKIP
    >>> card_scores(model, tokenizer, [("When did Caroline go?", "Caroline went on 7 May.")])  # doctest: +SKIP
    [0.73...]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from memreranker_core._optional import require

__all__ = [
    "DEFAULT_INSTRUCTION",
    "PREFIX",
    "SUFFIX",
    "card_prompt_ids",
    "card_scores",
    "format_instruction",
    "literal_tokenizer",
]

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

#: id(tokenizer) -> (tokenizer, its copy without added tokens); the tokenizer is kept so that its id stays unique
_LITERAL_TOKENIZERS: dict[int, tuple[Any, Any]] = {}


def format_instruction(instruction: str | None, query: str, doc: str) -> str:
    """The card's ``format_instruction``: the user turn's body of one pair."""
    if instruction is None:
        instruction = DEFAULT_INSTRUCTION
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def literal_tokenizer(tokenizer: Any) -> Any:
    """A ``tokenizers.Tokenizer`` equal to ``tokenizer``'s own but with no added tokens: every text is literal.

    Args:
        tokenizer: A fast transformers tokenizer (or a ``tokenizers.Tokenizer``).
    """
    key = id(tokenizer)
    if key not in _LITERAL_TOKENIZERS:
        from tokenizers import Tokenizer

        backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
        spec = json.loads(backend.to_str())
        spec["added_tokens"] = []
        spec["truncation"] = None
        spec["padding"] = None
        _LITERAL_TOKENIZERS[key] = (tokenizer, Tokenizer.from_str(json.dumps(spec)))
    return _LITERAL_TOKENIZERS[key][1]


def card_prompt_ids(
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    instruction: str | None = None,
    max_length: int = 8192,
) -> list[list[int]]:
    """The prompt ids of each (query, document) pair, as the card's ``process_inputs`` builds them.

    The body is cut from its tail to ``max_length - len(prefix) - len(suffix)`` tokens, as the card's
    ``truncation="longest_first"`` does for a single sequence.
    """
    prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)
    room = max_length - len(prefix_tokens) - len(suffix_tokens)
    texts = [format_instruction(instruction, query, doc) for query, doc in pairs]
    bodies = literal_tokenizer(tokenizer).encode_batch(texts, add_special_tokens=False) if texts else []
    return [prefix_tokens + list(body.ids)[:room] + suffix_tokens for body in bodies]


def card_scores(
    model: Any,
    tokenizer: Any,
    pairs: Sequence[tuple[str, str]],
    *,
    instruction: str | None = None,
    max_length: int = 8192,
    batch_size: int = 64,
    full_logits: bool = False,
) -> list[float]:
    """P(yes) per (query, document) pair, computed as the card's ``process_inputs``/``compute_logits`` do.

    Batches are left-padded (the card's ``padding_side="left"``), so the last position is every row's last real
    token; ``model`` runs where it is, in its own dtype.

    Args:
        model: The causal LM.
        tokenizer: Its (fast) tokenizer.
        pairs: (query, document) pairs.
        instruction: The instruction (default: the card's).
        max_length: Most tokens of a prompt; a body's tail is cut to fit.
        batch_size: Pairs per padded batch.
        full_logits: Compute the logits at every position, as the card's code does (its real cost: benchmarks
            time this); the default computes only the last position's, the same numbers in far less memory.
    """
    torch = require("torch", extra="local", purpose="The card recipe oracle")
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prompts = card_prompt_ids(tokenizer, pairs, instruction=instruction, max_length=max_length)
    scores: list[float] = []
    for start in range(0, len(prompts), batch_size):
        inputs = tokenizer.pad(
            {"input_ids": prompts[start : start + batch_size]},
            padding=True,
            padding_side="left",
            return_tensors="pt",
            max_length=max_length,
        )
        inputs = {key: value.to(model.device) for key, value in inputs.items()}
        with torch.no_grad():
            batch_scores = model(**inputs, logits_to_keep=0 if full_logits else 1).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        scores.extend(batch_scores[:, 1].exp().tolist())
    return scores
