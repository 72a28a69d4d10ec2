"""MemRerankerRanker in real Haystack: a Pipeline of InMemoryBM25Retriever -> our ranker, run with run() and
run_async(), dumped to YAML and loaded back, and the ranker's own contract, on the tiny offline model; the tests
that are the same for both backends run on the loopback hosted server too (``scoring_backend``). Serialization,
copies and pickles: test_adapter_round_trips.py; bad input, meta, scale_score, close: test_adapter_inputs.py."""

from __future__ import annotations

import inspect
import uuid

import pytest

pytest.importorskip("haystack")

from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.utils import Secret
from haystack_integrations.components.rankers.memreranker import MemRerankerRanker

from memreranker_core import MemReranker
from memreranker_core.documents import render_document
from memreranker_core.errors import ConfigurationError, MemRerankerError
from tests.support import adapters, memories
from tests.support.memories import MEMORIES, QUERY, SECRET


def make_documents() -> list[Document]:
    return [Document(id=doc_id, content=text, meta=dict(meta)) for doc_id, text, meta in MEMORIES]


def snapshot(documents: list[Document]) -> list[tuple]:
    return adapters.snapshot(documents, lambda d: d.id, lambda d: d.content, lambda d: d.meta, lambda d: d.score)


def expected_ranking(reranker: MemReranker, documents: list[Document], texts: list[str] | None = None):
    scores = reranker.score(QUERY, texts if texts is not None else [d.content for d in documents])
    return adapters.ranking([d.id for d in documents], scores)


def pairs(documents: list[Document]) -> list[tuple[str, float | None]]:
    return [(d.id, d.score) for d in documents]


approx_pairs = adapters.approx_ranking


@pytest.fixture
def failing_reranker(tmp_path) -> MemReranker:
    """A reranker whose model cannot load: any call to the model raises."""
    return adapters.unloadable_reranker(tmp_path)


def test_run_returns_replaced_copies_best_first_with_the_cores_scores(tiny_reranker):
    documents = make_documents()
    before = snapshot(documents)
    ranker = MemRerankerRanker(reranker=tiny_reranker)

    out = ranker.run(query=QUERY, documents=documents)["documents"]

    assert pairs(out) == approx_pairs(expected_ranking(tiny_reranker, documents))
    originals = {d.id: d for d in documents}
    for copy in out:
        assert copy is not originals[copy.id]
        assert (copy.content, copy.meta) == (originals[copy.id].content, originals[copy.id].meta)
    assert snapshot(documents) == before  # scores of the inputs stay None


async def test_run_async_equals_run(tiny_reranker):
    documents = make_documents()
    before = snapshot(documents)
    ranker = MemRerankerRanker(reranker=tiny_reranker, top_k=3)
    sync = ranker.run(query=QUERY, documents=documents)["documents"]
    result = await ranker.run_async(query=QUERY, documents=documents)
    assert pairs(result["documents"]) == pairs(sync) and len(sync) == 3
    assert snapshot(documents) == before


def test_meta_fields_to_embed_are_prepended_like_in_the_other_adapters(tiny_reranker):
    documents = make_documents()
    ranker = MemRerankerRanker(
        reranker=tiny_reranker, meta_fields_to_embed=["date", "speaker"], embedding_separator=" | "
    )
    out = ranker.run(query=QUERY, documents=documents)["documents"]
    texts = [
        render_document(d.content, d.meta, metadata_fields=["date", "speaker"], separator=" | ") for d in documents
    ]
    assert texts[0] == "8 May 2023 | Caroline | Caroline went to the LGBTQ support group yesterday."
    assert pairs(out) == approx_pairs(expected_ranking(tiny_reranker, documents, texts))


async def test_meta_fields_and_a_template_reach_the_model_on_both_backends(scoring_backend):
    ranker = MemRerankerRanker(
        **scoring_backend.settings,
        document_template="[{date}] {text}",
        meta_fields_to_embed=["speaker"],
        embedding_separator=": ",
    )
    documents = make_documents()
    out = (await ranker.run_async(query=QUERY, documents=documents))["documents"]
    sent = memories.TEMPLATED_TEXTS  # the template over the memories, speaker prepended
    if scoring_backend.server is not None:
        assert scoring_backend.server.requests[-1]["documents"] == sent  # exactly these texts left the machine
    assert pairs(out) == approx_pairs(adapters.ranking([d.id for d in documents], scoring_backend.scores(sent)))
    assert all(d.score is None for d in documents)


def test_duplicate_ids_are_ranked_once_keeping_the_best_scored_copy(tiny_reranker):
    documents = make_documents()
    low = Document(id="m1", content=MEMORIES[0][1], meta={"copy": "low"}, score=0.1)
    high = Document(id="m1", content=MEMORIES[0][1], meta={"copy": "high"}, score=0.9)
    out = MemRerankerRanker(reranker=tiny_reranker).run(query=QUERY, documents=[low, *documents[1:], high])
    ranked = out["documents"]
    assert sorted(d.id for d in ranked) == ["m1", "m2", "m3", "m4", "m5"]
    assert next(d for d in ranked if d.id == "m1").meta == {"copy": "high"}
    assert pairs(ranked) == approx_pairs(expected_ranking(tiny_reranker, documents))


def test_top_k_and_score_threshold_overrides_including_zero(tiny_reranker):
    documents = make_documents()
    with pytest.raises(ValueError, match=r"top_k must be > 0, but got 0"):
        MemRerankerRanker(reranker=tiny_reranker, top_k=0)
    ranker = MemRerankerRanker(reranker=tiny_reranker, top_k=4, score_threshold=1.0)
    assert ranker.run(query=QUERY, documents=documents)["documents"] == []
    kept = ranker.run(query=QUERY, documents=documents, score_threshold=0.0)["documents"]
    assert len(kept) == 4  # 0.0 overrides the instance's 1.0; top_k stays the instance's 4
    assert len(ranker.run(query=QUERY, documents=documents, top_k=1, score_threshold=0.0)["documents"]) == 1
    with pytest.raises(ValueError, match=r"top_k must be > 0, but got 0"):
        ranker.run(query=QUERY, documents=documents, top_k=0)
    with pytest.raises(ValueError, match=r"top_k must be > 0, but got -1"):
        ranker.run(query=QUERY, documents=documents, top_k=-1)


async def test_empty_input_returns_empty_without_calling_the_model(scoring_backend, tmp_path):
    reranker = scoring_backend.untouched_reranker(tmp_path)
    ranker = MemRerankerRanker(reranker=reranker)
    assert ranker.run(query=QUERY, documents=[])["documents"] == []
    assert (await ranker.run_async(query=QUERY, documents=[]))["documents"] == []
    scoring_backend.assert_model_never_used(reranker)


def build_pipeline(ranker: MemRerankerRanker, index: str) -> Pipeline:
    store = InMemoryDocumentStore(index=index)
    if not store.count_documents():
        store.write_documents(make_documents())
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=4))
    pipeline.add_component("ranker", ranker)
    pipeline.connect("retriever.documents", "ranker.documents")
    return pipeline


async def test_bm25_pipeline_runs_sync_and_async_and_survives_a_yaml_round_trip(tiny_reranker, tiny_model_path):
    index = f"memories-{uuid.uuid4().hex}"
    pipeline = build_pipeline(MemRerankerRanker(reranker=tiny_reranker, top_k=2), index)
    inputs = {"retriever": {"query": QUERY}, "ranker": {"query": QUERY}}

    result = pipeline.run(inputs)["ranker"]["documents"]

    retrieved = pipeline.get_component("retriever").run(query=QUERY)["documents"]
    assert len(retrieved) == 3  # BM25 keeps the documents sharing a word with the query
    expected = approx_pairs(expected_ranking(tiny_reranker, retrieved)[:2])
    assert pairs(result) == expected
    assert pairs((await pipeline.run_async(inputs))["ranker"]["documents"]) == expected

    text = pipeline.dumps()
    assert "MemRerankerRanker" in text and str(tiny_model_path) in text
    loaded = Pipeline.loads(text)  # rebuilds the ranker, and its own MemReranker, from the YAML
    ranker = loaded.get_component("ranker")
    assert ranker.reranker is not tiny_reranker
    assert ranker.to_dict() == pipeline.get_component("ranker").to_dict()
    assert pairs(loaded.run(inputs)["ranker"]["documents"]) == expected


def test_to_dict_covers_every_parameter_and_writes_the_key_as_an_env_reference(monkeypatch, tiny_model_path):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)
    ranker = MemRerankerRanker(
        backend="local",
        model=str(tiny_model_path),
        device="cpu",
        instruction="Find the memory that answers the question",
        base_url="http://127.0.0.1:9",
        api_style="vllm",
        document_template="[{date}] {text}",
        reranker_options={"max_length": 512},
        top_k=4,
        score_threshold=0.0,
        meta_fields_to_embed=["speaker"],
        embedding_separator=" - ",
    )
    data = ranker.to_dict()
    params = data["init_parameters"]
    assert params["api_key"] == {"type": "env_var", "env_vars": ["MEMOS_API_KEY"], "strict": False}
    expected_names = set(inspect.signature(MemRerankerRanker.__init__).parameters) - {"self", "reranker"}
    assert set(params) == expected_names  # nothing forgotten (haystack-core-integrations#3809)
    assert SECRET not in repr(data)
    rebuilt = MemRerankerRanker.from_dict(data)
    assert rebuilt.to_dict() == data
    assert rebuilt.reranker.describe() == ranker.reranker.describe()
    with pytest.raises(ValueError, match="token"):  # Haystack refuses to serialize a plain token secret
        MemRerankerRanker(backend="local", api_key=Secret.from_token(SECRET)).to_dict()


def test_a_shared_reranker_and_reranker_settings_together_are_refused(tiny_reranker):
    with pytest.raises(ConfigurationError, match="either reranker"):
        MemRerankerRanker(reranker=tiny_reranker, instruction="another")
    with pytest.raises(ConfigurationError, match="api_key"):
        MemRerankerRanker(backend="local", reranker_options={"api_key": SECRET})


def test_warm_up_loads_through_the_core(failing_reranker):
    with pytest.raises(MemRerankerError):
        MemRerankerRanker(reranker=failing_reranker).warm_up()
