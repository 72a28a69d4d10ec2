"""``MemRerankerRanker``: MemReranker as a Haystack ranker component."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.utils import Secret, deserialize_secrets_inplace

from memreranker_core import MemReranker, RerankResult
from memreranker_core.adapter_support import (
    API_KEY_ENV,
    SETTING_NAMES,
    RerankCall,
    check_limits,
    metadata_keys,
    pick,
    plan_call,
    resolve_reranker,
)

logger = logging.getLogger(__name__)


@component
class MemRerankerRanker:
    """Ranks documents with MemReranker, on your own CPU/GPU or through a hosted ``/rerank`` service.

    Documents with the same id are ranked once (the copy with the highest score is kept). The output holds
    copies (``dataclasses.replace``) of the best ``top_k`` documents, best first, with ``score`` = P(yes) in
    [0, 1]; the input documents are never modified.

    Args:
        backend: ``"local"`` or ``"hosted"``; default from ``MEMRERANKER_BACKEND``, else local.
        model: Hub id or local path (local), or the service's model name (hosted).
        device: Local device such as ``"cuda"`` or ``"cpu"``; default CUDA if available.
        instruction: The ``<Instruct>`` line; default the model's own.
        api_key: Hosted API key, by default read from ``MEMOS_API_KEY``; serialized as the env-var reference only.
        base_url: Hosted service URL; default from ``MEMOS_BASE_URL``, else the Memos API.
        api_style: Hosted dialect: ``memos``, ``vllm``, ``jina``, ``cohere`` or ``tei``.
        document_template: Template such as ``"[{date}] {speaker}: {text}"`` filled from each document's meta.
        reranker_options: Other ``MemReranker`` options (``dtype``, ``max_length``, ``read_timeout``, ...).
        top_k: Number of documents to return (must be > 0).
        score_threshold: Drop documents scoring below this P(yes), in [0, 1].
        meta_fields_to_embed: Meta keys whose values are prepended to the scored text.
        embedding_separator: What joins the prepended meta values and the content.
        reranker: An existing ``MemReranker`` to share instead of the settings above (one loaded model).

    Example:
        >>> from haystack import Pipeline
        >>> from haystack_integrations.components.rankers.memreranker import MemRerankerRanker
        >>> pipeline = Pipeline()
        >>> pipeline.add_component("ranker", MemRerankerRanker(backend="local", meta_fields_to_embed=["date"]))
        >>> pipeline.run({"ranker": {"query": "When did Caroline go?", "documents": docs}})  # doctest: +SKIP
    """

    def __init__(
        self,
        backend: str | None = None,
        model: str | None = None,
        device: str | None = None,
        instruction: str | None = None,
        api_key: Secret = Secret.from_env_var(API_KEY_ENV, strict=False),  # noqa: B008
        base_url: str | None = None,
        api_style: str | None = None,
        document_template: str | None = None,
        reranker_options: dict[str, Any] | None = None,
        top_k: int = 10,
        score_threshold: float | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        reranker: MemReranker | None = None,
    ) -> None:
        check_limits("top_k", top_k, score_threshold)
        given = locals()
        self.reranker, kept = resolve_reranker(
            reranker,
            {name: given[name] for name in SETTING_NAMES},
            api_key=None if reranker is not None else api_key,
            reranker_options=reranker_options,
        )
        for name in SETTING_NAMES:
            setattr(self, name, kept.get(name))
        self.reranker_options = kept["reranker_options"]
        self.api_key = api_key
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.meta_fields_to_embed = metadata_keys("meta_fields_to_embed", meta_fields_to_embed)
        self.embedding_separator = embedding_separator

    def warm_up(self) -> None:
        """Load the model (local) or open the HTTP session (hosted) before the first run."""
        self.reranker.warm_up()

    def to_dict(self) -> dict[str, Any]:
        """Serialize every parameter; the API key as its env-var reference only (a token secret is refused)."""
        return default_to_dict(
            self,
            **{name: getattr(self, name) for name in SETTING_NAMES},
            api_key=self.api_key.to_dict(),
            reranker_options=self.reranker_options,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MemRerankerRanker:
        """Rebuild a ranker from ``to_dict`` output (``data`` itself is left unchanged)."""
        data = {**data, "init_parameters": dict(data.get("init_parameters", {}))}
        deserialize_secrets_inplace(data["init_parameters"], keys=["api_key"])
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """Rank ``documents`` by relevance to ``query``.

        Args:
            query: The question.
            documents: Documents to rank (left unchanged).
            top_k: Overrides the instance's ``top_k`` for this run (must be > 0).
            score_threshold: Overrides the instance's ``score_threshold`` for this run (``0.0`` keeps all).

        Returns:
            ``{"documents": [...]}``: copies of the kept documents, best first, with ``score`` set.

        Raises:
            ValueError: ``top_k`` is not > 0, or ``score_threshold`` is outside [0, 1].
        """
        unique, call = self._plan(query, documents, top_k, score_threshold)
        return {"documents": self._copies(unique, call.run())}

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """``run`` without blocking the event loop (same arguments and result)."""
        unique, call = self._plan(query, documents, top_k, score_threshold)
        return {"documents": self._copies(unique, await call.arun())}

    def _plan(
        self, query: str, documents: list[Document], top_k: int | None, score_threshold: float | None
    ) -> tuple[list[Document], RerankCall]:
        unique = _deduplicate(documents)
        call = plan_call(
            self.reranker,
            query,
            [(document.content, document.meta) for document in unique],
            top_n=pick(top_k, self.top_k),
            score_threshold=pick(score_threshold, self.score_threshold),
            count_name="top_k",
            metadata_fields=self.meta_fields_to_embed,
            separator=self.embedding_separator,
        )
        return unique, call

    @staticmethod
    def _copies(documents: list[Document], results: list[RerankResult]) -> list[Document]:
        return [replace(documents[result.index], score=result.score) for result in results]


def _deduplicate(documents: list[Document]) -> list[Document]:
    """One document per id, in first-seen order; of duplicates, the one with the highest score (Haystack's rule)."""
    best: dict[str, Document] = {}
    for document in documents:
        kept = best.get(document.id)
        if kept is None or (document.score is not None and (kept.score is None or document.score > kept.score)):
            best[document.id] = document
    return list(best.values())
