"""A score sent as an integer of hundreds of digits (valid JSON, too large for a float) is a bad score: the call
raises ``MalformedResponseError``, never a bare ``OverflowError``, in every dialect, in the exact mode's ``probs``
and through the agent-memory adapters."""

from __future__ import annotations

import asyncio
import json

import pytest

from memreranker_core import MemReranker, errors
from memreranker_core.backends.hosted.responses import Answer, probabilities
from tests.support.classify_server import ClassifyServer
from tests.support.rerank_server import Fault, RerankServer

KEY = "sk-test-SECRET-4242"
DOCS = ["Caroline went to the support group.", "Melanie went camping."]
HUGE = [10**400, -(10**309), 7 * 10**999]


def results_body(api_style: str, huge: int) -> str:
    """A whole answer in ``api_style``'s shape whose first score is ``huge``."""
    key = "score" if api_style == "tei" else "relevance_score"
    results = [{"index": 0, key: huge}, {"index": 1, key: 0.5}]
    return json.dumps(results if api_style == "tei" else {"results": results})


@pytest.mark.parametrize("huge", HUGE, ids=["400-digits", "negative-310-digits", "1000-digits"])
def test_a_huge_integer_score_is_a_bad_score_not_an_overflow(huge):
    outcome = probabilities(Answer(200, {"results": [{"index": 0, "score": huge}, {"index": 1, "score": 0.5}]}), [4, 5])
    assert outcome.error_class is errors.MalformedResponseError
    assert "document 4: a huge integer" in outcome.what


@pytest.mark.parametrize("api_style", ["memos", "tei", "cohere"])
def test_a_huge_integer_score_from_the_service_raises_malformed_response(api_style):
    with RerankServer(api_style=api_style, api_key=KEY) as server:
        server.inject(Fault.html(200, page=results_body(api_style, 10**400)))
        rr = MemReranker(backend="hosted", base_url=server.base_url, api_style=api_style, api_key=KEY, max_retries=0)
        with pytest.raises(errors.MalformedResponseError, match="not a probability"):
            rr.score("Where did Caroline go?", DOCS)


def exact_call(tiny_model_path, data: list[dict]) -> None:
    """One exact-mode call against a ``/classify`` stand-in that answers ``{"data": data}``."""
    body = json.dumps({"data": data}).encode()
    with ClassifyServer(lambda _request: body) as server:
        rr = MemReranker(
            backend="hosted", api_style="vllm", base_url=server.root, tokenizer=str(tiny_model_path), max_retries=0
        )
        rr.score("q", DOCS)


@pytest.mark.parametrize("huge", HUGE, ids=["400-digits", "negative-310-digits", "1000-digits"])
def test_a_huge_integer_in_the_exact_modes_probs_raises_malformed_response(tiny_model_path, huge):
    with pytest.raises(errors.MalformedResponseError, match="document 0: score a huge integer is not a finite"):
        exact_call(tiny_model_path, [{"index": 0, "probs": [huge]}, {"index": 1, "probs": [0.5]}])


def test_a_huge_integer_index_in_the_exact_modes_answer_raises_malformed_response(tiny_model_path):
    with pytest.raises(errors.MalformedResponseError, match="result index a huge integer out of range"):
        exact_call(tiny_model_path, [{"index": 10**500, "probs": [1.0]}, {"index": 1, "probs": [0.5]}])


@pytest.fixture
def huge_answer_server():
    with RerankServer(api_key=KEY) as server:
        server.inject(Fault.html(200, page=results_body("memos", 10**400)))
        yield server


def test_the_mem0_adapter_raises_malformed_response_on_a_huge_score(huge_answer_server):
    from mem0_memreranker import MemRerankerMem0

    reranker = MemRerankerMem0(backend="hosted", base_url=huge_answer_server.base_url, api_key=KEY)
    memories = [{"id": str(i), "memory": text} for i, text in enumerate(DOCS)]
    with pytest.raises(errors.MalformedResponseError):
        reranker.rerank("Where did Caroline go?", memories)


def test_the_graphiti_adapter_raises_malformed_response_on_a_huge_score(huge_answer_server):
    from graphiti_memreranker import MemRerankerCrossEncoder

    encoder = MemRerankerCrossEncoder(backend="hosted", base_url=huge_answer_server.base_url, api_key=KEY)
    with pytest.raises(errors.MalformedResponseError):
        asyncio.run(encoder.rank("Where did Caroline go?", DOCS))


def test_the_memos_adapter_raises_malformed_response_on_a_huge_score(huge_answer_server):
    pytest.importorskip("memos", reason="MemOS is not installed")
    from memos_memreranker import MemRerankerMemOS

    reranker = MemRerankerMemOS(backend="hosted", base_url=huge_answer_server.base_url, api_key=KEY)
    memories = [{"memory": text, "metadata": {}} for text in DOCS]
    with pytest.raises(errors.MalformedResponseError):
        reranker.rerank("Where did Caroline go?", memories, top_k=2)
