"""MemRerankerAgno inside Agno's real ``Knowledge.search`` / ``Knowledge.asearch``: an embedded Qdrant store (the
qdrant-client's local in-memory mode, no server), an offline word-hash embedder written against Agno's ``Embedder``,
memories inserted with ``Knowledge.insert``; the tiny local model and the loopback hosted server score. Order and
scores equal ``MemReranker.rerank`` on the texts the model should read."""

from __future__ import annotations

import copy
import hashlib
import json
import pickle
import re
from dataclasses import dataclass

import pytest

pytest.importorskip("agno")
pytest.importorskip("qdrant_client")

from agno.knowledge.document import Document
from agno.knowledge.embedder.base import Embedder
from agno.knowledge.knowledge import Knowledge
from agno.knowledge.reranker.base import Reranker
from agno.vectordb.qdrant import Qdrant
from agno_memreranker import MemRerankerAgno

from memreranker_core.errors import AuthenticationError, ConfigurationError, InvalidInputError
from tests.support.adapters import approx_ranking, ranking, snapshot
from tests.support.memories import MEMORIES, QUERY, SECRET, TEMPLATED_TEXTS

DIMS = 64
FIELDS = ["date", "speaker"]


@dataclass
class WordHashEmbedder(Embedder):
    """Offline stand-in for the first stage: a bag of hashed words (deterministic, query-related)."""

    dimensions: int = DIMS

    def get_embedding(self, text: str) -> list[float]:
        vector = [0.0] * DIMS
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
        return vector

    def get_embedding_and_usage(self, text: str):
        return self.get_embedding(text), None

    async def async_get_embedding(self, text: str) -> list[float]:
        return self.get_embedding(text)

    async def async_get_embedding_and_usage(self, text: str):
        return self.get_embedding(text), None


def knowledge(reranker: Reranker | None, max_results: int = 3) -> Knowledge:
    store = Qdrant(collection="memories", location=":memory:", embedder=WordHashEmbedder())
    built = Knowledge(vector_db=store, reranker=reranker, max_results=max_results)
    for doc_id, text, meta in MEMORIES:
        built.insert(name=doc_id, text_content=text, metadata=dict(meta))
    return built


async def async_knowledge(reranker: Reranker, max_results: int = 3) -> Knowledge:
    """The async path: Qdrant's async client is its own in-memory instance, so it is created and filled async."""
    store = Qdrant(collection="memories", location=":memory:", embedder=WordHashEmbedder())
    built = Knowledge(vector_db=store, reranker=reranker, max_results=max_results)
    await store.async_create()
    for doc_id, text, meta in MEMORIES:
        await built.ainsert(name=doc_id, text_content=text, metadata=dict(meta))
    return built


def rendered(document: Document) -> str:
    """What the model must read, built here independently: date, speaker (when present), text."""
    meta = document.meta_data
    return "\n".join([*(meta[key] for key in FIELDS if key in meta), document.content])


def expected(scoring_backend, candidates: list[Document], keep: int) -> list:
    scores = scoring_backend.scores([rendered(c) for c in candidates])
    return approx_ranking(ranking([c.name for c in candidates], scores)[:keep])


def names_and_scores(documents: list[Document]) -> list[tuple[str, float]]:
    return [(d.name, d.reranking_score) for d in documents]


def memory_documents() -> list[Document]:
    return [
        Document(content=text, id=doc_id, name=doc_id, meta_data=dict(meta), embedding=[0.5, 0.25], usage={"n": 1})
        for doc_id, text, meta in MEMORIES
    ]


def test_knowledge_search_reranks_the_widened_pool(scoring_backend):
    built = knowledge(MemRerankerAgno(**scoring_backend.settings, metadata_fields=FIELDS), max_results=3)
    candidates = built.vector_db.search(QUERY, limit=9)  # what Knowledge fetches: 3 x max_results
    assert len(candidates) == 5
    result = built.search(QUERY)
    assert names_and_scores(result) == expected(scoring_backend, candidates, 3)
    if scoring_backend.server is not None:
        assert scoring_backend.server.requests[-1]["documents"] == [rendered(c) for c in candidates]
        assert "8 May 2023\nCaroline\nCaroline went to the LGBTQ support group yesterday." in [
            rendered(c) for c in candidates
        ]
        headers = {k.lower(): v for k, v in scoring_backend.server.received[-1].headers.items()}
        assert headers["authorization"] == f"Token {SECRET}"  # from MEMOS_API_KEY


async def test_knowledge_asearch_calls_the_native_arerank(scoring_backend, monkeypatch):
    reranker = MemRerankerAgno(reranker=scoring_backend.shared(), metadata_fields=FIELDS)
    built = await async_knowledge(reranker, max_results=2)
    candidates = await built.vector_db.async_search(QUERY, limit=6)

    def no_thread(*args, **kwargs):
        raise AssertionError("arerank must not fall back to the sync rerank in a thread")

    monkeypatch.setattr(MemRerankerAgno, "rerank", no_thread)
    result = await built.asearch(QUERY)
    assert names_and_scores(result) == expected(scoring_backend, candidates, 2)


def test_candidate_multiplier_sets_how_many_candidates_are_scored(scoring_backend):
    if scoring_backend.server is None:
        pytest.skip("counted on the hosted server's requests")
    narrow = knowledge(MemRerankerAgno(**scoring_backend.settings, candidate_multiplier=1), max_results=2)
    narrow.search(QUERY)
    assert len(scoring_backend.server.requests[-1]["documents"]) == 2  # only the vector db's own top 2: reordered
    wide = knowledge(MemRerankerAgno(**scoring_backend.settings), max_results=2)
    wide.search(QUERY)
    assert len(scoring_backend.server.requests[-1]["documents"]) == 5  # min(2 x 3, 100), of the 5 stored


def test_limit_and_top_n_cap_what_comes_back(scoring_backend):
    documents = memory_documents()
    full = expected(scoring_backend, documents, 5)
    shared = scoring_backend.shared()
    every = MemRerankerAgno(reranker=shared, metadata_fields=FIELDS)
    assert names_and_scores(every.rerank(QUERY, documents)) == full
    assert names_and_scores(every.rerank(QUERY, documents, limit=2)) == full[:2]
    one = MemRerankerAgno(reranker=shared, metadata_fields=FIELDS, top_n=1)
    assert names_and_scores(one.rerank(QUERY, documents, limit=3)) == full[:1]
    with pytest.raises(InvalidInputError):
        every.rerank(QUERY, documents, limit=0)


def test_inputs_are_left_unchanged_and_copies_come_back(scoring_backend):
    documents = memory_documents()
    documents.append(Document(content=documents[0].content, name="m1-again", meta_data={"date": "8 May 2023"}))
    fields = (lambda d: d.content, lambda d: d.meta_data, lambda d: d.embedding, lambda d: d.usage)
    before = snapshot(documents, *fields, lambda d: d.reranking_score)
    result = MemRerankerAgno(reranker=scoring_backend.shared(), metadata_fields=FIELDS).rerank(QUERY, documents)
    assert snapshot(documents, *fields, lambda d: d.reranking_score) == before
    assert sorted(d.name for d in result) == sorted(d.name for d in documents)  # none lost, none twice
    assert names_and_scores(result) == expected(scoring_backend, documents, len(documents))
    by_name = {d.name: d for d in documents}
    for copied in result:
        original = by_name[copied.name]
        assert copied is not original and copied.meta_data is not original.meta_data
        assert snapshot([copied], *fields) == snapshot([original], *fields)
    first = next(copied for copied in result if copied.name == "m1")
    first.meta_data["date"] = "changed"
    first.embedding.append(1.0)
    assert snapshot(documents, *fields, lambda d: d.reranking_score) == before


def test_serialization_round_trip_keeps_settings_and_never_the_key(scoring_backend):
    shared = scoring_backend.shared(**scoring_backend.options)
    original = MemRerankerAgno(reranker=shared, top_n=2, metadata_fields=["date"], candidate_multiplier=4)
    data = original.model_dump()
    text = original.model_dump_json()
    assert "reranker" not in data and "api_key" not in data
    for rebuilt in (MemRerankerAgno(**data), MemRerankerAgno(**json.loads(text)), pickle.loads(pickle.dumps(original))):
        assert rebuilt.reranker.settings() == shared.settings()
        assert rebuilt.candidate_multiplier == 4 and rebuilt.top_n == 2
        documents = memory_documents()
        assert names_and_scores(rebuilt.rerank(QUERY, documents)) == approx_ranking(
            names_and_scores(original.rerank(QUERY, documents))
        )
    assert copy.deepcopy(original).reranker.settings() == shared.settings()


def test_the_key_never_appears_in_repr_dump_pickle_or_the_logs(monkeypatch):
    messages = []
    monkeypatch.setattr("agno.knowledge.knowledge.log_error", lambda message, *a, **k: messages.append(message))
    from tests.support.rerank_server import RerankServer

    with RerankServer(api_key=SECRET) as server:
        reranker = MemRerankerAgno(backend="hosted", base_url=server.base_url, api_key="sk-wrong-key-1234")
        for shown in (repr(reranker), str(reranker.model_dump()), reranker.model_dump_json()):
            assert "sk-wrong-key-1234" not in shown
        assert b"sk-wrong-key-1234" not in pickle.dumps(reranker)
        with pytest.raises(AuthenticationError) as caught:
            reranker.rerank(QUERY, memory_documents())
        assert "sk-wrong-key-1234" not in str(caught.value)
        # Knowledge.search catches a reranker failure (not a ValueError), logs it and keeps the vector db's order:
        built = knowledge(reranker, max_results=3)
        result = built.search(QUERY)
    assert [d.name for d in result] == [d.name for d in built.vector_db.search(QUERY, limit=3)]
    assert all(d.reranking_score is None for d in result)
    assert messages and all("sk-wrong-key-1234" not in message for message in messages)


def test_a_document_template_reads_the_metadata(scoring_backend):
    if scoring_backend.server is None:
        pytest.skip("the rendered texts are read from the hosted server's requests")
    templated = MemRerankerAgno(
        **scoring_backend.settings,
        document_template="[{date}] {text}",
        metadata_fields=["speaker"],
        metadata_separator=": ",
    )
    templated.rerank(QUERY, memory_documents())
    assert scoring_backend.server.requests[-1]["documents"] == TEMPLATED_TEXTS


def test_empty_input_makes_no_model_call(scoring_backend, tmp_path):
    untouched = scoring_backend.untouched_reranker(tmp_path)
    assert MemRerankerAgno(reranker=untouched).rerank(QUERY, []) == []
    scoring_backend.assert_model_never_used(untouched)


async def test_bad_input_is_a_typed_error(tiny_reranker):
    reranker = MemRerankerAgno(reranker=tiny_reranker)
    for bad in (None, "one text", Document(content="one document"), [Document(content="ok"), {"content": "dict"}]):
        with pytest.raises(InvalidInputError):
            reranker.rerank(QUERY, bad)
        with pytest.raises(InvalidInputError):
            await reranker.arerank(QUERY, bad)
    with pytest.raises(InvalidInputError, match=r"documents\[1\] has no text"):
        reranker.rerank(QUERY, [Document(content="ok"), Document(content=None)])
    with pytest.raises(InvalidInputError):
        MemRerankerAgno(reranker=tiny_reranker, top_n=0)
    with pytest.raises(InvalidInputError):
        MemRerankerAgno(reranker=tiny_reranker, score_threshold=1.5)
    with pytest.raises(ConfigurationError):
        MemRerankerAgno(reranker=tiny_reranker, backend="hosted")
    with pytest.raises(ConfigurationError):
        MemRerankerAgno(metadata_fields="date")
    with pytest.raises(ConfigurationError):
        MemRerankerAgno(reranker_options={"api_key": SECRET})
    assert isinstance(InvalidInputError("x"), ValueError)  # so Knowledge.search raises it instead of hiding it
