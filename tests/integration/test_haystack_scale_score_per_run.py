"""Haystack: ``scale_score`` is accepted per run (``run`` and ``run_async``, and as a pipeline input), as in the
constructor and as Haystack's sentence-transformers rankers take it; the instance's setting is the default."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("haystack")

from haystack import Document, Pipeline
from haystack_integrations.components.rankers.memreranker import MemRerankerRanker

from memreranker_core.errors import InvalidInputError
from tests.support.memories import MEMORIES, QUERY


def documents() -> list[Document]:
    return [Document(id=doc_id, content=text, meta=dict(meta)) for doc_id, text, meta in MEMORIES]


def logit(probability: float) -> float:
    return math.log(probability) - math.log1p(-probability)


def by_id(result: dict) -> dict[str, float]:
    return {document.id: document.score for document in result["documents"]}


def test_run_takes_scale_score_per_run_and_defaults_to_the_instances(tiny_reranker):
    ranker = MemRerankerRanker(reranker=tiny_reranker)
    probabilities = by_id(ranker.run(QUERY, documents()))
    raw = by_id(ranker.run(QUERY, documents(), scale_score=False))
    assert raw.keys() == probabilities.keys()
    for document_id, probability in probabilities.items():
        assert raw[document_id] == pytest.approx(logit(probability), abs=1e-4)
    raw_ranker = MemRerankerRanker(reranker=tiny_reranker, scale_score=False)
    assert by_id(raw_ranker.run(QUERY, documents(), scale_score=True)) == probabilities
    assert by_id(raw_ranker.run(QUERY, documents())) == raw


async def test_run_async_takes_scale_score_per_run(tiny_reranker):
    ranker = MemRerankerRanker(reranker=tiny_reranker)
    assert by_id(await ranker.run_async(QUERY, documents(), scale_score=False)) == by_id(
        ranker.run(QUERY, documents(), scale_score=False)
    )


def test_a_pipeline_passes_scale_score_to_the_ranker(tiny_reranker):
    pipeline = Pipeline()
    pipeline.add_component("ranker", MemRerankerRanker(reranker=tiny_reranker))
    result = pipeline.run({"ranker": {"query": QUERY, "documents": documents(), "scale_score": False}})
    assert by_id(result["ranker"]) == by_id(
        MemRerankerRanker(reranker=tiny_reranker, scale_score=False).run(QUERY, documents())
    )


@pytest.mark.parametrize("value", ["no", 0, 1.0])
def test_a_scale_score_that_is_not_a_bool_is_refused(tiny_reranker, value):
    with pytest.raises(InvalidInputError, match="scale_score must be True, False or None"):
        MemRerankerRanker(reranker=tiny_reranker).run(QUERY, documents(), scale_score=value)
