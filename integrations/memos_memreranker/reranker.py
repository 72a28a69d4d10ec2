"""``MemRerankerMemOS``: MemReranker as a MemOS reranker."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from copy import deepcopy
from typing import Any

from memos.reranker.base import BaseReranker

from memreranker_core import MemReranker, RerankResult
from memreranker_core.adapter_support import (
    RerankCall,
    check_limits,
    given_settings,
    memory_date,
    metadata_keys,
    plan_call,
    resolve_reranker,
)

logger = logging.getLogger(__name__)


class MemRerankerMemOS(BaseReranker):
    """Reranks MemOS memories (``TextualMemoryItem``) with MemReranker, on your own CPU/GPU or hosted.

    Keeps MemOS's reranker contract: ``rerank`` returns at most ``top_k`` ``(item, score)`` pairs, best first,
    with ``score`` = P(yes) in [0, 1]. The items are deep copies (the inputs are never modified). The model reads
    each memory with its ``metadata.memory_time`` prepended as ``"8 May 2023"`` (``metadata_fields``); the text
    is scored as stored (a leading ``[...]`` tag is kept, unlike MemOS's ``http_bge``). MemOS's ``search_filter``
    / ``search_priority`` boosts are not applied: the score stays a probability. A failing backend raises (MemOS's
    own rerankers return 0.0 for every item instead).

    Install it on a tree text memory (``TreeTextMemory.search`` builds its ``Searcher`` from this attribute)::

        tree_memory.reranker = MemRerankerMemOS(backend="local")

    Args:
        backend: ``"local"`` or ``"hosted"``; default from ``MEMRERANKER_BACKEND``, else local.
        model: Hub id or local path (local), or the service's model name (hosted).
        device: Local device such as ``"cuda"`` or ``"cpu"``.
        instruction: The ``<Instruct>`` line; default the model's own.
        api_key: Hosted API key; default from ``MEMOS_API_KEY``. Used once to build the reranker, never stored.
        base_url: Hosted service URL; default from ``MEMOS_BASE_URL``.
        api_style: Hosted dialect: ``memos``, ``vllm``, ``jina``, ``cohere`` or ``tei``.
        document_template: Template such as ``"[{date}] {text}"`` filled from each memory's metadata.
        reranker_options: Other ``MemReranker`` options (``dtype``, ``max_length``, ``read_timeout``, ...).
        reranker: An existing ``MemReranker`` to share instead of the settings above.
        score_threshold: Drop memories scoring below this P(yes), in [0, 1].
        metadata_fields: Metadata keys prepended to the scored text (``date`` is ``memory_time``).
        metadata_separator: What joins the prepended values and the text.

    Example:
        >>> reranker = MemRerankerMemOS(backend="hosted", metadata_fields=["date", "key"])
        >>> reranker.rerank("When did Caroline go?", items, top_k=5)  # doctest: +SKIP
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
        score_threshold: float | None = None,
        metadata_fields: Sequence[str] | None = ("date",),
        metadata_separator: str = "\n",
    ) -> None:
        check_limits("top_k", None, score_threshold)
        settings = given_settings(backend, model, device, instruction, base_url, api_style, document_template)
        self.reranker, kept = resolve_reranker(
            reranker,
            settings,
            api_key=api_key,
            reranker_options=reranker_options,
        )
        #: The reranker settings as given (a shared reranker's public ones), never the key.
        self.settings = kept
        self.score_threshold = score_threshold
        self.metadata_fields = metadata_keys("metadata_fields", metadata_fields)
        self.metadata_separator = metadata_separator

    def __repr__(self) -> str:
        return f"{type(self).__name__}(settings={self.settings!r}, score_threshold={self.score_threshold!r})"

    def rerank(
        self, query: str, graph_results: list[Any], top_k: int, search_filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Any, float]]:
        """The best ``top_k`` memories with their scores, best first.

        Args:
            query: The question.
            graph_results: ``TextualMemoryItem`` objects (or dicts with ``memory`` and ``metadata``), unchanged.
            top_k: At most this many.
            search_filter: Accepted for MemOS's interface; not used for scoring.
            **kwargs: Other searcher arguments (``query_embedding``, ``search_priority``...); not used.

        Raises:
            InvalidInputError: A memory without text, or a bad ``top_k``.
            BackendError: The backend failed.
        """
        return self._pairs(graph_results, self._plan(query, graph_results, top_k).run())

    async def arerank(
        self, query: str, graph_results: list[Any], top_k: int, search_filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Any, float]]:
        """``rerank`` without blocking the event loop."""
        return self._pairs(graph_results, await self._plan(query, graph_results, top_k).arun())

    def _plan(self, query: str, items: Sequence[Any] | None, top_k: int) -> RerankCall:
        return plan_call(
            self.reranker,
            query,
            None if items is None else [(_text(item), _metadata(item)) for item in items],  # type: ignore[arg-type]
            top_n=top_k,
            score_threshold=self.score_threshold,
            count_name="top_k",
            metadata_fields=self.metadata_fields,
            separator=self.metadata_separator,
        )

    @staticmethod
    def _pairs(items: Sequence[Any], results: list[RerankResult]) -> list[tuple[Any, float]]:
        return [(_copy(items[result.index]), result.score) for result in results]


def _text(item: Any) -> object:
    return item.get("memory") if isinstance(item, Mapping) else getattr(item, "memory", None)


def _metadata(item: Any) -> dict[str, Any]:
    """A memory's metadata fields, with ``date`` from ``memory_time`` (an extra field MemOS readers set)."""
    metadata = item.get("metadata") if isinstance(item, Mapping) else getattr(item, "metadata", None)
    if metadata is None:
        fields: dict[str, Any] = {}
    elif isinstance(metadata, Mapping):
        fields = dict(metadata)
    else:
        fields = metadata.model_dump(exclude={"embedding"}) if hasattr(metadata, "model_dump") else vars(metadata)
    fields.pop("embedding", None)
    fields["date"] = memory_date(fields.get("date")) or memory_date(fields.get("memory_time"))
    return {key: value for key, value in fields.items() if value is not None}


def _copy(item: Any) -> Any:
    return item.model_copy(deep=True) if hasattr(item, "model_copy") else deepcopy(item)
