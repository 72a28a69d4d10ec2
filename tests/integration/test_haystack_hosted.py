"""MemRerankerRanker with the hosted backend against the loopback RerankServer: a BM25 Pipeline run with run()
and run_async(), dumped to YAML and loaded back with the key resolved from the environment, never written; a missing
key; shuffled results. The tests that are the same on both backends (metadata and templates, empty input) are in
test_haystack_ranker.py, serialization of a shared reranker in test_adapter_round_trips.py."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("haystack")
pytest.importorskip("httpx")

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.rankers.memreranker import MemRerankerRanker

from memreranker_core import MemReranker
from memreranker_core.errors import AuthenticationError
from tests.support.memories import MEMORIES, QUERY, SECRET
from tests.support.rerank_server import Fault, RerankServer, overlap_score


def make_documents() -> list[Document]:
    return [Document(id=doc_id, content=text, meta=dict(meta)) for doc_id, text, meta in MEMORIES]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)  # the ranker must read it from the environment and send it
    with RerankServer(api_key=SECRET) as running:
        yield running


def ranked(texts: list[str], ids: list[str]) -> list[tuple[str, object]]:
    scores = overlap_score(QUERY, texts)  # what the server computes: an independent reference
    order = sorted(range(len(texts)), key=lambda i: -scores[i])
    return [(ids[i], pytest.approx(scores[i], abs=1e-9)) for i in order]


def pairs(documents: list[Document]) -> list[tuple[str, float | None]]:
    return [(d.id, d.score) for d in documents]


async def test_bm25_pipeline_with_the_hosted_backend_runs_and_survives_a_yaml_round_trip(server):
    store = InMemoryDocumentStore(index=f"hosted-{uuid.uuid4().hex}")
    store.write_documents(make_documents())
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=5))
    pipeline.add_component("ranker", MemRerankerRanker(backend="hosted", base_url=server.base_url, top_k=2))
    pipeline.connect("retriever.documents", "ranker.documents")
    inputs = {"retriever": {"query": QUERY}, "ranker": {"query": QUERY}}

    result = pipeline.run(inputs)["ranker"]["documents"]

    retrieved = pipeline.get_component("retriever").run(query=QUERY)["documents"]
    expected = ranked([d.content for d in retrieved], [d.id for d in retrieved])[:2]
    assert pairs(result) == expected
    core = MemReranker(backend="hosted", base_url=server.base_url).score(QUERY, [d.content for d in result])
    assert [d.score for d in result] == pytest.approx(core, abs=1e-9)
    assert pairs((await pipeline.run_async(inputs))["ranker"]["documents"]) == expected

    text = pipeline.dumps()
    assert SECRET not in text and "MEMOS_API_KEY" in text
    loaded = Pipeline.loads(text)
    assert pairs(loaded.run(inputs)["ranker"]["documents"]) == expected
    headers = {name.lower(): value for name, value in server.received[-1].headers.items()}
    assert headers["authorization"] == f"Token {SECRET}"  # the loaded ranker resolved the key from the environment


def test_a_missing_key_is_a_typed_error(server, monkeypatch):
    monkeypatch.delenv("MEMOS_API_KEY")
    ranker = MemRerankerRanker(backend="hosted", base_url=server.base_url)
    with pytest.raises(AuthenticationError):
        ranker.run(query=QUERY, documents=make_documents())


def test_shuffled_service_results_still_land_on_the_right_documents(server):
    server.inject(Fault.shuffled())
    documents = make_documents()
    out = MemRerankerRanker(backend="hosted", base_url=server.base_url).run(query=QUERY, documents=documents)
    assert server.faults_served and server.faults_served[-1].kind == "shuffled"
    assert pairs(out["documents"]) == ranked([d.content for d in documents], [d.id for d in documents])
