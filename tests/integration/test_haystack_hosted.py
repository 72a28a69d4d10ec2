"""MemRerankerRanker with the hosted backend against the loopback RerankServer: a BM25 Pipeline run with run()
and run_async(), dumped to YAML and loaded back with the key resolved from the environment, never written."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip("haystack")
pytest.importorskip("requests")

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


def test_meta_fields_and_template_reach_the_service(server):
    ranker = MemRerankerRanker(
        backend="hosted",
        base_url=server.base_url,
        document_template="[{date}] {text}",
        meta_fields_to_embed=["speaker"],
        embedding_separator=": ",
    )
    documents = make_documents()
    out = ranker.run(query=QUERY, documents=documents)["documents"]
    sent = server.requests[-1]["documents"]
    assert sent[0] == "[8 May 2023] Caroline: Caroline went to the LGBTQ support group yesterday."
    assert sent[4] == "[9 June 2023] It rained all weekend, so we stayed in and played board games."
    assert pairs(out) == ranked(sent, [d.id for d in documents])
    assert all(d.score is None for d in documents)


async def test_empty_input_sends_no_request(server):
    ranker = MemRerankerRanker(backend="hosted", base_url=server.base_url)
    assert ranker.run(query=QUERY, documents=[]) == {"documents": []}
    assert await ranker.run_async(query=QUERY, documents=[]) == {"documents": []}
    assert server.requests == []


def test_a_missing_key_is_a_typed_error(server, monkeypatch):
    monkeypatch.delenv("MEMOS_API_KEY")
    ranker = MemRerankerRanker(backend="hosted", base_url=server.base_url)
    with pytest.raises(AuthenticationError):
        ranker.run(query=QUERY, documents=make_documents())


def test_a_shared_hosted_reranker_serializes_its_settings_without_the_key(server):
    shared = MemReranker(backend="hosted", base_url=server.base_url, api_key=SECRET, max_retries=1)
    data = MemRerankerRanker(reranker=shared, top_k=3).to_dict()
    params = data["init_parameters"]
    assert SECRET not in repr(data)
    assert (params["backend"], params["base_url"], params["reranker_options"]["max_retries"]) == (
        "hosted",
        server.base_url,
        1,
    )
    rebuilt = MemRerankerRanker.from_dict(data)
    assert len(rebuilt.run(query=QUERY, documents=make_documents())["documents"]) == 3


def test_shuffled_service_results_still_land_on_the_right_documents(server):
    server.inject(Fault.shuffled())
    documents = make_documents()
    out = MemRerankerRanker(backend="hosted", base_url=server.base_url).run(query=QUERY, documents=documents)
    assert server.faults_served and server.faults_served[-1].kind == "shuffled"
    assert pairs(out["documents"]) == ranked([d.content for d in documents], [d.id for d in documents])
