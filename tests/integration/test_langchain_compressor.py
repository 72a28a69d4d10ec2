"""MemRerankerCompressor in real LangChain: a ContextualCompressionRetriever over a real vector-store retriever,
an LCEL chain, and the compressor's own contract, on the tiny offline model; the tests that are the same for both
backends run on the loopback hosted server too (``scoring_backend``). Serialization, copies and pickles:
test_adapter_round_trips.py; bad input: test_adapter_inputs.py."""

from __future__ import annotations

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_classic")

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_memreranker import MemRerankerCompressor

from memreranker_core import MemReranker
from memreranker_core.documents import render_document
from memreranker_core.errors import ConfigurationError, InvalidInputError
from tests.support import adapters, memories
from tests.support.memories import MEMORIES, QUERY, SECRET


def make_documents() -> list[Document]:
    return [Document(page_content=text, metadata=dict(meta), id=doc_id) for doc_id, text, meta in MEMORIES]


def snapshot(documents: list[Document]) -> list[tuple]:
    return adapters.snapshot(documents, lambda d: d.id, lambda d: d.page_content, lambda d: d.metadata)


def expected_ranking(reranker: MemReranker, documents: list[Document], texts: list[str] | None = None):
    """(id, score) best first, computed with MemReranker.score on the same texts."""
    scores = reranker.score(QUERY, texts if texts is not None else [d.page_content for d in documents])
    return adapters.ranking([d.id for d in documents], scores)


def test_compress_returns_copies_best_first_with_the_cores_scores_ids_and_metadata(tiny_reranker):
    documents = make_documents()
    before = snapshot(documents)
    compressor = MemRerankerCompressor(reranker=tiny_reranker, top_n=None)

    out = compressor.compress_documents(documents, QUERY)

    expected = expected_ranking(tiny_reranker, documents)
    assert [d.id for d in out] == [doc_id for doc_id, _ in expected]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx([s for _, s in expected], abs=1e-6)
    by_id = {d.id: d for d in documents}
    for copy in out:
        original = by_id[copy.id]
        assert copy is not original and copy.metadata is not original.metadata
        assert copy.page_content == original.page_content
        assert {k: v for k, v in copy.metadata.items() if k != "relevance_score"} == original.metadata
    assert snapshot(documents) == before  # the caller's documents are untouched


async def test_async_compress_equals_sync_and_leaves_inputs_unchanged(tiny_reranker):
    documents = make_documents()
    before = snapshot(documents)
    compressor = MemRerankerCompressor(reranker=tiny_reranker, top_n=4)
    sync = compressor.compress_documents(documents, QUERY)
    result = await compressor.acompress_documents(documents, QUERY)
    assert [(d.id, d.metadata["relevance_score"]) for d in result] == [
        (d.id, d.metadata["relevance_score"]) for d in sync
    ]
    assert len(result) == 4
    assert snapshot(documents) == before


def test_metadata_fields_are_prepended_to_the_scored_text(tiny_reranker):
    documents = make_documents()
    compressor = MemRerankerCompressor(
        reranker=tiny_reranker, top_n=None, metadata_fields=["date", "speaker"], metadata_separator=" | "
    )
    out = compressor.compress_documents(documents, QUERY)
    texts = [
        render_document(d.page_content, d.metadata, metadata_fields=["date", "speaker"], separator=" | ")
        for d in documents
    ]
    assert texts[0] == "8 May 2023 | Caroline | Caroline went to the LGBTQ support group yesterday."
    assert texts[4] == "9 June 2023 | It rained all weekend, so we stayed in and played board games."
    expected = expected_ranking(tiny_reranker, documents, texts)
    assert [(d.id, d.metadata["relevance_score"]) for d in out] == adapters.approx_ranking(expected)
    plain = dict(expected_ranking(tiny_reranker, documents))
    assert any(abs(plain[d.id] - d.metadata["relevance_score"]) > 1e-6 for d in out)  # metadata reached the model


async def test_metadata_fields_and_a_template_reach_the_model_on_both_backends(scoring_backend):
    documents = make_documents()
    compressor = MemRerankerCompressor(
        **scoring_backend.settings,
        top_n=None,
        document_template="[{date}] {text}",
        metadata_fields=["speaker"],
        metadata_separator=": ",
    )
    result = await compressor.acompress_documents(documents, QUERY)
    sent = memories.TEMPLATED_TEXTS  # the template over the memories, speaker prepended
    if scoring_backend.server is not None:
        assert scoring_backend.server.requests[-1]["documents"] == sent  # exactly these texts left the machine
    expected = adapters.ranking([d.id for d in documents], scoring_backend.scores(sent))
    assert [(d.id, d.metadata["relevance_score"]) for d in result] == adapters.approx_ranking(expected)
    assert [d.metadata for d in documents] == [meta for _, _, meta in MEMORIES]


def test_top_n_default_and_per_call_override(tiny_reranker):
    documents = make_documents()
    compressor = MemRerankerCompressor(reranker=tiny_reranker)  # top_n defaults to 3
    expected = [doc_id for doc_id, _ in expected_ranking(tiny_reranker, documents)]
    assert [d.id for d in compressor.compress_documents(documents, QUERY)] == expected[:3]
    assert [d.id for d in compressor.compress_documents(documents, QUERY, top_n=1)] == expected[:1]
    assert len(compressor.compress_documents(documents, QUERY, top_n=None)) == 3  # None keeps the instance's


def test_top_n_zero_raises_a_clear_value_error_at_construction_and_per_call(tiny_reranker):
    with pytest.raises(ValueError, match=r"top_n must be > 0, but got 0"):
        MemRerankerCompressor(reranker=tiny_reranker, top_n=0)
    compressor = MemRerankerCompressor(reranker=tiny_reranker)
    with pytest.raises(InvalidInputError, match=r"top_n must be > 0, but got 0"):
        compressor.compress_documents(make_documents(), QUERY, top_n=0)


def test_score_threshold_override_of_zero_keeps_every_document(tiny_reranker):
    documents = make_documents()
    strict = MemRerankerCompressor(reranker=tiny_reranker, top_n=None, score_threshold=1.0)
    assert strict.compress_documents(documents, QUERY) == []  # P(yes) < 1 for every document
    assert len(strict.compress_documents(documents, QUERY, score_threshold=0.0)) == len(documents)
    scores = sorted(score for _, score in expected_ranking(tiny_reranker, documents))
    middle = scores[2]
    kept = strict.compress_documents(documents, QUERY, score_threshold=middle)
    assert len(kept) == 3 and all(d.metadata["relevance_score"] >= middle for d in kept)
    with pytest.raises(ValueError, match="score_threshold"):
        strict.compress_documents(documents, QUERY, score_threshold=1.5)


async def test_empty_input_returns_empty_without_calling_the_model(scoring_backend, tmp_path):
    reranker = scoring_backend.untouched_reranker(tmp_path)
    compressor = MemRerankerCompressor(reranker=reranker)
    assert compressor.compress_documents([], QUERY) == []
    assert await compressor.acompress_documents([], QUERY) == []
    scoring_backend.assert_model_never_used(reranker)


def test_contextual_compression_retriever_over_a_real_vector_store(tiny_reranker):
    documents = make_documents()
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=32))
    store.add_documents(documents)
    base = store.as_retriever(search_kwargs={"k": 4})
    compressor = MemRerankerCompressor(reranker=tiny_reranker, top_n=2)
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)

    result = retriever.invoke(QUERY)

    retrieved = base.invoke(QUERY)
    assert len(retrieved) == 4
    expected = expected_ranking(tiny_reranker, retrieved)[:2]
    assert [(d.id, d.metadata["relevance_score"]) for d in result] == [
        (doc_id, pytest.approx(score, abs=1e-6)) for doc_id, score in expected
    ]
    originals = {d.id: d.metadata for d in documents}
    assert all({k: v for k, v in d.metadata.items() if k != "relevance_score"} == originals[d.id] for d in result)
    assert all("relevance_score" not in d.metadata for d in base.invoke(QUERY))  # the store is untouched


async def test_contextual_compression_retriever_async(tiny_reranker):
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=32))
    store.add_documents(make_documents())
    base = store.as_retriever(search_kwargs={"k": 5})
    retriever = ContextualCompressionRetriever(
        base_compressor=MemRerankerCompressor(reranker=tiny_reranker, top_n=3), base_retriever=base
    )
    result = await retriever.ainvoke(QUERY)
    expected = expected_ranking(tiny_reranker, await base.ainvoke(QUERY))[:3]
    assert [d.id for d in result] == [doc_id for doc_id, _ in expected]


async def test_lcel_chain_puts_the_reranked_memories_into_the_prompt(tiny_reranker):
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=32))
    store.add_documents(make_documents())
    retriever = ContextualCompressionRetriever(
        base_compressor=MemRerankerCompressor(reranker=tiny_reranker, top_n=2),
        base_retriever=store.as_retriever(search_kwargs={"k": 5}),
    )
    prompt = PromptTemplate.from_template("Memories:\n{context}\n\nQuestion: {question}")

    def format_docs(docs: list[Document]) -> str:
        return "\n".join(f"- {d.page_content}" for d in docs)

    context = {"context": retriever | format_docs, "question": RunnablePassthrough()}
    rendered = (context | prompt).invoke(QUERY).to_string()
    best_two = [doc_id for doc_id, _ in expected_ranking(tiny_reranker, make_documents())[:2]]
    texts = {doc_id: text for doc_id, text, _ in MEMORIES}
    assert rendered == (f"Memories:\n- {texts[best_two[0]]}\n- {texts[best_two[1]]}\n\nQuestion: {QUERY}")
    chain = context | prompt | FakeListLLM(responses=["On 7 May 2023."]) | StrOutputParser()
    assert chain.invoke(QUERY) == "On 7 May 2023."
    assert await chain.ainvoke(QUERY) == "On 7 May 2023."


def test_the_api_key_never_appears_in_repr_or_serialized_settings(tiny_model_path, monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)
    from_env = MemRerankerCompressor(backend="local", model=str(tiny_model_path))
    explicit = MemRerankerCompressor(backend="local", model=str(tiny_model_path), api_key=SECRET + "x")
    assert from_env.api_key is not None and from_env.api_key.get_secret_value() == SECRET
    for compressor in (from_env, explicit):
        for text in (repr(compressor), str(compressor), compressor.model_dump_json(), repr(compressor.model_dump())):
            assert SECRET not in text
        assert "api_key" not in compressor.model_dump()


def test_a_shared_reranker_and_reranker_settings_together_are_refused(tiny_reranker):
    with pytest.raises(ConfigurationError, match="either reranker"):
        MemRerankerCompressor(reranker=tiny_reranker, model="another-model")
    with pytest.raises(ValueError, match="api_key"):
        MemRerankerCompressor(backend="local", reranker_options={"api_key": SECRET})
    with pytest.raises(ValueError, match="extra"):  # extra="forbid": typos fail loudly
        MemRerankerCompressor(reranker=tiny_reranker, topn=2)
