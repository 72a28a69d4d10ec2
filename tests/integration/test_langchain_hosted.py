"""MemRerankerCompressor with the hosted backend against the loopback RerankServer: a real
ContextualCompressionRetriever, the key taken from the environment and sent, a refused key. The tests that are the
same on both backends (metadata and templates, empty input) are in test_langchain_compressor.py, serialization in
test_adapter_round_trips.py."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_classic")
pytest.importorskip("httpx")

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_memreranker import MemRerankerCompressor

from memreranker_core import MemReranker
from memreranker_core.errors import AuthenticationError
from tests.support.memories import MEMORIES, QUERY, SECRET
from tests.support.rerank_server import RerankServer, overlap_score


def make_documents() -> list[Document]:
    return [Document(page_content=text, metadata=dict(meta), id=doc_id) for doc_id, text, meta in MEMORIES]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)  # the compressor must read it from the environment and send it
    with RerankServer(api_key=SECRET) as running:
        yield running


def ranked(texts: list[str], ids: list[str]) -> list[tuple[str, object]]:
    scores = overlap_score(QUERY, texts)  # what the server computes: an independent reference
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    return [(ids[i], pytest.approx(scores[i], abs=1e-9)) for i in order]


def test_contextual_compression_retriever_with_the_hosted_backend(server):
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=32))
    store.add_documents(make_documents())
    base = store.as_retriever(search_kwargs={"k": 5})
    compressor = MemRerankerCompressor(backend="hosted", base_url=server.base_url, top_n=2)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)

    result = retriever.invoke(QUERY)

    retrieved = base.invoke(QUERY)
    expected = ranked([d.page_content for d in retrieved], [d.id for d in retrieved])[:2]
    assert [(d.id, d.metadata["relevance_score"]) for d in result] == expected
    headers = {name.lower(): value for name, value in server.received[-1].headers.items()}
    assert headers["authorization"] == f"Token {SECRET}"  # the key from the environment was sent
    assert server.requests[-1]["documents"] == [d.page_content for d in retrieved]
    core = MemReranker(backend="hosted", base_url=server.base_url).score(QUERY, [d.page_content for d in result])
    assert [d.metadata["relevance_score"] for d in result] == pytest.approx(core, abs=1e-9)


def test_a_refused_key_is_a_typed_error_that_does_not_show_the_key(server):
    compressor = MemRerankerCompressor(backend="hosted", base_url=server.base_url, api_key="sk-wrong-key-1234")
    with pytest.raises(AuthenticationError) as caught:
        compressor.compress_documents(make_documents(), QUERY)
    assert "sk-wrong-key-1234" not in str(caught.value) and SECRET not in str(caught.value)
