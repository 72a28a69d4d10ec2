"""On the CPU too, the local backend's memory is bounded by its token budget, not by the number of documents.

PyTorch's memory profiler follows every tensor allocation on the CPU and sorts it into categories; the weights
(``PARAMETER``) are set aside, and what remains (prefix cache, activations, inputs, temporaries) must peak at the
same height for ten times the documents. ``tests/gpu`` checks the same on CUDA with ``max_memory_allocated``.
"""

from __future__ import annotations

import json

import pytest

from memreranker_core import MemReranker
from tests.support.golden_inputs import synthetic_memories

torch = pytest.importorskip("torch")
QUERY = "When did Caroline go to the LGBTQ support group?"


def _peak_tensor_bytes_besides_weights(reranker: MemReranker, documents: list[str], path) -> int:
    from torch.profiler import ProfilerActivity, profile

    try:  # a private module of PyTorch's profiler: skip, rather than fail, where a release moves it
        from torch.profiler._memory_profiler import _CATEGORY_TO_INDEX, Category
    except ImportError as exc:
        pytest.skip(f"this PyTorch has no memory-timeline categories: {exc}")

    reranker.score(QUERY, documents[:4])  # warm up outside the profile
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True, with_stack=True) as prof:
        scores = reranker.score(QUERY, documents)
    assert len(scores) == len(documents)
    prof.export_memory_timeline(str(path), device="cpu")
    _, sizes = json.loads(path.read_text())
    weights = _CATEGORY_TO_INDEX[Category.PARAMETER] + 1  # column 0 of each row is not a category
    return max(sum(row) - row[weights] for row in sizes)


def test_peak_cpu_memory_besides_the_weights_does_not_grow_with_ten_times_the_documents(tiny_model_path, tmp_path):
    reranker = MemReranker(model=str(tiny_model_path), device="cpu", batch_tokens=512).warm_up()
    documents = synthetic_memories(1000, seed=4)
    few = _peak_tensor_bytes_besides_weights(reranker, documents[:100], tmp_path / "few.json")
    many = _peak_tensor_bytes_besides_weights(reranker, documents, tmp_path / "many.json")
    assert few > 0
    assert many <= few * 1.10, f"peak grew from {few:,} to {many:,} bytes with 10x the documents"
