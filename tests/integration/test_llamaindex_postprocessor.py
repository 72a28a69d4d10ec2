"""MemRerankerPostprocessor in real LlamaIndex: a VectorStoreIndex (MockEmbedding) queried through a
RetrieverQueryEngine with MockLLM, sync and async, and the postprocessor's own contract, on the tiny offline model;
the tests that are the same for both backends run on the loopback hosted server too (``scoring_backend``).
Serialization, copies and pickles: test_adapter_round_trips.py; bad input and spans: test_adapter_inputs.py."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import VectorStoreIndex
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from llama_index.postprocessor.memreranker import MemRerankerPostprocessor

from memreranker_core import MemReranker
from memreranker_core.documents import render_document
from memreranker_core.errors import ConfigurationError, InvalidInputError
from tests.support import adapters, memories
from tests.support.memories import MEMORIES, QUERY, SECRET


def make_nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=node_id, text=text, metadata=dict(meta)), score=0.5 - 0.1 * position)
        for position, (node_id, text, meta) in enumerate(MEMORIES)
    ]


def snapshot(nodes: list[NodeWithScore]) -> list[tuple]:
    return adapters.snapshot(
        nodes, lambda n: n.node.node_id, lambda n: n.node.get_content(), lambda n: n.node.metadata, lambda n: n.score
    )


def expected_ranking(reranker: MemReranker, texts: list[str], ids: list[str]) -> list[tuple[str, float]]:
    return adapters.ranking(ids, reranker.score(QUERY, texts))


def embed_texts(nodes: list[NodeWithScore]) -> list[str]:
    return [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]


def test_postprocess_returns_new_nodes_best_first_with_the_cores_scores(tiny_reranker):
    nodes = make_nodes()
    before = snapshot(nodes)
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=None)

    out = postprocessor.postprocess_nodes(nodes, query_str=QUERY)

    texts = embed_texts(nodes)
    assert texts[0] == "date: 8 May 2023\nspeaker: Caroline\n\nCaroline went to the LGBTQ support group yesterday."
    expected = expected_ranking(tiny_reranker, texts, [n.node.node_id for n in nodes])
    assert [(n.node.node_id, n.score) for n in out] == [(i, pytest.approx(s, abs=1e-6)) for i, s in expected]
    originals = {n.node.node_id: n for n in nodes}
    for result in out:
        assert result is not originals[result.node.node_id]
        assert result.node.metadata == originals[result.node.node_id].node.metadata
    assert snapshot(nodes) == before  # retrieval scores and metadata of the inputs are untouched


async def test_native_async_postprocess_equals_sync(tiny_reranker):
    assert MemRerankerPostprocessor._apostprocess_nodes is not BaseNodePostprocessor._apostprocess_nodes
    nodes = make_nodes()
    before = snapshot(nodes)
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=2)
    sync = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    result = await postprocessor.apostprocess_nodes(nodes, query_str=QUERY)
    assert [(n.node.node_id, n.score) for n in result] == [(n.node.node_id, n.score) for n in sync]
    assert len(result) == 2
    assert snapshot(nodes) == before


def test_keep_retrieval_score_writes_on_a_copy_of_the_node(tiny_reranker):
    nodes = make_nodes()
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=None, keep_retrieval_score=True)
    out = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    retrieval = {n.node.node_id: n.score for n in nodes}
    for result in out:
        assert result.node.metadata["retrieval_score"] == retrieval[result.node.node_id]
    assert all("retrieval_score" not in n.node.metadata for n in nodes)  # the shared nodes are untouched
    assert {n.node.node_id for n in out} == set(retrieval)


def test_metadata_fields_with_metadata_mode_none_score_the_same_text_as_the_other_adapters(tiny_reranker):
    nodes = make_nodes()
    postprocessor = MemRerankerPostprocessor(
        reranker=tiny_reranker,
        top_n=None,
        metadata_mode=MetadataMode.NONE,
        metadata_fields=["date", "speaker"],
        metadata_separator=" | ",
    )
    out = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    texts = [
        render_document(n.node.text, n.node.metadata, metadata_fields=["date", "speaker"], separator=" | ")
        for n in nodes
    ]
    assert texts[0] == "8 May 2023 | Caroline | Caroline went to the LGBTQ support group yesterday."
    expected = expected_ranking(tiny_reranker, texts, [n.node.node_id for n in nodes])
    assert [(n.node.node_id, n.score) for n in out] == [(i, pytest.approx(s, abs=1e-6)) for i, s in expected]


def test_metadata_fields_and_a_template_reach_the_model_on_both_backends(scoring_backend):
    postprocessor = MemRerankerPostprocessor(
        **scoring_backend.settings,
        top_n=None,
        metadata_mode=MetadataMode.NONE,
        document_template="[{date}] {text}",
        metadata_fields=["speaker"],
        metadata_separator=": ",
    )
    nodes = make_nodes()
    out = postprocessor.postprocess_nodes(nodes, query_str=QUERY)
    sent = memories.TEMPLATED_TEXTS  # the template over the memories, speaker prepended
    if scoring_backend.server is not None:
        assert scoring_backend.server.requests[-1]["documents"] == sent  # exactly these texts left the machine
    expected = adapters.ranking([n.node.node_id for n in nodes], scoring_backend.scores(sent))
    assert [(n.node.node_id, n.score) for n in out] == adapters.approx_ranking(expected)


def test_rerank_events_reach_the_dispatcher_and_the_callback_manager(tiny_reranker):
    class Collector(BaseEventHandler):
        events: list = Field(default_factory=list)

        def handle(self, event, **kwargs):
            if isinstance(event, (ReRankStartEvent, ReRankEndEvent)):
                self.events.append(event)

    collector = Collector()
    root = get_dispatcher()
    root.add_event_handler(collector)
    debug = LlamaDebugHandler()
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=2, callback_manager=CallbackManager([debug]))
    try:
        out = postprocessor.postprocess_nodes(make_nodes(), query_str=QUERY)
    finally:
        root.event_handlers.remove(collector)

    start, end = collector.events
    assert isinstance(start, ReRankStartEvent) and isinstance(end, ReRankEndEvent)
    assert (start.top_n, start.model_name, len(start.nodes)) == (2, str(tiny_reranker.describe()["model"]), 5)
    assert [n.node.node_id for n in end.nodes] == [n.node.node_id for n in out]
    pairs = debug.get_event_pairs(CBEventType.RERANKING)
    assert len(pairs) == 1
    assert [n.node.node_id for n in pairs[0][1].payload["nodes"]] == [n.node.node_id for n in out]


async def test_a_missing_query_is_a_clear_error(tiny_reranker):
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker)
    with pytest.raises(InvalidInputError, match="needs the query"):
        postprocessor.postprocess_nodes(make_nodes())
    with pytest.raises(ValueError, match="needs the query"):
        await postprocessor.apostprocess_nodes(make_nodes())


async def test_empty_input_returns_empty_without_calling_the_model(scoring_backend, tmp_path):
    reranker = scoring_backend.untouched_reranker(tmp_path)
    postprocessor = MemRerankerPostprocessor(reranker=reranker)
    assert postprocessor.postprocess_nodes([], query_str=QUERY) == []
    assert await postprocessor.apostprocess_nodes([], query_str=QUERY) == []
    scoring_backend.assert_model_never_used(reranker)


def test_top_n_and_score_threshold_including_the_zero_edge_cases(tiny_reranker):
    nodes = make_nodes()
    with pytest.raises(ValueError, match=r"top_n must be > 0, but got 0"):
        MemRerankerPostprocessor(reranker=tiny_reranker, top_n=0)
    with pytest.raises(ValueError, match="score_threshold"):
        MemRerankerPostprocessor(reranker=tiny_reranker, score_threshold=-0.1)
    assert len(MemRerankerPostprocessor(reranker=tiny_reranker).postprocess_nodes(nodes, query_str=QUERY)) == 3
    keep_all = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=None, score_threshold=0.0)
    assert len(keep_all.postprocess_nodes(nodes, query_str=QUERY)) == 5
    strict = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=None, score_threshold=1.0)
    assert strict.postprocess_nodes(nodes, query_str=QUERY) == []
    assert len(strict.model_copy(update={"score_threshold": 0.0}).postprocess_nodes(nodes, query_str=QUERY)) == 5


def make_engine(postprocessor: MemRerankerPostprocessor) -> tuple[RetrieverQueryEngine, object]:
    nodes = [TextNode(id_=node_id, text=text, metadata=dict(meta)) for node_id, text, meta in MEMORIES]
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    retriever = index.as_retriever(similarity_top_k=4)
    return RetrieverQueryEngine.from_args(retriever, llm=MockLLM(), node_postprocessors=[postprocessor]), retriever


def test_retriever_query_engine_with_mock_llm_uses_the_reranked_nodes(tiny_reranker):
    postprocessor = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=2)
    engine, retriever = make_engine(postprocessor)

    response = engine.query(QUERY)

    retrieved = retriever.retrieve(QUERY)
    assert len(retrieved) == 4
    expected = expected_ranking(tiny_reranker, embed_texts(retrieved), [n.node.node_id for n in retrieved])[:2]
    assert [(n.node.node_id, n.score) for n in response.source_nodes] == [
        (i, pytest.approx(s, abs=1e-6)) for i, s in expected
    ]
    assert str(response)  # MockLLM answered from the synthesized prompt


async def test_retriever_query_engine_async_query(tiny_reranker):
    engine, retriever = make_engine(MemRerankerPostprocessor(reranker=tiny_reranker, top_n=3))
    response = await engine.aquery(QUERY)
    retrieved = await retriever.aretrieve(QUERY)
    expected = expected_ranking(tiny_reranker, embed_texts(retrieved), [n.node.node_id for n in retrieved])[:3]
    assert [n.node.node_id for n in response.source_nodes] == [i for i, _ in expected]


def test_the_api_key_never_appears_in_repr_or_serialized_settings(tiny_reranker, tiny_model_path, monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)
    explicit = MemRerankerPostprocessor(backend="local", model=str(tiny_model_path), api_key=SECRET + "x")
    shared = MemRerankerPostprocessor(reranker=tiny_reranker, top_n=2, metadata_fields=["date"])
    for postprocessor in (explicit, shared):
        for text in (repr(postprocessor), postprocessor.to_json(), repr(postprocessor.to_dict())):
            assert SECRET not in text


def test_a_shared_reranker_and_reranker_settings_together_are_refused(tiny_reranker):
    with pytest.raises(ConfigurationError, match="either reranker"):
        MemRerankerPostprocessor(reranker=tiny_reranker, device="cuda")
    with pytest.raises(ConfigurationError, match="api_key"):
        MemRerankerPostprocessor(backend="local", reranker_options={"api_key": SECRET})
