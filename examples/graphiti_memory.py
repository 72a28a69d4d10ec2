"""Graphiti: a cross-encoder search recipe whose reranker is MemReranker, reading each fact with its ``valid_at`` date.

Run locally (memories stay on this machine) or against the hosted API; the backend is the only switch:

    MEMRERANKER_BACKEND=local  MEMRERANKER_MODEL=IAAR-Shanghai/MemReranker-0.6B python examples/graphiti_memory.py
    MEMRERANKER_BACKEND=hosted MEMOS_API_KEY=... python examples/graphiti_memory.py

The graph is Graphiti's embedded Kuzu driver in memory (``pip install kuzu``) and the embedder a small offline
word-hash stand-in; facts are saved directly as edges (no LLM extraction). Swap in Neo4j/FalkorDB and real clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from datetime import datetime, timezone

os.environ.setdefault("GRAPHITI_TELEMETRY_ENABLED", "false")  # keeps this example offline

from graphiti_core import Graphiti
from graphiti_core.driver.driver import GraphProvider
from graphiti_core.driver.kuzu_driver import KuzuDriver
from graphiti_core.edges import EntityEdge
from graphiti_core.embedder.client import EmbedderClient
from graphiti_core.graph_queries import get_fulltext_indices
from graphiti_core.llm_client.client import LLMClient
from graphiti_core.nodes import EntityNode
from graphiti_core.search.search_config_recipes import EDGE_HYBRID_SEARCH_CROSS_ENCODER
from graphiti_memreranker import MemRerankerCrossEncoder

from memreranker_core.adapter_support import memory_date

QUERY = "When did Caroline go to the LGBTQ support group?"


def day(year: int, month: int, date: int) -> datetime:
    return datetime(year, month, date, tzinfo=timezone.utc)


#: (speaker, fact, the day it became true)
FACTS = [
    ("Caroline", "Caroline went to a LGBTQ support group and found it powerful", day(2023, 5, 7)),
    ("Melanie", "Melanie painted a sunrise for the LGBTQ support group", day(2023, 5, 8)),
    ("Caroline", "Caroline researched adoption agencies after the support group", day(2023, 5, 25)),
    ("Melanie", "Melanie ran a charity race for the LGBTQ support group", day(2023, 5, 25)),
    ("Melanie", "Melanie stayed in with the support group when it rained", day(2023, 6, 9)),
]


class WordHashEmbedder(EmbedderClient):
    """Offline stand-in for a real embedder: a bag of hashed words."""

    async def create(self, input_data):
        vector = [0.0] * 64
        for word in re.findall(r"\w+", str(input_data).lower()):
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        return vector

    async def create_batch(self, input_data_list):
        return [await self.create(text) for text in input_data_list]


class NoLLM(LLMClient):
    """Searching needs no LLM; ingestion with ``add_episode`` would."""

    async def _generate_response(self, *args, **kwargs):
        raise RuntimeError("this example does not extract facts with an LLM")


async def main() -> None:
    driver = KuzuDriver(db=":memory:")
    embedder = WordHashEmbedder()
    encoder = MemRerankerCrossEncoder(
        backend=os.environ.get("MEMRERANKER_BACKEND", "local"),  # "local" or "hosted": the one switch
        driver=driver,  # looks up each fact's valid_at: the model reads "7 May 2023\nCaroline went to..."
    )
    graphiti = Graphiti(graph_driver=driver, llm_client=NoLLM(None), embedder=embedder, cross_encoder=encoder)

    nodes = {name: EntityNode(name=name, group_id="friends", labels=["Entity"]) for name in ("Caroline", "Melanie")}
    nodes["group"] = EntityNode(name="LGBTQ support group", group_id="friends", labels=["Entity"])
    for node in nodes.values():
        await node.generate_name_embedding(embedder)
        await node.save(driver)
    for speaker, fact, valid_at in FACTS:
        edge = EntityEdge(
            source_node_uuid=nodes[speaker].uuid,
            target_node_uuid=nodes["group"].uuid,
            name="RELATES_TO",
            fact=fact,
            group_id="friends",
            created_at=datetime.now(timezone.utc),
            valid_at=valid_at,
        )
        await edge.generate_embedding(embedder)
        await edge.save(driver)
    for statement in get_fulltext_indices(GraphProvider.KUZU):  # Kuzu builds its full-text indexes on request
        await driver.execute_query(statement)

    print(f"Query: {QUERY}")
    results = await graphiti.search_(QUERY, config=EDGE_HYBRID_SEARCH_CROSS_ENCODER, group_ids=["friends"])
    speakers = {node.uuid: node.name for node in nodes.values()}
    for edge, score in list(zip(results.edges, results.edge_reranker_scores, strict=True))[:3]:
        date = memory_date(edge.valid_at)  # "7 May 2023", as the reranker read it
        print(f"  {score:.4f}  [{date}] {speakers[edge.source_node_uuid]}: {edge.fact}")
    await driver.close()


if __name__ == "__main__":
    asyncio.run(main())
