"""The model card's transformers recipe, as the card writes it, for golden tests and benchmarks.

One change, which ANCHORS.md §3 asks for: the body is tokenized with ``split_special_tokens=True`` so that user
text is never parsed for special tokens (our backend applies the same rule). Context, when given, goes into the
query field exactly as ``memreranker_core.prompt.query_field`` documents.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def format_instruction(instruction: str | None, query: str, doc: str) -> str:
    if instruction is None:
        instruction = "Given a web search query, retrieve relevant passages that answer the query"
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"


def card_scores(
    model,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    *,
    instruction: str | None = None,
    max_length: int = 8192,
    batch_size: int = 64,
) -> list[float]:
    """P(yes) per (query, document) pair, computed as the card's ``process_inputs``/``compute_logits`` do."""
    tokenizer.padding_side = "left"
    prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    texts = [format_instruction(instruction, query, doc) for query, doc in pairs]
    scores: list[float] = []
    for start in range(0, len(texts), batch_size):
        inputs = tokenizer(
            texts[start : start + batch_size],
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=max_length - len(prefix_tokens) - len(suffix_tokens),
            split_special_tokens=True,
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
        inputs = {key: value.to(model.device) for key, value in inputs.items()}
        with torch.no_grad():
            batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        scores.extend(batch_scores[:, 1].exp().tolist())
    return scores
