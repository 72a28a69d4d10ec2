"""MemRerankerMem0 inside mem0's real ``Memory.search(..., rerank=True)`` and ``AsyncMemory.search``: a local Qdrant
store, an offline word-hash embedder, memories added without LLM extraction; the tiny local model and the loopback
hosted server score. Order and scores equal ``MemReranker.rerank`` on the texts the model should read."""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import re
import tempfile

import pytest

os.environ.setdefault("MEM0_TELEMETRY", "False")  # read when mem0 is imported: no posthog calls from tests
os.environ.setdefault("MEM0_DIR", tempfile.mkdtemp(prefix="mem0-test-"))
pytest.importorskip("mem0")

from mem0 import AsyncMemory, Memory
from mem0.configs.base import MemoryConfig
from mem0.embeddings.base import EmbeddingBase
from mem0.utils.factory import RerankerFactory
from mem0_memreranker import PROVIDER, MemRerankerMem0, MemRerankerMem0Config, register

from memreranker_core import MemReranker
from memreranker_core.adapter_support import memory_date
from memreranker_core.errors import AuthenticationError, InvalidInputError, MemRerankerError
from tests.support.memories import MEMORIES, QUERY, SECRET
from tests.support.rerank_server import RerankServer

DIMS = 64
MONTHS = "January February March April May June July August September October November December".split()


class WordHashEmbedding(EmbeddingBase):
    """Offline test double: a bag of hashed words, so the vector order is deterministic and query-related."""

    def embed(self, text, memory_action=None):
        vector = [0.0] * DIMS
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
        return vector


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """``register()`` on a copy of mem0's provider table, restored after each test; mem0's telemetry off."""
    monkeypatch.setattr(RerankerFactory, "provider_to_class", dict(RerankerFactory.provider_to_class))
    register()
    # Telemetry off even if something imported mem0 before MEM0_TELEMETRY was set above (no network in tests).
    monkeypatch.setattr("mem0.memory.telemetry.MEM0_TELEMETRY", False)
    monkeypatch.setattr("mem0.memory.main.MEM0_TELEMETRY", False)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("MEMOS_API_KEY", SECRET)
    with RerankServer(api_key=SECRET) as running:
        yield running


def memory_config(tmp_path, reranker_config: dict) -> MemoryConfig:
    return MemoryConfig(
        vector_store={
            "provider": "qdrant",
            "config": {"collection_name": "memories", "path": str(tmp_path / "qdrant"), "embedding_model_dims": DIMS},
        },
        embedder={"provider": "openai", "config": {"api_key": "unused-offline"}},  # replaced by the double below
        llm={"provider": "openai", "config": {"api_key": "unused-offline"}},  # never called: infer=False
        history_db_path=str(tmp_path / "history.db"),
        reranker={"provider": PROVIDER, "config": reranker_config},
    )


def fill(memory) -> None:
    memory.embedding_model = WordHashEmbedding()
    for _, text, meta in MEMORIES:
        memory.add(text, user_id="caroline-and-melanie", metadata=dict(meta), infer=False)


def make_memory(tmp_path, reranker_config: dict) -> Memory:
    memory = Memory(memory_config(tmp_path, reranker_config))
    fill(memory)
    return memory


def search(memory, **kwargs):
    return memory.search(QUERY, filters={"user_id": "caroline-and-melanie"}, threshold=0.0, **kwargs)["results"]


def rendered(result: dict) -> str:
    """What the model must read, built here independently: date, speaker, text (the created_at day without a date)."""
    meta = result.get("metadata") or {}
    date = meta.get("date")
    if date is None:
        year, month, day = (int(part) for part in result["created_at"][:10].split("-"))
        date = f"{day} {MONTHS[month - 1]} {year}"
    return "\n".join([date, *([meta["speaker"]] if "speaker" in meta else []), result["memory"]])


def expected(reranker: MemReranker, candidates: list[dict], top_k: int | None = None) -> list[tuple[str, object]]:
    results = reranker.rerank(QUERY, [rendered(c) for c in candidates], top_n=top_k)
    return [(candidates[r.index]["id"], pytest.approx(r.score, abs=1e-6)) for r in results]


def ids_and_scores(results: list[dict]) -> list[tuple[str, float]]:
    return [(result["id"], result["rerank_score"]) for result in results]


def test_memory_search_with_the_local_model_orders_and_scores_like_memreranker(tmp_path, tiny_reranker):
    memory = make_memory(tmp_path, {"reranker": tiny_reranker})
    candidates = search(memory, top_k=5)  # mem0's own order: what the reranker is handed
    result = search(memory, top_k=5, rerank=True)
    assert ids_and_scores(result) == expected(tiny_reranker, candidates)
    by_id = {c["id"]: c for c in candidates}
    for r in result:  # the memory as mem0 gave it (its vector score is recomputed per search: float noise)
        original = by_id[r["id"]]
        assert {k: v for k, v in r.items() if k not in ("rerank_score", "score")} == {
            k: v for k, v in original.items() if k != "score"
        }
        assert r["score"] == pytest.approx(original["score"], abs=1e-6)


def test_a_memory_config_with_local_settings_builds_the_reranker_from_them(tmp_path, tiny_model_path, tiny_reranker):
    settings = {"backend": "local", "model": str(tiny_model_path), "device": "cpu", "metadata_fields": ["speaker"]}
    memory = make_memory(tmp_path, settings)
    assert isinstance(memory.reranker, MemRerankerMem0)
    candidates = search(memory, top_k=5)
    result = search(memory, top_k=5, rerank=True)
    texts = [
        f"{c['metadata']['speaker']}\n{c['memory']}" if "speaker" in c["metadata"] else c["memory"] for c in candidates
    ]
    core = tiny_reranker.rerank(QUERY, texts)
    assert ids_and_scores(result) == [(candidates[r.index]["id"], pytest.approx(r.score, abs=1e-6)) for r in core]


def test_memory_search_with_the_hosted_backend_sends_dates_and_speakers_and_the_key(tmp_path, server):
    memory = make_memory(tmp_path, {"backend": "hosted", "base_url": server.base_url})
    candidates = search(memory, top_k=5)
    result = search(memory, top_k=5, rerank=True)
    assert server.requests[-1]["documents"] == [rendered(c) for c in candidates]
    assert (
        "8 May 2023\nCaroline\nCaroline went to the LGBTQ support group yesterday." in server.requests[-1]["documents"]
    )
    headers = {name.lower(): value for name, value in server.received[-1].headers.items()}
    assert headers["authorization"] == f"Token {SECRET}"  # from MEMOS_API_KEY
    assert ids_and_scores(result) == expected(MemReranker(backend="hosted", base_url=server.base_url), candidates)
    assert result[0]["memory"] == "Caroline went to the LGBTQ support group yesterday."


async def test_async_memory_search_and_arerank_match_the_sync_path(tmp_path, server):
    memory = AsyncMemory(memory_config(tmp_path, {"backend": "hosted", "base_url": server.base_url}))
    memory.embedding_model = WordHashEmbedding()
    for _, text, meta in MEMORIES:
        await memory.add(text, user_id="caroline-and-melanie", metadata=dict(meta), infer=False)
    filters = {"user_id": "caroline-and-melanie"}
    candidates = (await memory.search(QUERY, filters=filters, top_k=5, threshold=0.0))["results"]
    result = (await memory.search(QUERY, filters=filters, top_k=5, threshold=0.0, rerank=True))["results"]
    reference = MemReranker(backend="hosted", base_url=server.base_url)
    assert ids_and_scores(result) == expected(reference, candidates)
    assert ids_and_scores(await memory.reranker.arerank(QUERY, candidates, top_k=5)) == expected(reference, candidates)


def test_mem0_cuts_to_top_k_before_reranking_and_the_config_top_k_returns_fewer(tmp_path, tiny_reranker):
    memory = make_memory(tmp_path, {"reranker": tiny_reranker, "top_k": 2})
    candidates = search(memory, top_k=5)
    assert len(candidates) == 5
    result = search(memory, top_k=5, rerank=True)  # 5 candidates reranked, the best 2 returned
    assert ids_and_scores(result) == expected(tiny_reranker, candidates)[:2]
    only_two = search(memory, top_k=2, rerank=True)  # mem0 hands over just its own top 2: the reranker only reorders
    assert {r["id"] for r in only_two} == {c["id"] for c in candidates[:2]}


def test_inputs_are_left_unchanged_and_copies_come_back(tiny_reranker):
    documents = [
        {"id": doc_id, "memory": text, "metadata": dict(meta), "score": 0.5, "created_at": "2023-05-08T10:00:00+00:00"}
        for doc_id, text, meta in MEMORIES
    ]
    before = copy.deepcopy(documents)
    result = MemRerankerMem0(reranker=tiny_reranker).rerank(QUERY, documents)
    assert documents == before
    assert len(result) == len(documents)
    assert all(r is not d and r["metadata"] is not d["metadata"] for r in result for d in documents)
    result[0]["metadata"]["date"] = "changed"
    assert documents == before


def test_dates_come_from_metadata_else_from_created_at(server):
    documents = [
        {
            "id": "a",
            "memory": "Went to a support group.",
            "metadata": {"date": "2023-05-07"},
            "created_at": "2024-01-01",
        },
        {"id": "b", "memory": "Painted a sunrise.", "created_at": "2023-05-25T09:30:00-07:00", "actor_id": "Melanie"},
        {"id": "c", "memory": "It rained.", "metadata": {"date": "the day after the race"}},
        {"id": "d", "memory": "No date at all."},
    ]
    MemRerankerMem0(backend="hosted", base_url=server.base_url).rerank(QUERY, documents)
    assert server.requests[-1]["documents"] == [
        "7 May 2023\nWent to a support group.",
        "25 May 2023\nMelanie\nPainted a sunrise.",
        "the day after the race\nIt rained.",
        "No date at all.",
    ]
    assert memory_date("2023-05-08T23:30:00-07:00") == "8 May 2023"  # the day the timestamp itself states


def test_a_document_template_reads_the_memory_fields(server):
    reranker = MemRerankerMem0(
        backend="hosted", base_url=server.base_url, document_template="[{date}] {speaker}: {text}", metadata_fields=[]
    )
    documents = [{"id": doc_id, "memory": text, "metadata": dict(meta)} for doc_id, text, meta in MEMORIES[:4]]
    reranker.rerank(QUERY, documents)
    assert (
        server.requests[-1]["documents"][0]
        == "[8 May 2023] Caroline: Caroline went to the LGBTQ support group yesterday."
    )


def test_empty_input_makes_no_model_call(tmp_path, server):
    assert MemRerankerMem0(backend="hosted", base_url=server.base_url).rerank(QUERY, []) == []
    assert server.requests == []
    never_loaded = MemRerankerMem0(backend="local", model=str(tmp_path / "no-such-model"), device="cpu")
    assert never_loaded.rerank(QUERY, []) == []  # the model would fail to load: it was never touched


async def test_a_failing_backend_is_a_typed_error_not_a_silent_zero(server, tmp_path, caplog):
    reranker = MemRerankerMem0(backend="hosted", base_url=server.base_url, api_key="sk-wrong-key-1234")
    documents = [{"id": doc_id, "memory": text} for doc_id, text, _ in MEMORIES]
    with pytest.raises(AuthenticationError) as caught:
        reranker.rerank(QUERY, documents)
    assert "sk-wrong-key-1234" not in str(caught.value)
    with pytest.raises(AuthenticationError):
        await reranker.arerank(QUERY, documents)
    # Memory.search itself catches every reranker error, logs it and returns its own order without rerank_score:
    memory = make_memory(tmp_path, {"backend": "hosted", "base_url": server.base_url, "api_key": "sk-wrong-key-1234"})
    with caplog.at_level(logging.WARNING, logger="mem0.memory.main"):
        result = search(memory, top_k=5, rerank=True)
    assert [r["id"] for r in result] == [c["id"] for c in search(memory, top_k=5)]
    assert all("rerank_score" not in r for r in result)
    assert any("Reranking failed" in record.getMessage() for record in caplog.records)


def test_bad_input_is_a_typed_error(tiny_reranker):
    reranker = MemRerankerMem0(reranker=tiny_reranker)
    with pytest.raises(InvalidInputError, match=r"documents\[1\] has no text"):
        reranker.rerank(QUERY, [{"memory": "ok"}, {"id": "no-text"}])
    with pytest.raises(InvalidInputError, match="top_k"):
        reranker.rerank(QUERY, [{"memory": "ok"}], top_k=0)
    with pytest.raises(InvalidInputError, match="None"):
        reranker.rerank(QUERY, None)
    with pytest.raises(MemRerankerError, match="metadata keys"):
        MemRerankerMem0(reranker=tiny_reranker, metadata_fields="date")
    with pytest.raises(MemRerankerError, match="either reranker"):
        MemRerankerMem0(reranker=tiny_reranker, backend="local")


def test_the_key_is_never_dumped_or_shown_and_the_dump_rebuilds_the_reranker(server):
    reranker = MemRerankerMem0(backend="hosted", base_url=server.base_url, api_key=SECRET, top_k=3)
    dumped = reranker.config.model_dump()
    assert (
        SECRET not in str(dumped)
        and SECRET not in reranker.config.model_dump_json()
        and SECRET not in repr(reranker.config)
    )
    assert "api_key" not in dumped and dumped["backend"] == "hosted" and dumped["top_k"] == 3
    given = MemRerankerMem0Config(backend="hosted", base_url=server.base_url, api_key=SECRET)
    assert SECRET not in repr(given) and SECRET not in given.model_dump_json()
    rebuilt = MemRerankerMem0(dumped)  # the key comes back from MEMOS_API_KEY
    documents = [{"id": doc_id, "memory": text, "metadata": dict(meta)} for doc_id, text, meta in MEMORIES]
    assert rebuilt.rerank(QUERY, documents) == reranker.rerank(QUERY, documents)


def test_an_unregistered_provider_is_refused_by_mem0(monkeypatch, tmp_path):
    monkeypatch.delitem(RerankerFactory.provider_to_class, PROVIDER)
    with pytest.raises(ValueError, match="Unsupported reranker provider"):
        Memory(memory_config(tmp_path, {"backend": "hosted"}))


def test_score_threshold_keeps_only_memories_scoring_at_least_it(server):
    documents = [{"id": doc_id, "memory": text, "metadata": dict(meta)} for doc_id, text, meta in MEMORIES]
    result = MemRerankerMem0(backend="hosted", base_url=server.base_url, score_threshold=0.5).rerank(QUERY, documents)
    everything = MemRerankerMem0(backend="hosted", base_url=server.base_url).rerank(QUERY, documents)
    assert result == [r for r in everything if r["rerank_score"] >= 0.5]
    assert 0 < len(result) < len(everything)
