"""Hosted and local backends agree: a loopback service scoring with the tiny local model gives the same scores,
and the hosted token estimate stays above the real Qwen token count."""

from __future__ import annotations

import json

import pytest

from memreranker_core import MemReranker
from memreranker_core.backends.hosted.chunking import estimate_tokens
from tests.support.rerank_server import RerankServer

QUERY = "When did Caroline go to the LGBTQ support group?"
DOCS = [
    "[8 May 2023] Caroline: I went to a LGBTQ support group yesterday and it was so powerful.",
    "[8 May 2023] Melanie: I painted a lake sunrise last year, it's special to me.",
    "[25 May 2023] Caroline: I'm keen on counseling or working in mental health.",
    "It rained all day.",
]
CONTEXT = ["Melanie: How have you been?", "Caroline: Busy, but good."]
MIXED_TEXTS = [
    *DOCS,
    "Order #4471-2209 shipped on 2024-03-17 at 09:45:12 UTC; total $1,234.56.",
    "def score(self, request: ScoreRequest) -> list[float]:\n    return [x ** 2 for x in range(10)]",
    "记忆检索需要重排序模型来判断文档是否满足查询的要求。",
    "Ça a été une très belle journée à Montréal, naïve café crème.",
    "Emoji party 🎉🎉🙂 with friends!!! ... ???",
    "https://example.org/path?query=value&other=123#fragment",
]


@pytest.fixture
def model_scorer(tiny_reranker):
    return lambda query, documents: tiny_reranker.score(query, documents)


def test_hosted_scores_equal_local_scores_on_the_same_texts(tiny_reranker, model_scorer):
    with RerankServer(model_scorer, api_key="k") as server:
        hosted = MemReranker(backend="hosted", base_url=server.base_url, api_key="k", max_concurrency=1)
        hosted_scores = hosted.score(QUERY, DOCS)
        hosted_ranking = hosted.rerank(QUERY, DOCS)
    local_scores = tiny_reranker.score(QUERY, DOCS)
    assert hosted_scores == pytest.approx(local_scores, rel=1e-9, abs=1e-12)
    local_ranking = tiny_reranker.rerank(QUERY, DOCS)
    assert [r.index for r in hosted_ranking] == [r.index for r in local_ranking]
    for ours, theirs in zip(hosted_ranking, local_ranking, strict=True):
        assert ours.logit == pytest.approx(theirs.logit, rel=1e-6, abs=1e-9)


def test_context_reaches_the_service_in_the_local_prompt_format(tiny_reranker, model_scorer):
    with RerankServer(model_scorer, api_key="k") as server:
        hosted = MemReranker(backend="hosted", base_url=server.base_url, api_key="k", context=CONTEXT)
        hosted_scores = hosted.score(QUERY, DOCS)
    # The service puts the query text after "<Query>:", exactly where the local backend puts context + query.
    assert hosted_scores == pytest.approx(tiny_reranker.score(QUERY, DOCS, context=CONTEXT), rel=1e-9, abs=1e-12)


@pytest.fixture(scope="module")
def qwen_tokenizer(tiny_model_path):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(str(tiny_model_path))


def test_the_token_estimate_is_above_the_real_qwen_count(qwen_tokenizer):
    for text in MIXED_TEXTS:
        real = len(qwen_tokenizer(text, add_special_tokens=False)["input_ids"])
        assert estimate_tokens(text) >= real, text


def test_the_token_estimate_is_above_the_real_count_on_locomo(qwen_tokenizer, locomo_path):
    conversations = json.loads(locomo_path.read_text())
    turns = [
        turn["text"]
        for sample in conversations[:2]
        for key, session in sample["conversation"].items()
        if key.startswith("session_") and isinstance(session, list)
        for turn in session
    ]
    estimated = sum(estimate_tokens(text) for text in turns)
    real = sum(len(ids) for ids in qwen_tokenizer(turns, add_special_tokens=False)["input_ids"])
    assert estimated >= real
    assert all(estimate_tokens(t) >= len(qwen_tokenizer(t, add_special_tokens=False)["input_ids"]) for t in turns)
