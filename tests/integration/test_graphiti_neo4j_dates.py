"""On Neo4j, Graphiti's ``valid_at`` comes back as ``neo4j.time.DateTime``: the model must read "8 May 2023" (as
Graphiti's ``parse_db_date`` converts it), never Neo4j's ``2023-05-08T10:00:00.000000000+00:00``. Real Neo4j
temporal values, a driver double that answers the edge query as Neo4j would (no server needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("graphiti_core")
neo4j_time = pytest.importorskip("neo4j.time")

from datetime import timezone  # noqa: E402

from graphiti_core.driver.driver import GraphProvider  # noqa: E402
from graphiti_memreranker import MemRerankerCrossEncoder, fact_dates  # noqa: E402

from tests.support.memories import SECRET  # noqa: E402
from tests.support.rerank_server import RerankServer  # noqa: E402

FACTS = {
    "Caroline went to the LGBTQ support group": neo4j_time.DateTime(2023, 5, 8, 10, 0, 0, tzinfo=timezone.utc),
    "Caroline painted a sunrise": neo4j_time.DateTime(2023, 6, 30, 23, 59, 59, 999_999_999, tzinfo=timezone.utc),
    "Melanie ran a charity race": neo4j_time.Date(2023, 7, 1),
    "Caroline researched adoption": None,
}


class Neo4jRecords:
    """Answers ``fact_dates``' edge query with the records Neo4j's driver returns for ``FACTS``."""

    provider = GraphProvider.NEO4J

    async def execute_query(self, query, facts, routing_):
        assert "RELATES_TO" in query and routing_ == "r"
        records = [{"fact": fact, "valid_at": FACTS[fact]} for fact in facts if fact in FACTS]
        return records, None, None


async def test_neo4j_datetimes_become_the_dates_the_model_reads():
    assert str(FACTS["Caroline went to the LGBTQ support group"]).startswith("2023-05-08T10:00:00.000000000")
    dates = await fact_dates(Neo4jRecords(), [*FACTS, "not a fact"])
    assert dates == {
        "Caroline went to the LGBTQ support group": "8 May 2023",
        "Caroline painted a sunrise": "30 June 2023",
        "Melanie ran a charity race": "1 July 2023",
    }


async def test_the_reranker_scores_facts_with_their_neo4j_dates():
    with RerankServer(api_key=SECRET) as server:
        encoder = MemRerankerCrossEncoder(
            backend="hosted", base_url=server.base_url, api_key=SECRET, driver=Neo4jRecords()
        )
        ranked = await encoder.rank("When did Caroline go to the support group?", list(FACTS))
        sent = server.requests[0]["documents"]
    assert sorted(fact for fact, _score in ranked) == sorted(FACTS)
    assert "8 May 2023\nCaroline went to the LGBTQ support group" in sent
    assert not any("T10:00:00" in text or "000000000" in text for text in sent)
