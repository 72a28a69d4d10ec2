"""MemRerankerPostprocessor with the hosted backend against the loopback RerankServer: a VectorStoreIndex
queried through RetrieverQueryEngine (MockLLM), sync and async, with the key taken from the environment; a refused
key. The tests that are the same on both backends (metadata and templates, empty input) are in
test_llamaindex_postprocessor.py, serialization in test_adapter_round_trips.py."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")
pytest.importorskip("httpx")

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, TextNode
from llama_index.postprocessor.memreranker import MemRerankerPostprocessor

from memreranker_core import MemReranker
from memreranker_core.errors import AuthenticationError
from tests.support.memories import MEMORIES, QUERY, SECRET
from tests.support.rerank_server import RerankServer, overlap_score


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)  # the postprocessor must read it from the environment and send it
    with RerankServer(api_key=SECRET) as running:
        yield running


def make_engine(postprocessor: MemRerankerPostprocessor):
    nodes = [TextNode(id_=node_id, text=text, metadata=dict(meta)) for node_id, text, meta in MEMORIES]
    index = VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=8))
    retriever = index.as_retriever(similarity_top_k=5)
    return RetrieverQueryEngine.from_args(retriever, llm=MockLLM(), node_postprocessors=[postprocessor]), retriever


def ranked(texts: list[str], ids: list[str]) -> list[tuple[str, object]]:
    scores = overlap_score(QUERY, texts)  # what the server computes: an independent reference
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    return [(ids[i], pytest.approx(scores[i], abs=1e-9)) for i in order]


async def test_query_engine_with_the_hosted_backend_sync_and_async(server):
    engine, retriever = make_engine(MemRerankerPostprocessor(backend="hosted", base_url=server.base_url, top_n=2))

    response = engine.query(QUERY)

    retrieved = retriever.retrieve(QUERY)
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in retrieved]
    expected = ranked(texts, [n.node.node_id for n in retrieved])[:2]
    assert [(n.node.node_id, n.score) for n in response.source_nodes] == expected
    assert sorted(server.requests[-1]["documents"]) == sorted(texts)
    core = MemReranker(backend="hosted", base_url=server.base_url).score(
        QUERY, [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in response.source_nodes]
    )
    assert [n.score for n in response.source_nodes] == pytest.approx(core, abs=1e-9)

    async_response = await engine.aquery(QUERY)
    assert [(n.node.node_id, n.score) for n in async_response.source_nodes] == expected


def test_a_refused_key_is_a_typed_error_that_does_not_show_the_key(server):
    postprocessor = MemRerankerPostprocessor(backend="hosted", base_url=server.base_url, api_key="sk-wrong-key-1234")
    engine, _ = make_engine(postprocessor)
    with pytest.raises(AuthenticationError) as caught:
        engine.query(QUERY)
    assert "sk-wrong-key-1234" not in str(caught.value) and SECRET not in str(caught.value)
