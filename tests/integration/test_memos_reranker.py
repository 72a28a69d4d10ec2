"""MemRerankerMemOS inside MemOS's real ``TreeTextMemory.search`` and its ``Searcher.retrieve`` (fast mode,
WorkingMemory path: MemOS's recall turns the graph store's records into ``TextualMemoryItem`` objects, cuts them to
``top_k`` and hands them to the reranker), with a small in-memory graph-store double in place of Neo4j/PolarDB and
the tiny local model or the loopback hosted server scoring. Not run: the LongTermMemory/UserMemory paths (they need
a graph database's vector and full-text search) and ``TreeTextMemory.__init__`` (it connects to that database; the
tests set the attributes ``search`` reads instead).

MemOS (MemoryOS) pins openai<2 and transformers<5, so it is not in this project's test environment; these tests
skip without it (see docs/frameworks.md for how to run them)."""

from __future__ import annotations

import copy
import os
import tempfile
import uuid

import pytest

os.environ.setdefault("MEMOS_BASE_PATH", tempfile.mkdtemp(prefix="memos-test-"))  # its log folder, not the repo
pytest.importorskip("memos.reranker.base")

from memos.memories.textual.item import TextualMemoryItem, TreeNodeTextualMemoryMetadata
from memos.memories.textual.tree import TreeTextMemory
from memos.memories.textual.tree_text_memory.retrieve.searcher import Searcher
from memos_memreranker import MemRerankerMemOS

from memreranker_core import MemReranker
from memreranker_core.errors import AuthenticationError, InvalidInputError
from tests.support.memories import SECRET
from tests.support.rerank_server import RerankServer, overlap_score

QUERY = "When did Caroline go to the LGBTQ support group?"
#: text, memory_time
MEMORIES = [
    ("Caroline went to the LGBTQ support group.", "2023-05-07"),
    ("[8 May 2023] Melanie painted a sunrise over the lake.", "2023-05-08"),
    ("Caroline is researching adoption agencies.", "2023-05-25T10:00:00"),
    ("It rained all weekend, so we stayed in.", None),
]
DATED = [
    "7 May 2023\nCaroline went to the LGBTQ support group.",
    "8 May 2023\n[8 May 2023] Melanie painted a sunrise over the lake.",  # MemOS's text is scored as stored
    "25 May 2023\nCaroline is researching adoption agencies.",
    "It rained all weekend, so we stayed in.",
]


def make_items() -> list[TextualMemoryItem]:
    return [
        TextualMemoryItem(
            id=str(uuid.UUID(int=position + 1)),
            memory=text,
            metadata=TreeNodeTextualMemoryMetadata(
                memory_type="WorkingMemory",
                memory_time=when,
                user_id="caroline",
                status="activated",
                key=f"k{position}",
            ),
        )
        for position, (text, when) in enumerate(MEMORIES)
    ]


class WorkingMemoryStore:
    """Graph-store double: the one call MemOS's WorkingMemory recall makes, answered from a list."""

    def __init__(self, items: list[TextualMemoryItem]) -> None:
        self.records = [item.model_dump() for item in items]

    def get_all_memory_items(self, scope, include_embedding=False, user_name=None, filter=None, status=None, **kwargs):
        return copy.deepcopy([record for record in self.records if record["metadata"]["memory_type"] == scope])


class ZeroEmbedder:
    def embed(self, texts):
        return [[0.0] * 8 for _ in texts]


def retrieve(reranker, top_k: int = 3) -> list[tuple[TextualMemoryItem, float]]:
    searcher = Searcher(None, WorkingMemoryStore(make_items()), ZeroEmbedder(), reranker)
    return searcher.retrieve(QUERY, top_k=top_k, info={}, mode="fast", memory_type="WorkingMemory")


def tree_memory(reranker) -> TreeTextMemory:
    """A TreeTextMemory with the reranker installed the documented way: its ``reranker`` attribute."""
    tree = TreeTextMemory.__new__(TreeTextMemory)  # __init__ would connect to the configured graph database
    tree.graph_store, tree.embedder = WorkingMemoryStore(make_items()), ZeroEmbedder()
    tree.dispatcher_llm = tree.bm25_retriever = tree.internet_retriever = tree.search_strategy = tree.tokenizer = None
    tree.include_embedding = False
    tree.reranker = reranker
    return tree


def expected(core: MemReranker, top_k: int) -> list[tuple[str, object]]:
    """MemOS reranks its first ``top_k`` WorkingMemory items (it cuts before reranking)."""
    results = core.rerank(QUERY, DATED[:top_k])
    return [(MEMORIES[r.index][0], pytest.approx(r.score, abs=1e-6)) for r in results]


@pytest.fixture
def server():
    with RerankServer(api_key=SECRET) as running:
        yield running


def test_tree_memory_search_with_the_local_model_ranks_like_memreranker(tiny_reranker):
    found = tree_memory(MemRerankerMemOS(reranker=tiny_reranker)).search(
        QUERY, top_k=4, info={}, mode="fast", memory_type="WorkingMemory"
    )
    assert [(item.memory, item.metadata.relativity) for item in found] == expected(tiny_reranker, 4)


def test_searcher_retrieve_with_the_hosted_backend_sends_memory_time_as_the_date(server):
    found = retrieve(MemRerankerMemOS(backend="hosted", base_url=server.base_url, api_key=SECRET), top_k=4)
    assert server.requests[-1]["documents"] == DATED
    scores = overlap_score(QUERY, DATED)
    order = sorted(range(len(DATED)), key=lambda i: -scores[i])
    assert [(item.memory, score) for item, score in found] == [
        (MEMORIES[i][0], pytest.approx(scores[i])) for i in order
    ]
    assert all(isinstance(item, TextualMemoryItem) and 0.0 <= score <= 1.0 for item, score in found)
    core = MemReranker(backend="hosted", base_url=server.base_url, api_key=SECRET)
    assert [(item.memory, score) for item, score in found] == expected(core, 4)


def test_memos_cuts_working_memory_to_top_k_before_reranking(server):
    found = retrieve(MemRerankerMemOS(backend="hosted", base_url=server.base_url, api_key=SECRET), top_k=2)
    assert server.requests[-1]["documents"] == DATED[:2]  # the reranker can only reorder MemOS's first two
    assert len(found) == 2


def test_inputs_are_left_unchanged_and_copies_come_back(tiny_reranker):
    items = make_items()
    before = [item.model_dump() for item in items]
    found = MemRerankerMemOS(reranker=tiny_reranker).rerank(QUERY, items, top_k=4, search_filter={"user_id": "x"})
    assert [item.model_dump() for item in items] == before
    assert len(found) == 4 and all(copy_ is not item for copy_, _ in found for item in items)
    assert sorted(item.id for item, _ in found) == sorted(item.id for item in items)


def test_dict_memories_work_too(server):
    items = [{"memory": "Caroline went to the LGBTQ support group.", "metadata": {"memory_time": "2023-05-07"}}]
    found = MemRerankerMemOS(backend="hosted", base_url=server.base_url, api_key=SECRET).rerank(QUERY, items, top_k=1)
    assert server.requests[-1]["documents"] == ["7 May 2023\nCaroline went to the LGBTQ support group."]
    assert found[0][0] == items[0] and found[0][0] is not items[0]


def test_empty_input_makes_no_model_call(server, tmp_path):
    assert MemRerankerMemOS(backend="hosted", base_url=server.base_url, api_key=SECRET).rerank(QUERY, [], 5) == []
    assert server.requests == []
    assert MemRerankerMemOS(backend="local", model=str(tmp_path / "no-such-model")).rerank(QUERY, [], 5) == []


async def test_a_failing_backend_is_a_typed_error_not_zero_scores(server):
    reranker = MemRerankerMemOS(backend="hosted", base_url=server.base_url, api_key="sk-wrong-key-1234")
    with pytest.raises(AuthenticationError) as caught:
        tree_memory(reranker).search(QUERY, top_k=4, info={}, mode="fast", memory_type="WorkingMemory")
    assert "sk-wrong-key-1234" not in str(caught.value)
    with pytest.raises(AuthenticationError):
        await reranker.arerank(QUERY, make_items(), top_k=2)
    with pytest.raises(InvalidInputError, match="top_k"):
        reranker.rerank(QUERY, make_items(), top_k=0)
    with pytest.raises(InvalidInputError, match=r"documents\[0\] has no text"):
        reranker.rerank(QUERY, [{"metadata": {}}], top_k=1)


def test_the_key_is_never_kept_or_shown(server):
    reranker = MemRerankerMemOS(backend="hosted", base_url=server.base_url, api_key=SECRET)
    assert SECRET not in repr(reranker) and SECRET not in str(reranker.settings)


def test_score_threshold_keeps_only_memories_scoring_at_least_it(server):
    reranker = MemRerankerMemOS(backend="hosted", base_url=server.base_url, api_key=SECRET, score_threshold=0.5)
    found = reranker.rerank(QUERY, make_items(), top_k=4)
    scores = overlap_score(QUERY, DATED)
    assert [(item.memory, score) for item, score in found] == [
        (MEMORIES[i][0], pytest.approx(scores[i]))
        for i in sorted(range(4), key=lambda i: -scores[i])
        if scores[i] >= 0.5
    ]
    assert 0 < len(found) < 4
