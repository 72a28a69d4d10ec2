"""MemRerankerCompressor with the hosted backend against the loopback RerankServer: a real
ContextualCompressionRetriever, the key taken from the environment and sent, metadata in the sent texts."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_classic")
pytest.importorskip("requests")

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


async def test_async_compression_with_metadata_fields_and_a_template_sends_the_rendered_texts(server):
    documents = make_documents()
    compressor = MemRerankerCompressor(
        backend="hosted",
        base_url=server.base_url,
        top_n=None,
        document_template="[{date}] {text}",
        metadata_fields=["speaker"],
        metadata_separator=": ",
    )
    result = await compressor.acompress_documents(documents, QUERY)
    sent = server.requests[-1]["documents"]
    assert sent[0] == "[8 May 2023] Caroline: Caroline went to the LGBTQ support group yesterday."
    assert sent[4] == "[9 June 2023] It rained all weekend, so we stayed in and played board games."
    assert [(d.id, d.metadata["relevance_score"]) for d in result] == ranked(sent, [d.id for d in documents])
    assert [d.metadata for d in documents] == [meta for _, _, meta in MEMORIES]


def test_empty_input_sends_no_request(server):
    compressor = MemRerankerCompressor(backend="hosted", base_url=server.base_url)
    assert compressor.compress_documents([], QUERY) == []
    assert server.requests == []


def test_a_refused_key_is_a_typed_error_that_does_not_show_the_key(server):
    compressor = MemRerankerCompressor(backend="hosted", base_url=server.base_url, api_key="sk-wrong-key-1234")
    with pytest.raises(AuthenticationError) as caught:
        compressor.compress_documents(make_documents(), QUERY)
    assert "sk-wrong-key-1234" not in str(caught.value) and SECRET not in str(caught.value)


def test_hosted_settings_serialize_without_the_key_and_rebuild_from_the_environment(server):
    shared = MemReranker(backend="hosted", base_url=server.base_url, api_key=SECRET, read_timeout=5.0)
    compressor = MemRerankerCompressor(reranker=shared, top_n=2)
    dumped = compressor.model_dump()
    assert SECRET not in compressor.model_dump_json() and SECRET not in repr(compressor)
    assert (dumped["backend"], dumped["base_url"], dumped["api_style"]) == ("hosted", server.base_url, None)  # only what was given
    assert dumped["reranker_options"]["read_timeout"] == 5.0
    rebuilt = MemRerankerCompressor(**dumped)  # the key comes back from MEMOS_API_KEY
    expected = compressor.compress_documents(make_documents(), QUERY)
    assert rebuilt.compress_documents(make_documents(), QUERY) == expected
