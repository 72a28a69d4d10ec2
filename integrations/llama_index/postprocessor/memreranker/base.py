"""``MemRerankerPostprocessor``: MemReranker as a LlamaIndex node postprocessor (reranker)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from typing import Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, StrictFloat, StrictInt
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from memreranker_core import MemReranker, RerankResult
from memreranker_core.adapter_support import (
    SETTING_NAMES,
    RerankCall,
    check_documents,
    check_limits,
    metadata_keys,
    model_name,
    plan_call,
    resolve_reranker,
)
from memreranker_core.errors import InvalidInputError

logger = logging.getLogger(__name__)
dispatcher = get_dispatcher(__name__)


class MemRerankerPostprocessor(BaseNodePostprocessor):
    """Reranks retrieved nodes with MemReranker, on your own CPU/GPU or through a hosted ``/rerank`` service.

    Returns new ``NodeWithScore`` objects, best first, whose ``score`` is P(yes) in [0, 1]; the input nodes are
    never modified. With ``keep_retrieval_score`` the retrieval score goes to ``metadata["retrieval_score"]`` of a
    copy of the node. Emits ``ReRankStartEvent``/``ReRankEndEvent`` and the ``RERANKING`` callback event.

    Args:
        reranker: An existing ``MemReranker`` to share instead of the settings below (one loaded model).
        api_key: Hosted API key; default from ``MEMOS_API_KEY``. Used once to build the reranker, never stored
            in a field or serialized.
        **data: The fields below.

    Example:
        >>> from llama_index.postprocessor.memreranker import MemRerankerPostprocessor
        >>> postprocessor = MemRerankerPostprocessor(backend="local", top_n=3, metadata_fields=["date"])
        >>> engine = index.as_query_engine(node_postprocessors=[postprocessor])  # doctest: +SKIP
    """

    # Unknown arguments are refused (a typo must not fall back to a default), and errors never echo the input.
    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid", hide_input_in_errors=True)

    backend: str | None = Field(default=None, description="'local' or 'hosted'; default MEMRERANKER_BACKEND.")
    model: str | None = Field(default=None, description="Hub id or path (local), or the service's model name.")
    device: str | None = Field(default=None, description="Local device such as 'cuda' or 'cpu'.")
    instruction: str | None = Field(default=None, description="The <Instruct> line; default the model's own.")
    base_url: str | None = Field(default=None, description="Hosted service URL; default MEMOS_BASE_URL.")
    api_style: str | None = Field(default=None, description="Hosted dialect: memos, vllm, jina, cohere or tei.")
    document_template: str | None = Field(default=None, description="E.g. '[{date}] {speaker}: {text}'.")
    reranker_options: dict[str, Any] = Field(default_factory=dict, description="Other MemReranker options.")
    top_n: StrictInt | None = Field(default=3, description="Number of nodes to return (None: all).")
    score_threshold: StrictFloat | None = Field(default=None, description="Drop nodes scoring below this P(yes).")
    keep_retrieval_score: bool = Field(default=False, description="Keep the retrieval score in metadata.")
    metadata_mode: MetadataMode = Field(default=MetadataMode.EMBED, description="Node content mode to score.")
    metadata_fields: list[str] = Field(default_factory=list, description="Metadata keys prepended to the text.")
    metadata_separator: str = Field(default="\n", description="Joins the prepended metadata and the text.")

    _reranker: MemReranker = PrivateAttr()

    def __init__(self, *, reranker: MemReranker | None = None, api_key: str | None = None, **data: Any) -> None:
        super().__init__(**data)
        check_limits("top_n", self.top_n, self.score_threshold)
        self.metadata_fields = metadata_keys("metadata_fields", self.metadata_fields)
        settings = {name: getattr(self, name) for name in SETTING_NAMES}
        self._reranker, kept = resolve_reranker(
            reranker, settings, api_key=api_key, reranker_options=self.reranker_options
        )
        for name, value in kept.items():
            setattr(self, name, value)

    @classmethod
    def class_name(cls) -> str:
        return "MemRerankerPostprocessor"

    @property
    def reranker(self) -> MemReranker:
        """The ``MemReranker`` doing the scoring."""
        return self._reranker

    @dispatcher.span
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        call = self._plan(nodes, query_bundle)
        if not call.documents:
            return []
        with self._reranking(nodes, call) as finish:
            return finish(self._wrap(nodes, call.run()))

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        call = self._plan(nodes, query_bundle)
        if not call.documents:
            return []
        with self._reranking(nodes, call) as finish:
            return finish(self._wrap(nodes, await call.arun()))

    def _plan(self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None) -> RerankCall:
        if query_bundle is None:
            raise InvalidInputError(
                "MemRerankerPostprocessor needs the query: call postprocess_nodes(nodes, query_str=...) or use it "
                "in a query engine's node_postprocessors"
            )
        return plan_call(
            self._reranker,
            query_bundle.query_str,
            [
                (node.node.get_content(metadata_mode=self.metadata_mode), node.node.metadata)
                for node in check_documents(nodes, NodeWithScore, "wrap each node in NodeWithScore(node=...)")
            ],
            top_n=self.top_n,
            score_threshold=self.score_threshold,
            metadata_fields=self.metadata_fields,
            separator=self.metadata_separator,
        )

    @contextmanager
    def _reranking(
        self, nodes: list[NodeWithScore], call: RerankCall
    ) -> Iterator[Callable[[list[NodeWithScore]], list[NodeWithScore]]]:
        name = model_name(self._reranker)
        top_n = call.top_n if call.top_n is not None else len(nodes)
        dispatcher.event(ReRankStartEvent(query=call.query, nodes=nodes, top_n=top_n, model_name=name))
        payload = {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: name,
            EventPayload.QUERY_STR: call.query,
            EventPayload.TOP_K: top_n,
        }
        with self.callback_manager.event(CBEventType.RERANKING, payload=payload) as event:

            def finish(reranked: list[NodeWithScore]) -> list[NodeWithScore]:
                event.on_end(payload={EventPayload.NODES: reranked})
                dispatcher.event(ReRankEndEvent(nodes=reranked))
                return reranked

            yield finish

    def _wrap(self, nodes: list[NodeWithScore], results: list[RerankResult]) -> list[NodeWithScore]:
        reranked = []
        for result in results:
            original = nodes[result.index]
            node = original.node
            if self.keep_retrieval_score:
                metadata = {**deepcopy(node.metadata), "retrieval_score": original.score}
                node = node.model_copy(update={"metadata": metadata})
            reranked.append(NodeWithScore(node=node, score=result.score))
        return reranked
