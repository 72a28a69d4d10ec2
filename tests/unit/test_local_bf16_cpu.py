"""bf16 on the CPU, the part of the bf16 path CI can run: its error is the dtype's, not the backend's shortcuts'.

Against the float32 card recipe, our bf16 scores may differ only as much as the card recipe's own scores differ
when the same model runs it in bf16: the shared-prefix cache, the batching and the fp32 ``W[yes] - W[no]`` head must
add no error of their own. (The speed targets' 0.02 bound is checked on a GPU in ``tests/gpu``; the tiny model's
logits spread far wider than a trained reranker's, so its bf16 error is larger than a real model's.)
"""

from __future__ import annotations

import statistics

import pytest

from memreranker_core import MemReranker
from tests.support.golden_inputs import HARD_CASES, synthetic_memories

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

QUERY = "When did Caroline go to the LGBTQ support group?"
DOCUMENTS = synthetic_memories(40, seed=1) + HARD_CASES[:8] + [" ".join(synthetic_memories(30, seed=9))]


@pytest.fixture(scope="module")
def card_errors(tiny_model_path):
    """|card bf16 - card fp32| per document, and the fp32 scores."""
    from memreranker_core.testing.card_recipe import card_scores

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model_path)
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()
    pairs = [(QUERY, document) for document in DOCUMENTS]
    reference = card_scores(model, tokenizer, pairs, batch_size=8)
    in_bf16 = card_scores(model.to(torch.bfloat16), tokenizer, pairs, batch_size=8)
    return [abs(a - b) for a, b in zip(in_bf16, reference, strict=True)], reference


def test_bf16_on_cpu_adds_no_error_beyond_the_card_recipes_own_bf16_error(tiny_model_path, card_errors):
    card_error, reference = card_errors
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", dtype="bfloat16")
    ours = reranker.score(QUERY, DOCUMENTS)
    assert reranker.backend.loaded.model.dtype == torch.bfloat16
    our_error = [abs(a - b) for a, b in zip(ours, reference, strict=True)]
    assert max(our_error) > 1e-4, "bf16 scores equal float32 ones: the model did not run in bf16"
    assert max(our_error) <= 1.5 * max(card_error), (max(our_error), max(card_error))
    assert statistics.mean(our_error) <= 1.5 * statistics.mean(card_error)


def test_bf16_on_cpu_gives_the_same_scores_whatever_the_batching(tiny_model_path):
    small = MemReranker(model=str(tiny_model_path), device="cpu", dtype="bfloat16", batch_tokens=64)
    huge = MemReranker(model=str(tiny_model_path), device="cpu", dtype="bfloat16", batch_tokens=10**9)
    # bf16 sums in another order round differently, so batching may move a score a little, never far
    assert huge.score(QUERY, DOCUMENTS) == pytest.approx(small.score(QUERY, DOCUMENTS), abs=0.02)
