"""MemRerankerCrossEncoder inside Graphiti's real ``search_`` with ``EDGE_HYBRID_SEARCH_CROSS_ENCODER`` on the embedded
Kuzu driver: entity nodes and edges saved directly (no LLM extraction), an offline word-hash embedder, the tiny local
model and the loopback hosted server. Order and scores equal ``MemReranker.rerank`` on the dated facts."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
from datetime import datetime, timezone

import pytest

os.environ.setdefault("GRAPHITI_TELEMETRY_ENABLED", "false")  # no posthog calls from tests
pytest.importorskip("graphiti_core")
pytest.importorskip("kuzu")

from graphiti_core import Graphiti
from graphiti_core.driver.driver import GraphProvider
from graphiti_core.driver.kuzu_driver import KuzuDriver
from graphiti_core.edges import EntityEdge
from graphiti_core.embedder.client import EmbedderClient
from graphiti_core.graph_queries import get_fulltext_indices
from graphiti_core.llm_client.client import LLMClient
from graphiti_core.nodes import EntityNode
from graphiti_core.search.search_config_recipes import EDGE_HYBRID_SEARCH_CROSS_ENCODER
from graphiti_memreranker import MemRerankerCrossEncoder, fact_dates

from memreranker_core import MemReranker
from memreranker_core.errors import AuthenticationError, InvalidInputError
from tests.support.memories import SECRET
from tests.support.rerank_server import RerankServer, overlap_score

QUERY = "When did Caroline go to the LGBTQ support group?"
GROUP = "caroline"
#: fact -> valid_at (every fact names Caroline and the group, so the hybrid search retrieves all of them)
FACTS = {
    "Caroline went to the LGBTQ support group": datetime(2023, 5, 7, 14, 0, tzinfo=timezone.utc),
    "Caroline told the LGBTQ support group about her adoption plans": datetime(2023, 5, 25, tzinfo=timezone.utc),
    "Caroline missed the support group because it rained": None,
    "Caroline thanked the LGBTQ support group for its help": datetime(2023, 6, 9, tzinfo=timezone.utc),
}
DATES = {fact: (f"{when.day} {when.strftime('%B')} {when.year}" if when else None) for fact, when in FACTS.items()}


class WordHashEmbedder(EmbedderClient):
    """Offline test double: a bag of hashed words."""

    async def create(self, input_data):
        text = input_data if isinstance(input_data, str) else " ".join(map(str, input_data))
        vector = [0.0] * 64
        for word in re.findall(r"\w+", text.lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        return vector

    async def create_batch(self, input_data_list):
        return [await self.create(text) for text in input_data_list]


class NoLLM(LLMClient):
    async def _generate_response(self, *args, **kwargs):
        raise AssertionError("search_ must not call the LLM")


async def build_graph(facts: dict) -> KuzuDriver:
    driver = KuzuDriver(db=":memory:")
    embedder = WordHashEmbedder()
    caroline = EntityNode(name="Caroline", group_id=GROUP, labels=["Entity"], summary="")
    group = EntityNode(name="LGBTQ support group", group_id=GROUP, labels=["Entity"], summary="")
    for node in (caroline, group):
        await node.generate_name_embedding(embedder)
        await node.save(driver)
    for fact, valid_at in facts.items():
        edge = EntityEdge(
            source_node_uuid=caroline.uuid,
            target_node_uuid=group.uuid,
            name="RELATES_TO_GROUP",
            fact=fact,
            group_id=GROUP,
            created_at=datetime.now(timezone.utc),
            valid_at=valid_at,
            episodes=[],
        )
        await edge.generate_embedding(embedder)
        await edge.save(driver)
    for query in get_fulltext_indices(GraphProvider.KUZU):  # Kuzu's build_indices_and_constraints is a no-op
        await driver.execute_query(query)
    return driver


@pytest.fixture
async def driver():
    graph = await build_graph(FACTS)
    yield graph
    await graph.close()


@pytest.fixture
def server():
    with RerankServer(api_key=SECRET) as running:
        yield running


def dated(fact: str) -> str:
    return f"{DATES[fact]}\n{fact}" if DATES[fact] else fact


async def search(driver, encoder):
    graphiti = Graphiti(graph_driver=driver, llm_client=NoLLM(None), embedder=WordHashEmbedder(), cross_encoder=encoder)
    results = await graphiti.search_(QUERY, config=EDGE_HYBRID_SEARCH_CROSS_ENCODER, group_ids=[GROUP])
    return [(edge.fact, score) for edge, score in zip(results.edges, results.edge_reranker_scores, strict=True)]


def expected(reranker: MemReranker) -> list[tuple[str, object]]:
    facts = list(FACTS)
    return [
        (facts[r.index], pytest.approx(r.score, abs=1e-6)) for r in reranker.rerank(QUERY, [dated(f) for f in facts])
    ]


async def test_search_with_the_local_model_ranks_every_fact_like_memreranker(driver, tiny_reranker):
    found = await search(driver, MemRerankerCrossEncoder(reranker=tiny_reranker, driver=driver))
    assert found == expected(tiny_reranker)


async def test_search_with_the_hosted_backend_sends_the_edge_dates(driver, server):
    encoder = MemRerankerCrossEncoder(backend="hosted", base_url=server.base_url, api_key=SECRET, driver=driver)
    found = await search(driver, encoder)
    assert sorted(server.requests[-1]["documents"]) == sorted(dated(f) for f in FACTS)
    assert "7 May 2023\nCaroline went to the LGBTQ support group" in server.requests[-1]["documents"]
    sent = server.requests[-1]["documents"]
    scores = dict(zip(sent, overlap_score(QUERY, sent), strict=True))
    assert found == [
        (fact, pytest.approx(scores[dated(fact)], abs=1e-9)) for fact in sorted(FACTS, key=lambda f: -scores[dated(f)])
    ]
    assert found == expected(MemReranker(backend="hosted", base_url=server.base_url, api_key=SECRET))


async def test_without_a_driver_the_fact_text_alone_is_scored(driver, server):
    encoder = MemRerankerCrossEncoder(backend="hosted", base_url=server.base_url, api_key=SECRET)
    await search(driver, encoder)
    assert sorted(server.requests[-1]["documents"]) == sorted(FACTS)


async def test_rank_returns_every_passage_unchanged_even_with_duplicate_texts(tiny_reranker):
    passages = ["Caroline went to the support group.", "It rained.", "Caroline went to the support group."]
    given = list(passages)
    ranked = await MemRerankerCrossEncoder(reranker=tiny_reranker).rank(QUERY, passages)
    assert passages == given
    assert sorted(map(id, (passage for passage, _ in ranked))) == sorted(map(id, passages))  # the same objects
    scores = tiny_reranker.score(QUERY, passages)
    assert sorted(score for _, score in ranked) == pytest.approx(sorted(scores), abs=1e-6)
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)


async def test_rank_never_blocks_the_event_loop(server):
    """The service only answers once a coroutine on the caller's loop has run: a blocking ``rank`` never lets it."""
    released = threading.Event()
    seen = []

    def scorer(query, documents):
        seen.append(released.wait(timeout=60))
        return overlap_score(query, documents)

    async def release():
        released.set()

    with RerankServer(scorer=scorer, api_key=SECRET) as waiting:
        encoder = MemRerankerCrossEncoder(backend="hosted", base_url=waiting.base_url, api_key=SECRET)
        ranked, _ = await asyncio.gather(encoder.rank(QUERY, list(FACTS)), release())
    assert seen == [True] and len(ranked) == len(FACTS)


async def test_empty_input_makes_no_model_call(server, tmp_path):
    assert (
        await MemRerankerCrossEncoder(backend="hosted", base_url=server.base_url, api_key=SECRET).rank(QUERY, []) == []
    )
    assert server.requests == []
    never_loaded = MemRerankerCrossEncoder(backend="local", model=str(tmp_path / "no-such-model"), device="cpu")
    assert await never_loaded.rank(QUERY, []) == []


async def test_a_failing_backend_fails_the_search_with_a_typed_error(driver, server):
    encoder = MemRerankerCrossEncoder(backend="hosted", base_url=server.base_url, api_key="sk-wrong-key-1234")
    with pytest.raises(AuthenticationError) as caught:
        await search(driver, encoder)
    assert "sk-wrong-key-1234" not in str(caught.value)
    with pytest.raises(InvalidInputError):
        await encoder.rank(QUERY, ["fine", None])


async def test_a_fact_shared_by_edges_with_different_dates_gets_no_date():
    shared = "Caroline went to the LGBTQ support group"
    graph = await build_graph({shared: datetime(2023, 5, 7, tzinfo=timezone.utc), "Caroline left early": None})
    edge = EntityEdge(
        source_node_uuid=(await EntityEdge.get_by_group_ids(graph, [GROUP]))[0].source_node_uuid,
        target_node_uuid=(await EntityEdge.get_by_group_ids(graph, [GROUP]))[0].target_node_uuid,
        name="RELATES_TO_GROUP",
        fact=shared,
        group_id=GROUP,
        created_at=datetime.now(timezone.utc),
        valid_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
        episodes=[],
    )
    await edge.generate_embedding(WordHashEmbedder())
    await edge.save(graph)
    assert await fact_dates(graph, [shared, "Caroline left early", "not a fact"]) == {}
    await graph.close()


def test_the_key_is_never_kept_or_shown(server):
    encoder = MemRerankerCrossEncoder(backend="hosted", base_url=server.base_url, api_key=SECRET)
    assert SECRET not in repr(encoder) and SECRET not in str(encoder.settings)
    assert encoder.settings == {"backend": "hosted", "base_url": server.base_url, "reranker_options": {}}
