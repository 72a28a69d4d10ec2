"""``MemRerankerCrossEncoder``: MemReranker as a Graphiti cross-encoder (reranker)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from graphiti_core.cross_encoder.client import CrossEncoderClient
from graphiti_core.driver.driver import GraphDriver, GraphProvider
from graphiti_core.helpers import parse_db_date

from memreranker_core import MemReranker
from memreranker_core.adapter_support import given_settings, memory_date, metadata_keys, plan_call, resolve_reranker

logger = logging.getLogger(__name__)

_FACT_DATES = {
    GraphProvider.KUZU: "MATCH (e:RelatesToNode_) WHERE e.fact IN $facts RETURN e.fact AS fact, e.valid_at AS valid_at",
}
_FACT_DATES_DEFAULT = "MATCH ()-[e:RELATES_TO]->() WHERE e.fact IN $facts RETURN e.fact AS fact, e.valid_at AS valid_at"


class MemRerankerCrossEncoder(CrossEncoderClient):
    """Ranks Graphiti passages (edge facts, node names, episode contents) with MemReranker, local or hosted.

    ``rank`` is native async (the local model runs in a worker thread, the hosted call is async), returns every
    input passage exactly as given with its P(yes) in [0, 1], best first (Graphiti's ``reranker_min_score`` and
    ``limit`` then apply), one pair per passage even when two passages have the same text. With ``driver``, each
    edge fact's ``valid_at`` is looked up and read by the model as ``"8 May 2023"`` (``metadata_fields``).

    Args:
        backend: ``"local"`` or ``"hosted"``; default from ``MEMRERANKER_BACKEND``, else local.
        model: Hub id or local path (local), or the service's model name (hosted).
        device: Local device such as ``"cuda"`` or ``"cpu"``.
        instruction: The ``<Instruct>`` line; default the model's own.
        api_key: Hosted API key; default from ``MEMOS_API_KEY``. Used once to build the reranker, never stored.
        base_url: Hosted service URL; default from ``MEMOS_BASE_URL``.
        api_style: Hosted dialect: ``memos``, ``vllm``, ``jina``, ``cohere`` or ``tei``.
        document_template: Template such as ``"[{date}] {text}"`` (needs ``driver`` for ``{date}``).
        reranker_options: Other ``MemReranker`` options (``dtype``, ``max_length``, ``read_timeout``, ...).
        reranker: An existing ``MemReranker`` to share instead of the settings above.
        driver: The graph driver to read edge dates from (``graphiti.driver``); ``None``: score the text alone.
        metadata_fields: Looked-up fields prepended to the scored text; only ``"date"`` exists.
        metadata_separator: What joins the date and the text.

    Example:
        >>> from graphiti_core.search.search_config_recipes import EDGE_HYBRID_SEARCH_CROSS_ENCODER
        >>> encoder = MemRerankerCrossEncoder(backend="local", driver=driver)  # doctest: +SKIP
        >>> graphiti = Graphiti(graph_driver=driver, cross_encoder=encoder)  # doctest: +SKIP
        >>> await graphiti.search_("When did Caroline go?", config=EDGE_HYBRID_SEARCH_CROSS_ENCODER)  # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        backend: str | None = None,
        model: str | None = None,
        device: str | None = None,
        instruction: str | None = None,
        api_key: Any = None,
        base_url: str | None = None,
        api_style: str | None = None,
        document_template: str | None = None,
        reranker_options: dict[str, Any] | None = None,
        reranker: MemReranker | None = None,
        driver: GraphDriver | None = None,
        metadata_fields: Sequence[str] | None = ("date",),
        metadata_separator: str = "\n",
    ) -> None:
        settings = given_settings(backend, model, device, instruction, base_url, api_style, document_template)
        self.reranker, kept = resolve_reranker(
            reranker,
            settings,
            api_key=api_key,
            reranker_options=reranker_options,
        )
        #: The reranker settings as given (a shared reranker's public ones), never the key.
        self.settings = kept
        self.driver = driver
        self.metadata_fields = metadata_keys("metadata_fields", metadata_fields)
        self.metadata_separator = metadata_separator

    def __repr__(self) -> str:
        return f"{type(self).__name__}(settings={self.settings!r}, driver={type(self.driver).__name__})"

    async def rank(self, query: str, passages: list[str]) -> list[tuple[str, float]]:
        """Every passage with its score, best first (ties keep the input order).

        Raises:
            InvalidInputError: ``passages`` is ``None`` or holds a non-string.
            BackendError: The backend failed (Graphiti's search then fails too, rather than ranking by 0.0).
        """
        dates = await fact_dates(self.driver, passages) if self.driver is not None and passages else {}
        call = plan_call(
            self.reranker,
            query,
            None if passages is None else [(passage, self._metadata(passage, dates)) for passage in passages],
            top_n=None,
            score_threshold=None,
            metadata_fields=self.metadata_fields,
            separator=self.metadata_separator,
        )
        return [(passages[result.index], result.score) for result in await call.arun()]

    @staticmethod
    def _metadata(passage: object, dates: dict[str, str]) -> dict[str, str]:
        date = dates.get(passage) if isinstance(passage, str) else None
        return {"date": date} if date else {}


async def fact_dates(driver: GraphDriver, facts: Sequence[str]) -> dict[str, str]:
    """``{fact: "8 May 2023"}`` from the ``valid_at`` of the entity edges with these facts.

    Facts that are not edge facts (node names, episode contents) get no date, nor does a fact shared by edges
    whose dates differ (no date rather than a wrong one).
    """
    wanted = sorted({fact for fact in facts if isinstance(fact, str)})
    query = _FACT_DATES.get(driver.provider, _FACT_DATES_DEFAULT)
    records, _, _ = await driver.execute_query(query, facts=wanted, routing_="r")
    found: dict[str, set[str]] = {}
    for record in records:
        date = memory_date(_native(record["valid_at"]))
        if date:
            found.setdefault(record["fact"], set()).add(date)
    ambiguous = sorted(fact for fact, dates in found.items() if len(dates) > 1)
    if ambiguous:
        logger.debug("%d fact(s) shared by edges with different valid_at get no date", len(ambiguous))
    return {fact: dates.pop() for fact, dates in found.items() if len(dates) == 1}


def _native(value: object) -> object:
    """A ``valid_at`` as Python: Neo4j's ``neo4j.time.DateTime`` through Graphiti's own ``parse_db_date`` (and a
    ``neo4j.time.Date`` to a ``date``), so the model reads "8 May 2023", not Neo4j's nanosecond ISO text; any
    other value (Kuzu's and FalkorDB's datetimes, ISO strings) as it is."""
    from neo4j import time as neo4j_time

    if isinstance(value, neo4j_time.DateTime):
        return parse_db_date(value)
    if isinstance(value, neo4j_time.Date):
        return value.to_native()
    return value
